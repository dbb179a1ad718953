"""Whether the pack's publication page is live: one GET, in words an official can act on.

The service owns one `LinkChecker` (one `httpx.AsyncClient`, not thread-safe) for its
lifetime and closes it at stop. A check never raises for anything the page or the network
does: every failure becomes a `LinkCheck` that is not live, with what was seen.
"""

from __future__ import annotations

import asyncio
import html.parser
import os
import socket
import ssl
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

CA_FILE_SETTING = "EMBARGO_BOT_LINK_CA_FILE"
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_REDIRECTS = 5
# A publication landing page is well under this; a PDF served at the URL is not read whole.
DEFAULT_MAX_BODY_BYTES = 2_000_000
USER_AGENT = "embargo-bot link check"
KEEPALIVE_SECONDS = 60.0
# A 200 without --expect-text is read through when this small, so its connection can be
# used again; a larger body (a PDF at the URL) is left unread and the connection closed.
DRAIN_BYTES = 65_536


class LinkCheckSetupError(Exception):
    """The checker cannot be built as configured (e.g. an unreadable CA file)."""


@dataclass(frozen=True)
class LinkCheck:
    """What one check of the pack's URL saw."""

    url: str
    live: bool
    # For the official, e.g. "HTTP 404" or "certificate not trusted: ...".
    seen: str
    checked_at: datetime
    # Where the redirects ended; None when no answer came back.
    final_url: str | None = None
    status: int | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The system's certificate authorities, plus `ca_file` when given."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise LinkCheckSetupError(
                f"{CA_FILE_SETTING}={ca_file}: cannot read it as PEM certificates ({reason}); "
                "point it at a readable PEM file or unset it"
            ) from exc
    return context


def ca_file_from_environment(environ: dict[str, str] | None = None) -> Path | None:
    """For callers without Settings (tests, tools); the service passes the setting in."""
    value = (os.environ if environ is None else environ).get(CA_FILE_SETTING, "").strip()
    return Path(value) if value else None


class LinkChecker:
    """Owns the HTTP client for the service's lifetime: `async with LinkChecker() as c:`."""

    def __init__(
        self,
        *,
        ca_file: Path | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        deadline_seconds: float | None = None,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Callable[[], datetime] = _utc_now,
        trust_env: bool = True,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._deadline_seconds = (
            3 * timeout_seconds if deadline_seconds is None else deadline_seconds
        )
        self._max_redirects = max_redirects
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._client = httpx.AsyncClient(
            verify=ssl_context(ca_file),
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=True,
            max_redirects=max_redirects,
            # A CDN in front of the publishing system may hold on to the 404 it served
            # before the lift: ask every cache on the way for a fresh answer.
            headers={
                "User-Agent": USER_AGENT,
                "Cache-Control": "no-cache",
                "Pragma": "no-cache",
            },
            # Kept open between checks (the prepare-ahead's, then the lift's): the check that
            # gates the live email then costs one request, not a TCP and TLS handshake.
            limits=httpx.Limits(
                max_connections=4, max_keepalive_connections=2, keepalive_expiry=KEEPALIVE_SECONDS
            ),
            # HTTPS_PROXY / NO_PROXY: an operator's network may reach the web only by proxy.
            trust_env=trust_env,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(
        self, url: str, *, expect_text: str | None = None, now: datetime | None = None
    ) -> LinkCheck:
        """GET `url`; live when it answers 200 and, if given, its text contains `expect_text`.

        `now` (else the clock) is when the check started: the moment the official is told.
        """
        checked_at = self._clock() if now is None else now
        if checked_at.tzinfo is None:
            raise ValueError("naive datetime given as the time of a link check")

        def seen(
            words: str, response: httpx.Response | None = None, live: bool = False
        ) -> LinkCheck:
            return LinkCheck(
                url=url,
                live=live,
                seen=words,
                checked_at=checked_at,
                final_url=None if response is None else str(response.url),
                status=None if response is None else response.status_code,
            )

        try:
            # httpx's timeouts are per operation (connect, TLS, each read); the deadline bounds
            # the whole check, redirects and a page that trickles in included. It is longer
            # on purpose: cancelling httpx inside a TLS handshake leaks the socket, so the
            # common stall is left to httpx's own timeout.
            async with asyncio.timeout(self._deadline_seconds):
                async with self._client.stream("GET", url) as response:
                    if response.status_code != httpx.codes.OK:
                        if _small(response):
                            await self._read_body(response)
                        return seen(f"HTTP {response.status_code}", response)
                    if expect_text is None:
                        if _small(response):
                            await self._read_body(response)
                        return seen("HTTP 200", response, live=True)
                    body, complete = await self._read_body(response)
        except httpx.TimeoutException:
            return seen(f"timed out after {self._timeout_seconds:g} s")
        except TimeoutError:
            return seen(f"no complete answer within {self._deadline_seconds:g} s")
        except httpx.TooManyRedirects as exc:
            return seen(f"more than {self._max_redirects} redirects (last to {exc.request.url})")
        except httpx.HTTPError as exc:
            return seen(describe_failure(exc))
        text = page_text(body, response.encoding or "utf-8", response.headers.get("content-type"))
        if normalise(expect_text) in normalise(text):
            return seen(f"HTTP 200 and the page contains {expect_text!r}", response, live=True)
        where = (
            "the page does"
            if complete
            else f"the first {self._max_body_bytes:,} bytes of the page do"
        )
        return seen(f"HTTP 200 but {where} not contain {expect_text!r}", response)

    async def _read_body(self, response: httpx.Response) -> tuple[bytes, bool]:
        """At most `max_body_bytes` of the body, and whether that was all of it."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self._max_body_bytes:
                return b"".join(chunks)[: self._max_body_bytes], False
        return b"".join(chunks), True


def _small(response: httpx.Response) -> bool:
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) <= DRAIN_BYTES


def describe_failure(exc: httpx.HTTPError) -> str:
    """Words for a request that got no HTTP answer, from the cause httpx wraps."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate not trusted: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"host name not found ({cause.strerror or cause})"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"not a web address that can be checked ({exc})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke off or garbled its answer ({exc})"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "refused" in text.lower():
            return "connection refused"
        if "certificate verify failed" in text:
            return f"certificate not trusted: {text.split('certificate verify failed:')[-1]}"
        return f"could not connect ({text or type(exc).__name__})"
    return f"request failed ({exc or type(exc).__name__})"


class _VisibleText(html.parser.HTMLParser):
    _HIDDEN = frozenset({"script", "style", "template", "noscript"})
    # Tags that do not break a word: "Organi<b>sed</b>" is one word, "<td>A</td><td>B</td>" two.
    _INLINE = frozenset(
        [
            "a",
            "abbr",
            "b",
            "bdi",
            "bdo",
            "cite",
            "code",
            "data",
            "dfn",
            "em",
            "i",
            "kbd",
            "mark",
            "q",
            "s",
            "samp",
            "small",
            "span",
            "strong",
            "sub",
            "sup",
            "time",
            "u",
            "var",
            "wbr",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag not in self._INLINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag not in self._INLINE:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def page_text(body: bytes, encoding: str, content_type: str | None) -> str:
    """The words a reader sees: tags and scripts dropped and entities decoded, for HTML."""
    try:
        decoded = body.decode(encoding, errors="replace")
    except LookupError:
        decoded = body.decode("utf-8", errors="replace")
    if content_type is not None and "html" not in content_type.lower():
        return decoded
    parser = _VisibleText()
    parser.feed(decoded)
    parser.close()
    return "".join(parser.parts)


def normalise(text: str) -> str:
    """Case, width and runs of whitespace (non-breaking spaces included) do not matter."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
