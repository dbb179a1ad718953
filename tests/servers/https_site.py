"""A local HTTPS publication site for tests, on 127.0.0.1 with a trustme test CA.

It answers 404 until a chosen moment and 200 with a chosen body after (or from the start),
can redirect, and records when each request came. Use the context manager, or add
"servers.https_site" to `pytest_plugins` for the `publication_site` fixture. Point
EMBARGO_BOT_LINK_CA_FILE (or `LinkChecker(ca_file=...)`) at `site.ca_file`.

Also here: `silent_server()`, a port that accepts connections and never answers (timeouts),
and `closed_port()`, a port nothing listens on (connection refused).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

PAGE_PATH = "/strategy"
DEFAULT_BODY = (
    "<!doctype html><html lang='en'><head><title>Serious Organised Crime Strategy</title>"
    "</head><body><h1>Serious Organised Crime Strategy</h1><p>Published today.</p></body></html>"
)


@dataclass(frozen=True)
class SeenRequest:
    at: datetime
    path: str
    status: int


@dataclass
class PublicationSite:
    """The site's behaviour; change it from the test while the server runs."""

    host: str
    port: int
    ca_file: Path
    # None: 404 until publish() is called.
    live_at: datetime | None = None
    body: str = DEFAULT_BODY
    content_type: str = "text/html; charset=utf-8"
    # path -> Location answered with 302, e.g. {"/old": "/strategy"}.
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    # Seconds between 100-byte pieces of a 200 body: a page that trickles in.
    trickle_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def origin(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The pack's live URL on this site."""
        return self.origin + PAGE_PATH

    def url_for(self, path: str) -> str:
        return self.origin + path

    def publish(self, at: datetime | None = None, body: str | None = None) -> None:
        """Answer 200 from `at` (now when None), with `body` when given."""
        with self._lock:
            self.live_at = datetime.now(UTC) if at is None else at
            if body is not None:
                self.body = body

    def unpublish(self) -> None:
        with self._lock:
            self.live_at = None

    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self.requests)

    def _answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        now = datetime.now(UTC)
        with self._lock:
            if path in self.redirects:
                status, headers, body = 302, {"Location": self.redirects[path]}, b""
            elif path == PAGE_PATH and self.live_at is not None and now >= self.live_at:
                status = 200
                headers = {"Content-Type": self.content_type}
                body = self.body.encode("utf-8")
            else:
                status = 404
                headers = {"Content-Type": "text/html; charset=utf-8"}
                body = b"<html><body><h1>Page not found</h1></body></html>"
            self.requests.append(SeenRequest(at=now, path=path, status=status))
        return status, headers, body


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, as publishing sites do: the service's check reuses its connection.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status, headers, body = self.server.site._answer(self.path.split("?", 1)[0])
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        pause = self.server.site.trickle_seconds if status == 200 else 0.0
        if not pause:
            self.wfile.write(body)
            return
        for start in range(0, len(body), 100):
            self.wfile.write(body[start : start + 100])
            self.wfile.flush()
            time.sleep(pause)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.site: PublicationSite

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the connection's own thread, so a client that stalls
        # or distrusts the certificate cannot hold up the accept loop.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@contextmanager
def running_site(
    directory: Path, *, live_at: datetime | None = None, body: str = DEFAULT_BODY
) -> Iterator[PublicationSite]:
    """Start the site; the test CA's PEM is written to `directory / "link-ca.pem"`."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = directory / "link-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = _Server(context)
    host, port = server.server_address[:2]
    site = PublicationSite(host=str(host), port=int(port), ca_file=ca_file, live_at=live_at)
    site.body = body
    server.site = site
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def silent_server() -> Iterator[str]:
    """An https:// origin whose port completes TCP connections but never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    # Never accepted: the kernel finishes the handshake from the backlog, then nothing.
    listener.listen(8)
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def closed_port() -> str:
    """An https:// origin on a port that was free a moment ago (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://127.0.0.1:{port}"


@pytest.fixture
def publication_site(tmp_path: Path) -> Iterator[PublicationSite]:
    """A site answering 404 until the test calls `publish()` (or sets `live_at`)."""
    with running_site(tmp_path) as site:
        yield site
