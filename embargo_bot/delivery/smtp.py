"""Handing messages to the mail relay over SMTP, with aiosmtplib.

A ``RelaySession`` is one reused connection; a stage opens one per worker
(aiosmtplib serialises sends on a connection, so parallelism needs several).
It reconnects by itself after the relay drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiosmtplib
from pydantic import SecretStr

from embargo_bot.delivery.batches import (
    RecipientReply,
    replies_after_all_refused,
    replies_after_sendmail,
)
from embargo_bot.delivery.smtp_errors import from_exception
from embargo_bot.domain.outcomes import Outcome, OutcomeKind
from embargo_bot.domain.transport import SmtpSecurity


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    security: SmtpSecurity
    username: str | None
    password: SecretStr | None
    timeout: float
    ca_file: Path | None
    helo_name: str
    # MAIL FROM, where partners' servers send bounces; None: the caller's sender.
    return_path: str | None = None
    verp: bool = False  # tag the return path with each delivery's token


class RelaySession:
    """One SMTP connection, opened on first use and reopened after a failure."""

    def __init__(self, config: RelayConfig) -> None:
        self._config = config
        self._client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> RelaySession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        token: str | None = None,
    ) -> tuple[Outcome, ...]:
        """Offer one message for its envelope recipients: each one's outcome, in order.

        A recipient's outcome is its own RCPT reply when the relay refused it,
        else the message's. Never raises for a mail failure. ``token`` is the
        delivery's VERP token, for a message of one recipient: it tags the
        return path when VERP is on, and is the DSN envelope id where the relay
        offers DSN (a shared message is matched by its Message-ID and recipient).
        """
        # aiosmtplib's timeout is per socket operation; this bounds the whole message.
        budget = self._config.timeout * 4
        try:
            async with asyncio.timeout(budget):
                client = await self._connected()
                mail_from = envelope_sender(self._config, sender, token)
                options = dsn_options(token) if client.supports_extension("dsn") else []
                refused, reply = await client.sendmail(
                    mail_from, list(recipients), message, mail_options=options
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if len(recipients) == 1:
                return (from_exception(exc),)
            replies = replies_after_all_refused(
                recipients, [(r.recipient, r.code, r.message) for r in exc.recipients]
            )
            return tuple(_outcome(item) for item in replies)
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._discard()
            # MAIL FROM or DATA refused, a timeout, a dropped connection: the whole message.
            return (from_exception(exc),) * len(recipients)
        return tuple(_outcome(item) for item in replies_after_sendmail(recipients, refused, reply))

    async def open(self) -> None:
        """Connect ahead of use; a failure now is left for the first send to meet and record."""
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            async with asyncio.timeout(self._config.timeout):
                await self._connected()

    def discard(self) -> None:
        """Drop the connection without a goodbye: for sessions never used."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=None if config.password is None else config.password.get_secret_value(),
            timeout=config.timeout,
            use_tls=config.security is SmtpSecurity.TLS,
            # True, not the default None: a relay that stops offering STARTTLS
            # must be an error, never a silent downgrade to clear text.
            start_tls=config.security is SmtpSecurity.STARTTLS,
            validate_certs=True,
            tls_context=_tls_context(config.ca_file) if config.ca_file else None,
            local_hostname=config.helo_name,
        )
        await client.connect()
        self._client = client
        return client

    async def _discard(self) -> None:
        self.discard()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


def envelope_sender(config: RelayConfig, sender: str, token: str | None) -> str:
    """``local+TOKEN@domain`` with VERP on and a token, else the return path."""
    base = config.return_path or sender
    if not config.verp or token is None:
        return base
    local, _, domain = base.rpartition("@")
    return f"{local}+{token}@{domain}"


def dsn_options(token: str | None) -> list[str]:
    """RFC 3461: a bounce returns only the headers, never the embargoed
    material, and names the delivery by its token where VERP cannot."""
    return ["RET=HDRS"] if token is None else ["RET=HDRS", f"ENVID={token}"]


def _outcome(reply: RecipientReply) -> Outcome:
    return Outcome(OutcomeKind(reply.kind.value), reply.code, reply.text)


def _tls_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))
