"""Building the bytes of each email: once per stage, then a few headers per recipient.

Everything every recipient of a stage shares (the MIME body with the encoded
PDF, and the common headers) is serialised once; each recipient's message is
then only its own To, Date and Message-ID in front of those bytes. That keeps
memory flat as the recipients grow. No message carries another recipient's
address: one to several recipients (EMBARGO_BOT_SMTP_MAX_RECIPIENTS) is
addressed to their list's name as an empty group, with the addresses only in
the envelope.

Boundaries are derived from the stage, not random, so the same delivery
rebuilt after a restart is the same bytes.
"""

from __future__ import annotations

import base64
import email
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address, Group
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from embargo_bot.domain.packs import Pack, StageKind, marking_for
from embargo_bot.messages.rendering import RenderedEmail

_POLICY = policy.SMTP  # CRLF line endings and 78-column folding, as RFC 5322 wants


@dataclass(frozen=True)
class StageMessage:
    """The part of a stage's email that is the same for every recipient."""

    pack_id: str
    kind: StageKind
    common_headers: bytes
    body: bytes

    def headed(self, personal: bytes) -> bytes:
        """The whole message, after one recipient's own lines (``personal_headers``)."""
        return b"".join((personal, self.common_headers, self.body))


@dataclass(frozen=True)
class Sender:
    display_name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


def new_message_id(pack_id: str, kind: StageKind, sender: Sender) -> str:
    # domain= is given so make_msgid neither looks up nor leaks this host's name.
    return make_msgid(idstring=f"{pack_id}.{kind}", domain=sender.domain)


@dataclass(frozen=True)
class Enclosure:
    """An exact message carried inside a test email, for an official to check."""

    file_name: str
    data: bytes


def build_stage_message(
    pack: Pack,
    kind: StageKind,
    rendered: RenderedEmail,
    *,
    sender: Sender,
    boundary_seed: str,
    pdf: bytes | None = None,
    calendar: bytes | None = None,
    cancel_calendar: bool = False,
    enclosures: Sequence[Enclosure] = (),
) -> StageMessage:
    body = EmailMessage(policy=_POLICY)
    body.set_content(rendered.text, cte="quoted-printable")
    body.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    if pdf is not None:
        # A stand-in, swapped for the real PDF after flattening: the email package
        # would hold several copies of a large attachment while it flattens.
        body.add_attachment(
            _PDF_PLACEHOLDER, maintype="application", subtype="pdf", filename=pack.pdf_name
        )
    if calendar is not None:
        body.add_attachment(
            calendar,
            maintype="text",
            subtype="calendar",
            filename="embargo-lift.ics",
            params={"method": "CANCEL" if cancel_calendar else "PUBLISH", "charset": "utf-8"},
        )
    for enclosure in enclosures:
        enclosed = email.message_from_bytes(enclosure.data, policy=_POLICY)
        # 7bit: every message composed here is already 7-bit clean (quoted-printable, base64).
        body.add_attachment(enclosed, filename=enclosure.file_name, cte="7bit")
    _fix_boundaries(body, seed=f"{pack.id}/{boundary_seed}")

    headers = EmailMessage(policy=_POLICY)
    headers["From"] = Address(display_name=sender.display_name, addr_spec=sender.address)
    headers["Reply-To"] = Address(addr_spec=pack.contact)
    headers["Subject"] = rendered.subject
    # RFC 7444's SIO-Label (the one standard header for a marking; informational):
    # the UK convention of the marking at the start of the subject is the one people read.
    headers["SIO-Label"] = f'marking="{marking_for(pack, kind)}"; fgcolor=black; bgcolor=white'
    headers["X-Embargo-Pack"] = pack.id
    headers["X-Embargo-Stage"] = kind.value
    headers["X-Embargo-Lift"] = pack.lift_at.isoformat().replace("+00:00", "Z")
    flat = bytes(body)
    return StageMessage(
        pack_id=pack.id,
        kind=kind,
        common_headers=_header_block(headers),
        body=flat if pdf is None else _with_attachment(flat, pdf),
    )


def personalise(
    stage: StageMessage,
    *,
    to_address: str,
    to_name: str | None,
    message_id: str,
    date: datetime,
    to_group: str | None = None,
) -> bytes:
    """One message, ready for SMTP DATA: to one recipient, or to several as ``to_group``.

    With ``to_group`` (a list's display name) the message carries several
    envelope recipients and ``To:`` is that name as an empty group, so no
    partner's address is in any header; ``to_address`` is then not written.
    """
    personal = personal_headers(
        to_address=to_address,
        to_name=to_name,
        message_id=message_id,
        date=date,
        to_group=to_group,
    )
    return stage.headed(personal)


def personal_headers(
    *,
    to_address: str,
    to_name: str | None,
    message_id: str,
    date: datetime,
    to_group: str | None = None,
) -> bytes:
    """The lines that differ between recipients: Date, Message-ID and To, in that order.

    Written directly: building them through the email package cost a
    millisecond a message, as much as the rest of the send.
    """
    if to_group is not None:
        to_line = group_to_line(to_group)
    else:
        to = formataddr((to_name, to_address)) if to_name else to_address
        if len(to) > _MAX_VALUE:
            to = to_address  # a name that long would break RFC 5322's line limit
        to_line = f"To: {to}\r\n".encode("ascii")
    personal = f"Date: {format_datetime(date)}\r\nMessage-ID: {message_id}\r\n"
    return personal.encode("ascii") + to_line


class MessageCopies:
    """Each recipient's copy of a stage's message, made from the copy handed out before.

    A 20 MB PDF is 27 MB of base64 in every copy, and aiosmtplib holds the
    copy it is given for the whole send (and makes several of its own). Kept
    beside the stage's message, that copy would be a second 27 MB. Instead the
    shared part is read from the last copy handed out, so only one copy of it
    is held, however many recipients the stage has: once no send holds the
    copy before, it goes.
    """

    def __init__(self, message: StageMessage) -> None:
        self.pack_id = message.pack_id
        self.kind = message.kind
        self._headers_end = len(message.common_headers)
        self.size = self._headers_end + len(message.body)
        # The common headers and the body: first the stage's own, then inside the last copy.
        self._shared: tuple[bytes | memoryview, ...] = (message.common_headers, message.body)

    def personalise(
        self,
        *,
        to_address: str,
        to_name: str | None,
        message_id: str,
        date: datetime,
        to_group: str | None = None,
    ) -> bytes:
        """The same bytes as ``personalise`` of the stage's message."""
        return self.headed(
            personal_headers(
                to_address=to_address,
                to_name=to_name,
                message_id=message_id,
                date=date,
                to_group=to_group,
            )
        )

    def headed(self, personal: bytes) -> bytes:
        """A copy after one recipient's own lines (``personal_headers``); kept for the next."""
        data = b"".join((personal, *self._shared))
        self._shared = (memoryview(data)[len(personal) :],)
        return data

    def message(self) -> StageMessage:
        """The stage's message, copied out: to encrypt it for one recipient."""
        if len(self._shared) == 2:
            headers, body = (bytes(part) for part in self._shared)
        else:
            shared = self._shared[0]
            headers, body = bytes(shared[: self._headers_end]), bytes(shared[self._headers_end :])
        return StageMessage(pack_id=self.pack_id, kind=self.kind, common_headers=headers, body=body)


def group_to_line(display_name: str) -> bytes:
    """`To: Police Scotland:;` + CRLF: an empty RFC 5322 group (3.4), in ASCII (RFC 2047
    words for other names), folded by the email package as any header it writes."""
    header = _POLICY.header_factory("To", Group(display_name, ()))
    folded: str = header.fold(policy=_POLICY)
    return folded.encode("ascii")


# RFC 5322 2.1.1: no line over 998 characters. These values are single tokens,
# so they are written unfolded; a Message-ID line is about 90 characters.
_MAX_VALUE = 900


_PDF_PLACEHOLDER = b"embargo-bot: the PDF goes here"
_PLACEHOLDER_LINE = base64.b64encode(_PDF_PLACEHOLDER)  # as the email package writes it
_BASE64_LINE = 76  # RFC 2045 6.8: encoded lines of at most 76 characters
_CHUNK = 57 * 1024  # bytes encoding to 1,024 whole base64 lines


def _with_attachment(flat: bytes, pdf: bytes) -> bytes:
    """The flattened body with the placeholder replaced by the PDF in base64 lines."""
    at = flat.find(_PLACEHOLDER_LINE)
    if at < 0 or flat.find(_PLACEHOLDER_LINE, at + 1) >= 0:
        raise ValueError("the attachment placeholder is not in the body exactly once")
    out = bytearray(flat[:at])
    for start in range(0, len(pdf), _CHUNK):
        encoded = base64.b64encode(pdf[start : start + _CHUNK])
        for line in range(0, len(encoded), _BASE64_LINE):
            out += encoded[line : line + _BASE64_LINE]
            out += b"\r\n"
    if pdf:
        del out[-2:]  # the placeholder's own line ending follows
    out += flat[at + len(_PLACEHOLDER_LINE) :]
    return bytes(out)


def _header_block(message: EmailMessage) -> bytes:
    """A message's header lines without the blank line that ends them."""
    return bytes(message).removesuffix(b"\r\n")


def _fix_boundaries(message: EmailMessage, *, seed: str) -> None:
    # "=_" can occur neither in base64 nor in quoted-printable text, so the
    # boundary cannot collide with any encoded body line.
    digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
    for depth, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"=_embargo_{digest}_{depth}")
