"""Classifying what the relay said, or what went wrong, about one message."""

from __future__ import annotations

import aiosmtplib
import pytest

from embargo_bot.delivery.smtp_errors import from_exception
from embargo_bot.domain.outcomes import Outcome, OutcomeKind, accepted

AMBIGUOUS = "timed out (the relay may or may not have taken it): "
ACCEPTED = OutcomeKind.ACCEPTED
TEMPORARY = OutcomeKind.TEMPORARY
PERMANENT = OutcomeKind.PERMANENT


def type_name(value: object) -> str:
    return type(value).__name__


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (421, TEMPORARY),
        (450, TEMPORARY),
        (451, TEMPORARY),
        (452, TEMPORARY),
        (499, TEMPORARY),
        (500, PERMANENT),
        (550, PERMANENT),
        (552, PERMANENT),
        (553, PERMANENT),
        (554, PERMANENT),
    ],
)
def test_a_refusal_of_a_message_is_classified_by_its_reply_code(
    code: int, kind: OutcomeKind
) -> None:
    """RFC 5321 4.2.1: 4yz is transient, 5yz permanent."""
    refusal = aiosmtplib.SMTPDataError(code, "words")
    assert from_exception(refusal) == Outcome(kind, code, "words")


@pytest.mark.parametrize("code", [421, 454, 530, 535, 554])
def test_a_refused_session_is_temporary_and_about_the_relay(code: int) -> None:
    """A refused greeting, STARTTLS or login says nothing about a recipient: wait, retry."""
    for refusal in (
        aiosmtplib.SMTPConnectResponseError(code, "words"),
        aiosmtplib.SMTPHeloError(code, "words"),
        aiosmtplib.SMTPResponseException(code, "words"),
    ):
        assert from_exception(refusal) == Outcome(TEMPORARY, code, "words", relay_level=True)
    # A refused login is the session's too, and says it is a login: a setting to put right.
    assert from_exception(aiosmtplib.SMTPAuthenticationError(code, "words")) == Outcome(
        TEMPORARY, code, "words", relay_level=True, login_refused=True
    )


def test_accepted() -> None:
    assert accepted(250, "2.0.0 Ok: queued as 4F2") == Outcome(
        ACCEPTED, 250, "2.0.0 Ok: queued as 4F2"
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")]
            ),
            Outcome(PERMANENT, 550, "no such user"),
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(450, "mailbox busy", "x@y")]
            ),
            Outcome(TEMPORARY, 450, "mailbox busy"),
        ),
        (
            aiosmtplib.SMTPRecipientRefused(553, "relay not permitted", "x@y"),
            Outcome(PERMANENT, 553, "relay not permitted"),
        ),
        (
            aiosmtplib.SMTPDataError(451, "4.3.0 try again later"),
            Outcome(TEMPORARY, 451, "4.3.0 try again later"),
        ),
        (
            aiosmtplib.SMTPResponseException(421, "4.7.0 closing connection"),
            Outcome(TEMPORARY, 421, "4.7.0 closing connection", relay_level=True),
        ),
        (
            aiosmtplib.SMTPDataError(554, "5.7.1 message rejected"),
            Outcome(PERMANENT, 554, "5.7.1 message rejected"),
        ),
        (
            aiosmtplib.SMTPSenderRefused(553, "sender not allowed", "bot@gov.example"),
            Outcome(PERMANENT, 553, "sender not allowed"),
        ),
        (
            aiosmtplib.SMTPServerDisconnected("Connection lost"),
            Outcome(TEMPORARY, None, "connection failed: Connection lost", relay_level=True),
        ),
        (
            aiosmtplib.SMTPConnectTimeoutError("Timed out connecting to relay on port 587"),
            Outcome(TEMPORARY, None, AMBIGUOUS + "Timed out connecting to relay on port 587", True),
        ),
        (
            aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"),
            Outcome(TEMPORARY, None, AMBIGUOUS + "Timed out waiting for server response", True),
        ),
        (
            aiosmtplib.SMTPConnectError("Error connecting to relay on port 587"),
            Outcome(
                TEMPORARY, None, "connection failed: Error connecting to relay on port 587", True
            ),
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            Outcome(TEMPORARY, None, "connection failed: [Errno 111] Connection refused", True),
        ),
        (
            ConnectionResetError(),
            Outcome(TEMPORARY, None, "connection failed: ConnectionResetError", True),
        ),
        (TimeoutError(), Outcome(TEMPORARY, None, AMBIGUOUS + "TimeoutError", True)),
        (
            aiosmtplib.SMTPNotSupported("SMTPUTF8 not supported"),
            Outcome(TEMPORARY, None, "SMTP error: SMTPUTF8 not supported", True),
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.kind,
)
def test_from_exception(exc: BaseException, expected: Outcome) -> None:
    assert from_exception(exc) == expected


@pytest.mark.parametrize(
    "exc",
    [
        # aiosmtplib raises when a reply is not the one it expects, even a 2yz one:
        # 250 to DATA instead of 354 means the message itself was never sent.
        aiosmtplib.SMTPDataError(250, "2.0.0 Ok"),
        # 252 "cannot verify" to RCPT: aiosmtplib refuses the recipient and sends nothing.
        aiosmtplib.SMTPRecipientRefused(252, "2.1.5 cannot verify user", "x@y"),
        aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(252, "2.1.5 cannot verify user", "x@y")]
        ),
        # A greeting other than 220, or a 2yz other than 220 to STARTTLS: not connected.
        aiosmtplib.SMTPConnectResponseError(250, "hello"),
        aiosmtplib.SMTPResponseException(250, "2.0.0 Ready to start TLS"),
    ],
    ids=type_name,
)
def test_an_exception_is_never_an_accepted_message(exc: BaseException) -> None:
    outcome = from_exception(exc)
    assert outcome.kind is not OutcomeKind.ACCEPTED, outcome


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"), RuntimeError()])
def test_from_exception_refuses_errors_that_are_not_mail_errors(exc: BaseException) -> None:
    with pytest.raises(TypeError, match="not a mail error"):
        from_exception(exc)


@pytest.mark.parametrize(
    ("outcome", "reply"),
    [
        (Outcome(PERMANENT, 550, "no such user"), "550 no such user"),
        (Outcome(ACCEPTED, 250, "2.0.0 Ok"), "250 2.0.0 Ok"),
        (Outcome(TEMPORARY, None, "timed out: TimeoutError"), "timed out: TimeoutError"),
        (
            from_exception(
                aiosmtplib.SMTPRecipientsRefused(
                    [aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")]
                )
            ),
            "550 no such user",
        ),
    ],
)
def test_reply(outcome: Outcome, reply: str) -> None:
    assert outcome.reply == reply
