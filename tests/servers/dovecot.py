"""A real Dovecot IMAP server on 127.0.0.1 for the bounce-mailbox tests.

Add ``"servers.dovecot"`` to ``pytest_plugins`` (or import the fixtures) to get:

- ``dovecot``: one server for the session, its config in a temp dir: plain IMAP
  (with STARTTLS) on one port, implicit TLS on another, certificates from a
  trustme CA (``dovecot.ca_file``);
- ``imap_user``: a fresh passwd-file user with an empty Maildir per test, so
  no test sees another's mail; ``imap_user.append(raw)`` puts a message in as
  a relay's delivery would (unread), and ``unseen()`` / ``flags()`` / ``uids()``
  look at the result through a separate connection;
- ``dovecot_without_move``: a second server that does not offer MOVE, for the
  COPY + UID EXPUNGE path; started only by the tests that ask for it.

Debian's ``dovecot-imapd`` provides the binary (``.ci/run`` installs it); the
fixtures skip with the reason when it is missing.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
USERS = 500
_SBIN = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")

# Dovecot 2.3's defaults minus MOVE: what an older server offers.
_NO_MOVE = "imap_capability = IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS\n"


@dataclass
class Dovecot:
    host: str
    port: int  # plain IMAP, STARTTLS offered
    tls_port: int  # implicit TLS (imaps)
    root: Path
    ca_file: Path
    process: subprocess.Popen[bytes]
    started_in: float  # seconds from exec to the first greeting
    _users: list[tuple[str, str]] = field(repr=False)

    def new_user(self) -> ImapUser:
        """A user nobody has used yet, with an empty mailbox."""
        if not self._users:
            raise RuntimeError(f"all {USERS} test users are taken: raise USERS")
        username, password = self._users.pop(0)
        return ImapUser(self, username, password)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class ImapUser:
    server: Dovecot
    username: str
    password: str

    @contextlib.contextmanager
    def connection(self) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4(self.server.host, self.server.port, timeout=10)
        try:
            imap.login(self.username, self.password)
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> int:
        """Deliver ``raw`` unread into ``folder``; its UID."""
        with self.connection() as imap:
            status, data = imap.append(_quote(folder), "", None, raw)
            assert status == "OK", data
        found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        assert found, data
        return int(found.group(1))

    def create_folder(self, folder: str) -> None:
        with self.connection() as imap:
            status, data = imap.create(_quote(folder))
            assert status == "OK", data

    def uids(self, folder: str = "INBOX", criterion: str = "ALL") -> list[int]:
        with self.connection() as imap:
            status, data = imap.select(_quote(folder), readonly=True)
            assert status == "OK", data
            status, data = imap.uid("SEARCH", criterion)
            assert status == "OK", data
        return sorted(int(n) for n in (data[0] or b"").split())

    def unseen(self, folder: str = "INBOX") -> list[int]:
        return self.uids(folder, "UNSEEN")

    def flags(self, uid: int, folder: str = "INBOX") -> set[str]:
        with self.connection() as imap:
            imap.select(_quote(folder), readonly=True)
            status, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            assert status == "OK", data
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode()
        found = re.search(r"FLAGS \(([^)]*)\)", text)
        assert found, f"UID {uid} not in {folder}: {text!r}"
        return set(found.group(1).split())


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return next((p for p in _SBIN if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_dovecot(root: Path, extra_config: str = "") -> Dovecot:
    """Start ``dovecot -F`` with everything under ``root``; returns once it greets."""
    binary = dovecot_binary()
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd; .ci/run does this)")
    import trustme

    # The mail processes run as another user: the path down to the Maildirs
    # must be traversable, and the Maildirs theirs.
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(exist_ok=True)
    mail_user = _mail_user()
    os.chown(root / "mail", mail_user.pw_uid, mail_user.pw_gid)
    # All users up front: Dovecot notices a changed passwd-file by its mtime,
    # in whole seconds, so users added live would sometimes not log in.
    users = [(f"bounces{n}", secrets.token_urlsafe(12)) for n in range(1, USERS + 1)]
    passwd = root / "users"
    passwd.write_text("".join(f"{name}:{{PLAIN}}{password}\n" for name, password in users))
    passwd.chmod(0o644)  # read by the auth process, which runs as the dovecot user

    ca = trustme.CA()
    certificate = ca.issue_cert(HOST, "localhost")
    certificate.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    (root / "server.pem").chmod(0o600)
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    port, tls_port = free_port(), free_port()
    config = root / "dovecot.conf"
    config.write_text(_config(root, port, tls_port, mail_user) + extra_config)
    began = time.monotonic()
    with (root / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-c", str(config), "-F"], stdout=subprocess.DEVNULL, stderr=stderr
        )
    server = Dovecot(HOST, port, tls_port, root, ca_file, process, 0.0, users)
    try:
        _wait_for_greeting(server)
    except BaseException:
        stop_dovecot(server)
        raise
    server.started_in = time.monotonic() - began
    return server


def stop_dovecot(server: Dovecot) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with _temporary_root() as root:
        server = start_dovecot(root)
        try:
            yield server
        finally:
            stop_dovecot(server)


@pytest.fixture(scope="session")
def dovecot_without_move() -> Iterator[Dovecot]:
    with _temporary_root() as root:
        server = start_dovecot(root, _NO_MOVE)
        try:
            yield server
        finally:
            stop_dovecot(server)


@pytest.fixture
def imap_user(dovecot: Dovecot) -> ImapUser:
    return dovecot.new_user()


@contextlib.contextmanager
def _temporary_root() -> Iterator[Path]:
    # Not tmp_path_factory: pytest makes those 0700, closed to the mail user.
    root = Path(tempfile.mkdtemp(prefix="embargo-dovecot-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _mail_user() -> pwd.struct_passwd:
    if os.geteuid() == 0:
        return pwd.getpwnam("nobody")
    return pwd.getpwuid(os.geteuid())


def _config(root: Path, port: int, tls_port: int, mail_user: pwd.struct_passwd) -> str:
    unprivileged = ""
    if os.geteuid() != 0:
        # Dovecot can run as an ordinary user if every service runs as that user.
        name = mail_user.pw_name
        unprivileged = (
            f"default_internal_user = {name}\n"
            f"default_login_user = {name}\n"
            f"first_valid_uid = {mail_user.pw_uid}\n"
        )
    group = _group_name(mail_user.pw_gid)
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = {HOST}
protocols = imap
{unprivileged}ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_name} gid={group} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty socket, so no growing delay for 127.0.0.1 after the
  # wrong-password test (Dovecot penalises an IP from 2 s up to 15 s).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _wait_for_greeting(server: Dovecot) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            stderr = (server.root / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"dovecot exited: {stderr.strip()} {server.log().strip()}")
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as conn:
                if conn.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot did not answer in {START_TIMEOUT}s: {server.log()}")
        time.sleep(0.05)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
