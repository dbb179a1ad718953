"""A real SMTP server on loopback that stands in for the mail relay.

Used by ``embargo-bot demo`` and by the tests: aiosmtpd speaking real SMTP on
127.0.0.1, recording what it accepts and when, by the server's own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """One message as the relay accepted it."""

    received_at: datetime
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    over_tls: bool = False


class CapturingHandler:
    """Accepts every message and keeps it. Subclass and override to misbehave."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the server runs in its own thread
        self._received: list[Received] = []

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        item = Received(
            received_at=datetime.now(UTC),
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(data),
            over_tls=session.ssl is not None,
        )
        with self._lock:
            self._received.append(item)
        return "250 2.0.0 Message accepted for delivery"


def free_loopback_port() -> int:
    # aiosmtpd's Controller cannot take port 0 (aiosmtpd issues #276, #388).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _login_options(logins: dict[str, str] | None) -> dict[str, Any]:
    """With ``logins``, offer AUTH and take only those username/password pairs (535 otherwise)."""
    if logins is None:
        return {}
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (data.login.decode(), data.password.decode())
        return AuthResult(success=logins.get(given[0]) == given[1], handled=False)

    # Clear-text AUTH on loopback only: the stand-in never listens anywhere else.
    return {"authenticator": authenticator, "auth_require_tls": False}


class _Controller(Controller):
    """aiosmtpd's, closing the sessions still open when it stops.

    ``Controller.stop`` cancels its tasks and stops its loop, leaving the socket
    of a client still connected (a connection opened ahead, an idle one) to the
    garbage collector, which warns of it in whatever test then runs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions: list[Any] = []

    def factory(self) -> Any:
        session = super().factory()  # type: ignore[no-untyped-call]  # aiosmtpd is untyped
        self._sessions.append(session)
        return session

    def stop_closing_sessions(self) -> None:
        if self.loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self._close_sessions(), self.loop)
            with contextlib.suppress(Exception):
                closing.result(timeout=5)
        self.stop()

    async def _close_sessions(self) -> None:
        for session in self._sessions:
            transport = getattr(session, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()
        await asyncio.sleep(0)  # the transports finish closing on the loop's next turn
        await asyncio.sleep(0)


class StandInRelay:
    """``with StandInRelay() as relay:`` serves SMTP on ``relay.port`` until the block ends."""

    def __init__(
        self,
        handler: CapturingHandler | None = None,
        *,
        port: int | None = None,
        tls_context: ssl.SSLContext | None = None,
        logins: dict[str, str] | None = None,
    ) -> None:
        self.handler = handler or CapturingHandler()
        self.host = "127.0.0.1"  # never ::1: Controller(hostname=None) binds IPv6
        self.port = port or free_loopback_port()
        # With a TLS context the stand-in offers STARTTLS and requires it, like a real relay.
        self._controller = _Controller(
            self.handler,
            hostname=self.host,
            port=self.port,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
            **_login_options(logins),
        )

    def __enter__(self) -> StandInRelay:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._controller.stop_closing_sessions()

    @property
    def received(self) -> list[Received]:
        return self.handler.received
