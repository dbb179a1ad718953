"""What an attempt to hand one message to the relay came to: pure classification."""

from __future__ import annotations

from dataclasses import dataclass

import aiosmtplib

from embargo_bot.packs import OutcomeKind


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    code: int | None
    text: str

    @property
    def reply(self) -> str:
        """The server's words as recorded for the official."""
        return self.text if self.code is None else f"{self.code} {self.text}"


def accepted(code: int, text: str) -> Outcome:
    return Outcome(OutcomeKind.ACCEPTED, code, text)


def from_exception(exc: BaseException) -> Outcome:
    """Classify an error raised while connecting or sending one message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return _refused(refused.code, refused.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _refused(exc.code, exc.message)
    # Timeouts before connection errors: SMTPConnectTimeoutError is both.
    if isinstance(exc, TimeoutError):
        # After DATA this is ambiguous: the relay may have taken the message.
        return Outcome(OutcomeKind.TEMPORARY, None, f"timed out: {_describe(exc)}")
    if isinstance(exc, OSError):
        return Outcome(OutcomeKind.TEMPORARY, None, f"connection failed: {_describe(exc)}")
    if isinstance(exc, aiosmtplib.SMTPException):
        return Outcome(OutcomeKind.TEMPORARY, None, f"SMTP error: {_describe(exc)}")
    raise TypeError(f"not a mail error: {exc!r}")


def _refused(code: int, text: str) -> Outcome:
    # RFC 5321 4.2.1: 4yz transient, 5yz permanent. An error is never a delivery,
    # even with a 2xx code: aiosmtplib raises when a reply is not the one the
    # protocol step expects (e.g. 250 where DATA wants 354).
    kind = OutcomeKind.PERMANENT if 500 <= code < 600 else OutcomeKind.TEMPORARY
    return Outcome(kind, code, text)


def _describe(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__
