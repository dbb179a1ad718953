"""Delivery reports as Postfix and Exchange write them, and mail that is not one.

Byte layouts follow real reports from Postfix 3.7 (``bounce(8)``) and Exchange
Online / Exchange 2019 NDRs, with the hosts and addresses changed to
``.example``.
"""

from __future__ import annotations

RETURN_PATH = "bounces@gov.example"
PACK = "2026-strategy-refresh"
MESSAGE_ID = "<177.2026-strategy-refresh.notice@gov.example>"


def original(
    *,
    to: str = "officer@partner.example",
    message_id: str | None = MESSAGE_ID,
    pack: str | None = PACK,
    stage: str | None = "notice",
) -> str:
    """The headers of a notice as embargo-bot sends it."""
    lines = [
        "Return-Path: <bounces@gov.example>",
        "Date: Tue, 01 Dec 2026 09:00:00 +0000",
    ]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    lines += [
        f"To: {to}",
        "From: Publications Office <publications@gov.example>",
        "Subject: EMBARGOED until 10:00: Strategy refresh",
        "MIME-Version: 1.0",
    ]
    if pack is not None:
        lines.append(f"X-Embargo-Pack: {pack}")
    if stage is not None:
        lines.append(f"X-Embargo-Stage: {stage}")
    lines.append('Content-Type: multipart/mixed; boundary="==stage-boundary=="')
    return "\r\n".join(lines) + "\r\n"


ORIGINAL_BODY = (
    "\r\n--==stage-boundary==\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "Embargoed until 10:00.\r\n"
    "--==stage-boundary==--\r\n"
)


def postfix_report(
    *,
    envelope_to: str = RETURN_PATH,
    recipients: tuple[tuple[str, str, str, str], ...] = (
        (
            "officer@partner.example",
            "failed",
            "5.1.1",
            "smtp; 550 5.1.1 <officer@partner.example>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
        ),
    ),
    returned: str | None = None,
    headers_only: bool = False,
    subject: str = "Undelivered Mail Returned to Sender",
) -> bytes:
    """A Postfix bounce(8) report; recipients are (address, action, status, diagnostic)."""
    returned = original() if returned is None else returned
    blocks = []
    for address, action, status, diagnostic in recipients:
        block = (
            f"Final-Recipient: rfc822; {address}\r\n"
            f"Original-Recipient: rfc822;{address}\r\n"
            f"Action: {action}\r\n"
            f"Status: {status}\r\n"
            "Remote-MTA: dns; mx.partner.example\r\n"
        )
        if action == "delayed":
            block += "Will-Retry-Until: Tue, 6 Dec 2026 09:00:01 +0000 (GMT)\r\n"
        # Postfix folds a long diagnostic onto continuation lines.
        if len(diagnostic) > 60:
            cut = diagnostic.rfind(" ", 0, 60)
            diagnostic = diagnostic[:cut] + "\r\n    " + diagnostic[cut + 1 :]
        block += f"Diagnostic-Code: {diagnostic}\r\n"
        blocks.append(block)
    returned_part = (
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n" + returned
        if headers_only
        else "Content-Description: Undelivered Message\r\n"
        "Content-Type: message/rfc822\r\n\r\n" + returned + ORIGINAL_BODY
    )
    text = (
        f"Return-Path: <>\r\n"
        f"Delivered-To: {envelope_to}\r\n"
        "Received: by relay.gov.example (Postfix) id 4Q1xYz2Lw3z9sT; Tue,  1 Dec 2026 09:00:03\r\n"
        "Date: Tue,  1 Dec 2026 09:00:03 +0000 (GMT)\r\n"
        "From: MAILER-DAEMON@relay.gov.example (Mail Delivery System)\r\n"
        f"Subject: {subject}\r\n"
        f"To: {envelope_to}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        '\tboundary="4Q1xYz2Lw3z9sT.1764579603/relay.gov.example"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        "Message-Id: <20261201090003.4Q1xYz2Lw3z9sT@relay.gov.example>\r\n"
        "\r\n"
        "This is a MIME-encapsulated message.\r\n\r\n"
        "--4Q1xYz2Lw3z9sT.1764579603/relay.gov.example\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host relay.gov.example.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        "--4Q1xYz2Lw3z9sT.1764579603/relay.gov.example\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.gov.example\r\n"
        "X-Postfix-Queue-ID: 4Q1xYz2Lw3z9sT\r\n"
        f"X-Postfix-Sender: rfc822; {envelope_to}\r\n"
        "Arrival-Date: Tue,  1 Dec 2026 09:00:01 +0000 (GMT)\r\n"
        "\r\n" + "\r\n".join(blocks) + "\r\n"
        "--4Q1xYz2Lw3z9sT.1764579603/relay.gov.example\r\n"
        + returned_part
        + "\r\n--4Q1xYz2Lw3z9sT.1764579603/relay.gov.example--\r\n"
    )
    return text.encode()


def postfix_delayed() -> bytes:
    return postfix_report(
        recipients=(
            (
                "officer@partner.example",
                "delayed",
                "4.4.1",
                "X-Postfix; connect to mx.partner.example[192.0.2.25]:25: Connection timed out",
            ),
        ),
        headers_only=True,
        subject="Delayed Mail (still being retried)",
    )


def exchange_report(
    *,
    envelope_to: str = RETURN_PATH,
    recipient: str = "press.office@partner.example",
    returned: str | None = None,
) -> bytes:
    """An Exchange Online NDR: mailbox full, with the original's headers only."""
    returned = original(to=recipient) if returned is None else returned
    boundary = "_000_7a1d2f0e9c3b4e6fa2d1c0b9e8f7a6d5EX01partnerexample_"
    alt = "_001_7a1d2f0e9c3b4e6fa2d1c0b9e8f7a6d5EX01partnerexample_"
    text = (
        "Received: from EX01.partner.example (198.51.100.7) by relay.gov.example\r\n"
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e"
        "@partner.example>\r\n"
        f"To: <{envelope_to}>\r\n"
        "Date: Tue, 1 Dec 2026 09:04:10 +0000\r\n"
        "Content-Language: en-GB\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        "Message-ID: <b8f0e3c2-5d1a-4b7e-9f3c-2a1d0e9b8c7f@EX01.partner.example>\r\n"
        "Subject: Undeliverable: EMBARGOED until 10:00: Strategy refresh\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "X-MS-Exchange-Message-Is-Ndr:\r\n"
        "MIME-Version: 1.0\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
        f"--{alt}\r\n"
        'Content-Type: text/plain; charset="us-ascii"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Your message to press.office@partner.example couldn't be delivered.\r\n"
        "press.office's mailbox is full.\r\n\r\n"
        f"--{alt}\r\n"
        'Content-Type: text/html; charset="us-ascii"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<html><body><p>press.office's mailbox is full.</p></body></html>\r\n\r\n"
        f"--{alt}--\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns;EX01.partner.example\r\n"
        "Received-From-MTA: dns;relay.gov.example\r\n"
        "Arrival-Date: Tue, 1 Dec 2026 09:04:08 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822;{recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.2.2\r\n"
        "Diagnostic-Code: smtp;554 5.2.2 mailbox full;\r\n"
        " STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded;\r\n"
        " Failed to process message due to a permanent exception\r\n"
        "X-Display-Name: Press Office\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n" + returned + f"\r\n--{boundary}--\r\n"
    )
    return text.encode()


OUT_OF_OFFICE = (
    b"Delivered-To: bounces@gov.example\r\n"
    b"From: Alpha One <one@partner.example>\r\n"
    b"To: bounces@gov.example\r\n"
    b"Subject: Automatic reply: EMBARGOED until 10:00: Strategy refresh\r\n"
    b"Date: Tue, 1 Dec 2026 09:00:05 +0000\r\n"
    b"Message-ID: <ooo-1@partner.example>\r\n"
    b"Auto-Submitted: auto-replied\r\n"
    b"X-Auto-Response-Suppress: All\r\n"
    b"X-MS-Exchange-Inbox-Rules-Loop: one@partner.example\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"I am out of the office until Monday. For urgent press matters call the desk.\r\n"
)

ORDINARY_MAIL = (
    b"From: Someone <someone@partner.example>\r\n"
    b"To: bounces@gov.example\r\n"
    b"Subject: Please take me off this list\r\n"
    b"Date: Tue, 1 Dec 2026 09:30:00 +0000\r\n"
    b"Message-ID: <person-1@partner.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThanks.\r\n--b1--\r\n"
)

# Says it is a delivery report; carries no delivery-status part.
MALFORMED_NO_STATUS = (
    b"From: MAILER-DAEMON@relay.gov.example\r\n"
    b"To: bounces@gov.example\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="x"\r\n'
    b"\r\n--x\r\nContent-Type: text/plain\r\n\r\nIt bounced.\r\n--x--\r\n"
)


def malformed_no_action() -> bytes:
    """A recipient block whose Action line is missing."""
    raw = postfix_report()
    return raw.replace(b"Action: failed\r\n", b"")
