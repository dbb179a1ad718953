"""The bounce mailbox over IMAP: read unseen mail, mark what was applied.

Blocking (``imaplib``); the service calls it in a thread of its own.

Reading never changes the mailbox: ``UID SEARCH UNSEEN`` then
``UID FETCH … BODY.PEEK[]`` (PEEK, RFC 3501 6.4.5, leaves ``\\Seen`` alone).
Only a notification that was applied is marked ``\\Seen``, or moved to the done
folder; auto-replies, people's mail and malformed reports stay unread for a
person to see. UIDs, not sequence numbers, since another instance or a person
may expunge at the same time.

Every failure is one :class:`MailboxError` with a one-line reason that never
contains the password.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from embargo_bot.domain.text_safety import text_problem

Security = Literal["tls", "starttls", "none"]

# A relay may return the whole embargoed PDF with the report. The report's
# parts and the returned headers come first, so the head of the message is
# enough; the parser tolerates the cut.
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_BATCH = 200


class MailboxError(Exception):
    """The mailbox could not be read or updated; str() is one line for the log."""


@dataclass(frozen=True)
class MailboxSettings:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    security: Security = "tls"
    folder: str = "INBOX"
    done_folder: str | None = None
    ca_file: Path | None = None  # trust this CA instead of the system's
    timeout: float = 30.0


@dataclass(frozen=True)
class Fetched:
    uid: int
    uidvalidity: int
    raw: bytes  # at most max_bytes of the message, from its first byte


class Mailbox:
    """One logged-in connection with the bounce folder selected."""

    def __init__(
        self,
        settings: MailboxSettings,
        imap: imaplib.IMAP4,
        uidvalidity: int,
        capabilities: frozenset[str],
    ) -> None:
        self._settings = settings
        self._imap = imap
        self.uidvalidity = uidvalidity
        self.can_move = "MOVE" in capabilities  # RFC 6851
        self._can_uid_expunge = "UIDPLUS" in capabilities  # RFC 4315

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def unseen(self, limit: int = DEFAULT_BATCH) -> list[int]:
        """UIDs of unread messages, oldest first, at most ``limit``."""
        data = self._ok("UID SEARCH", lambda: self._imap.uid("SEARCH", "UNSEEN"))
        uids = sorted({int(n) for n in b" ".join(d for d in data if d).split() if n.isdigit()})
        return uids[:limit]

    def fetch(self, uid: int, max_bytes: int = DEFAULT_MAX_BYTES) -> Fetched | None:
        """The head of one message, without marking it seen; None if it is gone."""
        part = f"(BODY.PEEK[]<0.{max_bytes}>)"
        data = self._ok("UID FETCH", lambda: self._imap.uid("FETCH", str(uid), part))
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                return Fetched(uid=uid, uidvalidity=self.uidvalidity, raw=item[1])
        return None

    def mark_applied(self, uid: int) -> None:
        """Seen in place, or moved to the done folder when there is one."""
        # Seen first, also before a move: it keeps the flags, so the message
        # arrives read in the done folder.
        self._flag(uid, r"(\Seen)")
        done = self._settings.done_folder
        if done is None:
            return
        target = _quote(done)
        if self.can_move:
            self._ok("UID MOVE", lambda: self._imap.uid("MOVE", str(uid), target))
            return
        self._ok("UID COPY", lambda: self._imap.uid("COPY", str(uid), target))
        if self._can_uid_expunge:
            # UID EXPUNGE removes this message only, never one that someone
            # else marked \Deleted; a plain EXPUNGE would.
            self._flag(uid, r"(\Deleted)")
            self._ok("UID EXPUNGE", lambda: self._imap.uid("EXPUNGE", str(uid)))
        # Without UIDPLUS the original stays, read, beside its copy.

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):  # it is going anyway
            self._imap.logout()

    def _flag(self, uid: int, flags: str) -> None:
        self._ok("UID STORE", lambda: self._imap.uid("STORE", str(uid), "+FLAGS.SILENT", flags))

    def _ok(self, what: str, command: Callable[[], tuple[str, list[Any]]]) -> list[Any]:
        try:
            status, data = command()
        except Exception as exc:
            raise MailboxError(
                f"{self._where()}: {what}: {_reason(exc, self._settings.password)}"
            ) from None
        if status != "OK":
            raise MailboxError(f"{self._where()}: {what} refused: {_server_words(data)}")
        return [d for d in data if isinstance(d, bytes | tuple)]

    def _where(self) -> str:
        return f"IMAP {self._settings.host}:{self._settings.port}"


def open_mailbox(settings: MailboxSettings) -> Mailbox:
    """Connect, log in and select the folder; MailboxError with the reason if not."""
    where = f"IMAP {settings.host}:{settings.port}"
    if settings.security == "none" and not is_loopback(settings.host):
        raise MailboxError(f"{where}: security 'none' is only allowed for a loopback host")
    try:
        imap = _connect(settings)
    except MailboxError:
        raise
    except Exception as exc:
        raise MailboxError(f"{where}: {_reason(exc, settings.password)}") from None
    try:
        return _log_in_and_select(settings, imap)
    except MailboxError:
        _drop(imap)
        raise
    except Exception as exc:
        _drop(imap)
        raise MailboxError(f"{where}: {_reason(exc, settings.password)}") from None


def check_mailbox(settings: MailboxSettings) -> str:
    """For ``doctor``: reachable, login accepted, folder there. Returns a one-line summary."""
    with open_mailbox(settings) as mailbox:
        count = len(mailbox.unseen(limit=10_000))
    return (
        f"IMAP {settings.host}:{settings.port} ({settings.security}): logged in as "
        f"{settings.username}, {settings.folder} has {count} unread"
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connect(settings: MailboxSettings) -> imaplib.IMAP4:
    if settings.security == "tls":
        return imaplib.IMAP4_SSL(
            settings.host,
            settings.port,
            ssl_context=_tls_context(settings),
            timeout=settings.timeout,
        )
    imap = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
    if settings.security == "starttls":
        try:
            if "STARTTLS" not in imap.capabilities:
                raise MailboxError(
                    f"IMAP {settings.host}:{settings.port}: the server does not offer STARTTLS"
                )
            imap.starttls(ssl_context=_tls_context(settings))
        except BaseException:
            _drop(imap)
            raise
    return imap


def _tls_context(settings: MailboxSettings) -> ssl.SSLContext:
    # Always verified: a man in the middle would get the login and could forge bounces.
    cafile = str(settings.ca_file) if settings.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise MailboxError(f"cannot read the IMAP CA file {settings.ca_file}: {exc}") from None


def _log_in_and_select(settings: MailboxSettings, imap: imaplib.IMAP4) -> Mailbox:
    where = f"IMAP {settings.host}:{settings.port}"
    try:
        imap.login(settings.username, settings.password)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:
        raise MailboxError(f"{where}: login refused for user {settings.username}") from None
    # The capabilities can grow after login (Dovecot adds MOVE): ask again.
    capabilities = _capabilities(imap)
    status, data = imap.select(_quote(settings.folder))
    if status != "OK":
        raise MailboxError(
            f"{where}: cannot open folder {settings.folder!r}: {_server_words(data)}"
        )
    if settings.done_folder is not None:
        # NO normally means it exists already ([ALREADYEXISTS], RFC 5530); a
        # real problem shows at the first move.
        imap.create(_quote(settings.done_folder))
    status, data = imap.response("UIDVALIDITY")
    uidvalidity = int(data[0]) if data and isinstance(data[0], bytes | str) else 0
    return Mailbox(settings, imap, uidvalidity, capabilities)


def _capabilities(imap: imaplib.IMAP4) -> frozenset[str]:
    status, data = imap.capability()
    found = {c.upper() for c in imap.capabilities}
    if status == "OK":
        for line in data:
            if isinstance(line, bytes):
                found.update(line.decode("ascii", "replace").upper().split())
    return frozenset(found)


def _quote(folder: str) -> str:
    if not folder or not folder.isascii() or text_problem(folder) is not None:
        # Non-ASCII names need IMAP's modified UTF-7 (RFC 3501 5.1.3): not supported.
        raise MailboxError(f"IMAP folder name {folder!r}: use printable ASCII only")
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _drop(imap: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError):
        imap.shutdown()


def _server_words(data: Sequence[object]) -> str:
    words = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
    return " ".join(words.split())[:200] or "no reason given"


def _reason(exc: BaseException, password: str) -> str:
    if isinstance(exc, ConnectionRefusedError):
        text = "connection refused (is the server up, and is this the port?)"
    elif isinstance(exc, TimeoutError | socket.timeout):
        text = "timed out"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"TLS certificate not trusted: {exc.verify_message}"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS failed: {exc.reason or exc}"
    elif isinstance(exc, socket.gaierror):
        text = "host name not found"
    elif isinstance(exc, imaplib.IMAP4.abort):
        text = f"connection dropped by the server ({exc})"
    elif isinstance(exc, OSError):
        text = exc.strerror or type(exc).__name__
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    # The reason comes partly from the server and the library: never echo the secret.
    return re.sub(re.escape(password), "***", text) if password else text
