"""Classifying what aiosmtplib raised into an ``Outcome``: pure, one function per error."""

from __future__ import annotations

import aiosmtplib

from embargo_bot.domain.outcomes import AMBIGUOUS, Outcome, OutcomeKind

# Refusals that are about this message; any other refusal is about the session.
_MESSAGE_REFUSALS = (
    aiosmtplib.SMTPRecipientRefused,
    aiosmtplib.SMTPSenderRefused,
    aiosmtplib.SMTPDataError,
)


def from_exception(exc: BaseException) -> Outcome:
    """Classify an error raised while connecting or sending one message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        refused = exc.recipients[0]
        return _refused(refused.code, refused.message)
    if isinstance(exc, _MESSAGE_REFUSALS):
        return _refused(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # Temporary: a password put right within the retry window still delivers.
        return Outcome(
            OutcomeKind.TEMPORARY, exc.code, exc.message, relay_level=True, login_refused=True
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # A refused greeting (421 on connect), EHLO, STARTTLS or login: the
        # session failed, not the message. Temporary, so that a relay that comes
        # back, or a setting put right, still delivers within the retry window.
        return Outcome(OutcomeKind.TEMPORARY, exc.code, exc.message, relay_level=True)
    # Timeouts before connection errors: SMTPConnectTimeoutError is both.
    if isinstance(exc, TimeoutError):
        # After DATA this is ambiguous: the relay may have taken the message.
        text = f"timed out ({AMBIGUOUS}): {_describe(exc)}"
        return Outcome(OutcomeKind.TEMPORARY, None, text, relay_level=True)
    if isinstance(exc, OSError):
        text = f"connection failed: {_describe(exc)}"
        return Outcome(OutcomeKind.TEMPORARY, None, text, relay_level=True)
    if isinstance(exc, aiosmtplib.SMTPException):
        text = f"SMTP error: {_describe(exc)}"
        return Outcome(OutcomeKind.TEMPORARY, None, text, relay_level=True)
    raise TypeError(f"not a mail error: {exc!r}")


def relay_problem(outcome: Outcome) -> str:
    """What an operator reads when the relay as a whole failed: what it said, what to check."""
    if outcome.login_refused:
        return (
            f"the relay refused the login ({outcome.reply}): check "
            "EMBARGO_BOT_SMTP_USERNAME and EMBARGO_BOT_SMTP_PASSWORD"
        )
    return f"the relay cannot be reached ({outcome.reply})"


def _refused(code: int, text: str) -> Outcome:
    # RFC 5321 4.2.1: 4yz transient, 5yz permanent. An error is never a delivery,
    # even with a 2xx code: aiosmtplib raises when a reply is not the one the
    # protocol step expects (e.g. 250 where DATA wants 354).
    kind = OutcomeKind.PERMANENT if 500 <= code < 600 else OutcomeKind.TEMPORARY
    return Outcome(kind, code, text)


def _describe(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__
