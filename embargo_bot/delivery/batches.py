"""A stage's pending recipients as messages of up to N envelope recipients (capped relays).

Pure: which recipients share a message, what its `To:` says, and how aiosmtplib's answer
to one `sendmail` becomes one reply per recipient.

- EMBARGO_BOT_SMTP_MAX_RECIPIENTS = 1 (the default): one message per recipient, as before.
- More than 1: recipients of the same list share messages of up to that many RCPT TO,
  addressed `To: Police Scotland:;` (an empty RFC 5322 group, section 3.4), so no
  partner's address is in any header. Chunks of a list are as even as possible
  (51 at 50 a message: 26 + 25), so parallel connections finish together.
- A recipient with an S/MIME certificate, or on an encrypted list, always goes alone:
  the message is encrypted to that one certificate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Group
from enum import StrEnum
from typing import TypeVar

from embargo_bot.messages.mime import group_to_line

_T = TypeVar("_T")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PendingRecipient:
    """One recipient still owed this stage's email."""

    address: str
    # The list's identity (e.g. its file name) and the name its partners know it by.
    list_key: str
    list_name: str
    # Has an S/MIME certificate, or is on an encrypted list: a message of their own.
    alone: bool = False


@dataclass(frozen=True)
class Batch:
    """One message: its envelope recipients, and how its `To:` header is written."""

    recipients: tuple[PendingRecipient, ...]
    # An empty group naming the list; None: To: is the one recipient's own address.
    to_group: str | None

    @property
    def envelope(self) -> tuple[str, ...]:
        return tuple(recipient.address for recipient in self.recipients)

    def to_header(self) -> Group | str:
        """The value to assign to an `EmailMessage`'s `To:`."""
        if self.to_group is None:
            return self.recipients[0].address
        return Group(self.to_group, ())

    def to_header_line(self) -> bytes:
        """`To: Police Scotland:;` + CRLF, in ASCII (RFC 2047 words for other names), for
        writing the header directly in front of the shared bytes as compose does."""
        if self.to_group is not None:
            return group_to_line(self.to_group)  # the very line personalise writes
        header = policy.SMTP.header_factory("To", self.to_header())
        folded: str = header.fold(policy=policy.SMTP)
        return folded.encode("ascii")


def split_into_batches(
    pending: Sequence[PendingRecipient], max_recipients: int
) -> tuple[Batch, ...]:
    """The stage's messages, in the order their first recipient was pending."""
    if max_recipients < 1:
        raise ValueError("EMBARGO_BOT_SMTP_MAX_RECIPIENTS must be 1 or more")
    seen: set[str] = set()
    for recipient in pending:
        # aiosmtplib reports refusals keyed by address: one address, one reply.
        folded = recipient.address.casefold()
        if folded in seen:
            raise ValueError(f"{recipient.address} is pending twice in one stage")
        seen.add(folded)
        if _CONTROL.search(recipient.list_name) or not recipient.list_name.strip():
            raise ValueError(f"list {recipient.list_key} has no usable display name for To:")
    if max_recipients == 1:
        return tuple(Batch((recipient,), None) for recipient in pending)
    batches: list[tuple[int, Batch]] = []
    by_list: dict[str, list[tuple[int, PendingRecipient]]] = {}
    for position, recipient in enumerate(pending):
        if recipient.alone:
            batches.append((position, Batch((recipient,), None)))
        else:
            by_list.setdefault(recipient.list_key, []).append((position, recipient))
    for members in by_list.values():
        for chunk in _even_chunks(members, max_recipients):
            group = Batch(tuple(recipient for _, recipient in chunk), chunk[0][1].list_name)
            batches.append((chunk[0][0], group))
    return tuple(batch for _, batch in sorted(batches, key=lambda item: item[0]))


def count_messages(pending: Sequence[PendingRecipient], max_recipients: int) -> int:
    """How many messages the stage takes: what duration estimates count."""
    return len(split_into_batches(pending, max_recipients))


def _even_chunks(items: list[_T], most: int) -> list[list[_T]]:
    count = math.ceil(len(items) / most)
    size, extra = divmod(len(items), count)
    chunks: list[list[_T]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


class ReplyKind(StrEnum):
    # The same words as the store's OutcomeKind, so the lead can map one to the other.
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class RecipientReply:
    """What the relay said about one envelope recipient of a message."""

    address: str
    kind: ReplyKind
    code: int | None
    text: str


def _kind(code: int) -> ReplyKind:
    # RFC 5321 4.2.1: 4yz transient, 5yz permanent.
    return ReplyKind.PERMANENT if 500 <= code < 600 else ReplyKind.TEMPORARY


def replies_after_sendmail(
    envelope: Sequence[str], refused: Mapping[str, tuple[int, str]], data_reply: str
) -> tuple[RecipientReply, ...]:
    """`sendmail` returned `(refused, data_reply)`: each RCPT's own answer.

    aiosmtplib returns normally when at least one RCPT was accepted; the refused are in
    the dict, keyed by the address exactly as passed, with their RCPT reply. Everyone else
    was accepted with the message (the 250 to DATA, whose text is `data_reply`).
    """
    unknown = set(refused) - set(envelope)
    if unknown:
        raise ValueError(f"refusals for addresses not in the envelope: {sorted(unknown)}")
    replies: list[RecipientReply] = []
    for address in envelope:
        if address in refused:
            code, text = refused[address]
            replies.append(RecipientReply(address, _kind(code), code, text))
        else:
            replies.append(RecipientReply(address, ReplyKind.ACCEPTED, 250, data_reply))
    return tuple(replies)


def replies_after_all_refused(
    envelope: Sequence[str], refusals: Iterable[tuple[str, int, str]]
) -> tuple[RecipientReply, ...]:
    """`SMTPRecipientsRefused`: every RCPT refused; pass `(r.recipient, r.code, r.message)`
    for each `r` in `exc.recipients`. Nothing was sent."""
    by_address = {address: (code, text) for address, code, text in refusals}
    replies: list[RecipientReply] = []
    for address in envelope:
        code, text = by_address.get(address, (451, "refused with the rest of the envelope"))
        replies.append(RecipientReply(address, _kind(code), code, text))
    return tuple(replies)


def replies_after_message_failure(
    envelope: Sequence[str], kind: ReplyKind, code: int | None, text: str
) -> tuple[RecipientReply, ...]:
    """The whole message failed (MAIL FROM or DATA refused, a timeout, a dropped connection):
    the same outcome for every recipient. aiosmtplib drops the RCPT replies when DATA fails,
    so a recipient refused at RCPT is reported with the message's failure; a retry still
    carries only the recipients whose outcome was not permanent."""
    if kind is ReplyKind.ACCEPTED:
        raise ValueError("a failed message cannot be accepted")
    return tuple(RecipientReply(address, kind, code, text) for address in envelope)


def still_pending(batch: Batch, replies: Iterable[RecipientReply]) -> tuple[PendingRecipient, ...]:
    """The recipients of `batch` a retry must carry: those with a temporary reply."""
    retry = {reply.address for reply in replies if reply.kind is ReplyKind.TEMPORARY}
    return tuple(recipient for recipient in batch.recipients if recipient.address in retry)
