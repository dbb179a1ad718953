"""Reading one message from the bounce mailbox: a delivery report, or not.

A delivery status notification (RFC 3464) is a ``multipart/report`` with
``report-type=delivery-status``: a human-readable part, a
``message/delivery-status`` part (one block about the message, then one block
per recipient), and the returned message or its headers (``message/rfc822`` or
``text/rfc822-headers``, RFC 6522). Only the report type decides: many bounces
carry ``Auto-Submitted: auto-replied`` just as out-of-office replies do.

Everything here is pure and never raises: the mailbox is written to by anyone
on the internet, so any input becomes one of the three results.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.parser
import quopri
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum

# A diagnostic is shown in `show`, in the contact's alert email and in logs:
# one line, printable, and short enough to read.
MAX_TEXT = 500

_REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})  # RFC 3464, RFC 6533
_ENCODINGS = frozenset({"base64", "quoted-printable"})
_STATUS_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_RETURNED_MESSAGE = frozenset({"message/rfc822", "message/global"})
_RETURNED_HEADERS = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
# RFC 3464 2.3.4: class.subject.detail, class 2, 4 or 5.
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
# Where the report says whom it was delivered to: the VERP address, if any.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")


class Action(StrEnum):
    """RFC 3464 2.3.3: what the reporting server did for one recipient."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a delivery report."""

    final_recipient: str  # the address, without its "rfc822;" type
    action: Action
    status: str  # e.g. "5.1.1"
    diagnostic: str  # the server's words, one line; "" when the report gives none
    original_recipient: str | None = None


@dataclass(frozen=True)
class OriginalMessage:
    """What the report returned of the message that could not be delivered."""

    message_id: str | None = None
    pack: str | None = None  # X-Embargo-Pack
    stage: str | None = None  # X-Embargo-Stage


@dataclass(frozen=True)
class DeliveryReport:
    recipients: tuple[RecipientStatus, ...]
    original: OriginalMessage
    envelope_recipients: tuple[str, ...]  # where the report was delivered: a VERP address
    # RFC 3461 ENVID, given with MAIL FROM and returned here by relays that
    # support the DSN extension: the same token, without plus-addressing.
    envelope_id: str | None = None
    report_message_id: str | None = None  # the report's own Message-ID, for logs

    @property
    def failures(self) -> tuple[RecipientStatus, ...]:
        return tuple(r for r in self.recipients if r.action is Action.FAILED)

    @property
    def delays(self) -> tuple[RecipientStatus, ...]:
        return tuple(r for r in self.recipients if r.action is Action.DELAYED)


@dataclass(frozen=True)
class NotAReport:
    """An auto-reply, a person's mail, spam: left unread in the mailbox."""

    reason: str


@dataclass(frozen=True)
class MalformedReport:
    """Says it is a delivery report but cannot be read as one; logged, left alone."""

    reason: str


Classification = DeliveryReport | NotAReport | MalformedReport


class _Malformed(Exception):
    pass


def classify(raw: bytes) -> Classification:
    """Classify one message exactly as fetched from the mailbox."""
    try:
        message = email.message_from_bytes(raw, policy=policy.compat32)
        return _classify(message)
    except _Malformed as exc:
        return MalformedReport(one_line(str(exc)))
    except Exception as exc:  # hostile input must never stop the reader
        return MalformedReport(one_line(f"unreadable message ({type(exc).__name__})"))


def one_line(text: str) -> str:
    """Printable, single-line and at most MAX_TEXT characters."""
    # Cut first: a hostile diagnostic may be megabytes long.
    printable = "".join(c if c.isprintable() else " " for c in text[: MAX_TEXT * 4])
    flat = " ".join(printable.split())
    return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 1] + "…"


def _classify(message: Message) -> Classification:
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type", "", header="content-type") or "")
    if content_type != "multipart/report":
        return NotAReport(f"a {one_line(content_type)} message, not a delivery report")
    if report_type.strip().lower() not in _REPORT_TYPES:
        return NotAReport(f"a report of type {one_line(report_type) or '(none)'!r}")
    payload = message.get_payload()
    if not isinstance(payload, list):
        raise _Malformed("multipart/report without parts")
    parts = [p for p in payload if isinstance(p, Message)]
    status_part = _first(parts, _STATUS_PARTS)
    if status_part is None:
        raise _Malformed("delivery report without a message/delivery-status part")
    # A block without a single field is a stray blank line, not a recipient.
    blocks = [block for block in _status_blocks(status_part) if block.keys()]
    # The first block is about the message (RFC 3464 2.2), the rest one per
    # recipient; some servers leave the first out.
    envelope_id = None
    if blocks and blocks[0].get("Final-Recipient") is None:
        envelope_id = _header(blocks[0], "Original-Envelope-Id")
        blocks = blocks[1:]
    recipients = tuple(_recipient(block) for block in blocks)
    if not recipients:
        raise _Malformed("delivery report names no recipient")
    return DeliveryReport(
        recipients=recipients,
        original=_original(parts),
        envelope_recipients=_envelope_recipients(message),
        envelope_id=envelope_id,
        report_message_id=_header(message, "Message-ID"),
    )


def _first(parts: list[Message], types: frozenset[str]) -> Message | None:
    for part in parts:
        if isinstance(part, Message) and part.get_content_type() in types:
            return part
    return None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if isinstance(payload, list) and encoding not in _ENCODINGS:
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, list):
        # Encoded although RFC 2046 5.2.1 forbids it for message/*, as some
        # gateways do: the parser split the encoded text; put it back together.
        encoded = "\n".join(b.as_string() for b in payload if isinstance(b, Message))
        text = _decode(encoded.encode("ascii", "replace"), encoding)
    else:
        # message/global-delivery-status reaches us as text.
        decoded = part.get_payload(decode=True)
        if not isinstance(decoded, bytes):
            raise _Malformed("empty message/delivery-status part")
        text = decoded
    chunks = re.split(r"(?:\r?\n[ \t]*){2,}", text.decode("utf-8", "replace").strip())
    parser = email.parser.HeaderParser(policy=policy.compat32)
    return [parser.parsestr(chunk.strip("\r\n") + "\n") for chunk in chunks if chunk.strip()]


def _decode(data: bytes, encoding: str) -> bytes:
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    try:
        return base64.b64decode(b"".join(data.split()), validate=False)
    except (binascii.Error, ValueError):
        raise _Malformed("message/delivery-status part: bad base64") from None


def _recipient(block: Message) -> RecipientStatus:
    final = _typed_address(_header(block, "Final-Recipient"))
    if not final:
        raise _Malformed("a recipient block without Final-Recipient")
    action_text = (_header(block, "Action") or "").lower()
    if not action_text:
        raise _Malformed(f"recipient {final}: no Action")
    # RFC 3464 2.3.3 allows comments after the action, e.g. "failed (bad mailbox)".
    action_word = action_text.split("(", 1)[0].strip()
    try:
        action = Action(action_word)
    except ValueError:
        raise _Malformed(f"recipient {final}: unknown Action {action_text!r}") from None
    status_text = _header(block, "Status") or ""
    found = _STATUS.match(status_text.strip())
    if found is None:
        raise _Malformed(f"recipient {final}: Status {status_text!r} is not n.n.n")
    diagnostic = _header(block, "Diagnostic-Code") or ""
    return RecipientStatus(
        final_recipient=final,
        action=action,
        status=found.group(0),
        diagnostic=_without_type(diagnostic),
        original_recipient=_typed_address(_header(block, "Original-Recipient")) or None,
    )


def _original(parts: list[Message]) -> OriginalMessage:
    headers: Message | None = None
    returned = _first(parts, _RETURNED_MESSAGE)
    if returned is not None:
        inner = returned.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            headers = inner[0]
    if headers is None:
        returned = _first(parts, _RETURNED_HEADERS)
        if returned is not None:
            text = returned.get_payload(decode=True)
            if isinstance(text, bytes):
                headers = email.parser.BytesHeaderParser(policy=policy.compat32).parsebytes(
                    text.lstrip(b"\r\n")
                )
    if headers is None:
        return OriginalMessage()
    return OriginalMessage(
        message_id=_header(headers, "Message-ID"),
        pack=_header(headers, "X-Embargo-Pack"),
        stage=_header(headers, "X-Embargo-Stage"),
    )


def _envelope_recipients(message: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in _ENVELOPE_HEADERS:
        values = [str(v) for v in message.get_all(name, [])]
        for _, address in getaddresses(values):
            address = one_line(address)
            if "@" in address and address not in found:
                found.append(address)
    return tuple(found)


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    text = one_line(str(value))
    return text or None


def _typed_address(value: str | None) -> str:
    """``rfc822; a@b.example`` -> ``a@b.example`` (RFC 3464 2.3.2: address-type ; address)."""
    if not value:
        return ""
    address = _without_type(value).strip().strip("<>").strip()
    return address if "@" in address else ""


def _without_type(value: str) -> str:
    kind, sep, rest = value.partition(";")
    # Only a short atom counts as a type ("rfc822", "smtp", "X-Postfix"): a
    # diagnostic without one may itself contain semicolons.
    if sep and re.fullmatch(r"[A-Za-z0-9-]{1,20}", kind.strip()):
        return rest.strip()
    return value.strip()
