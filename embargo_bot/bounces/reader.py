"""One read of the bounce mailbox: classify, match, apply, mark; blocking.

The service runs :func:`read_once` in a thread of its own every
``EMBARGO_BOT_BOUNCE_POLL`` seconds, keeping one :class:`Skipped` between
reads so mail that stays unread (auto-replies, people's mail, malformed or
unmatched reports) is fetched once per process, not every minute.

Applying is the store's job, through :class:`Applier`: it must record the
notification's key and the decisions in one transaction and say whether this
call was the first. Any instance may read the mailbox; whichever applies
first wins, and every instance then marks the message seen. A crash between
applying and marking only means the next read finds it applied already.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from embargo_bot.bounces.dsn import DeliveryReport, NotAReport, classify
from embargo_bot.bounces.mailbox import DEFAULT_BATCH, MailboxSettings, open_mailbox
from embargo_bot.bounces.matching import DeliveryLookup, Matched, Unmatched, match_report

log = logging.getLogger(__name__)


class Applier(Protocol):
    def apply(self, key: str, matched: Sequence[Matched]) -> bool:
        """Record the bounces and delays once; True if this call recorded them."""
        ...


@dataclass
class Skipped:
    """UIDs already looked at and left unread, for one UIDVALIDITY."""

    uidvalidity: int = 0
    uids: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class ReadSummary:
    applied: int = 0  # newly recorded by this instance
    already_applied: int = 0  # recorded before (another instance, or a crash before marking)
    left_unread: int = 0  # not reports, malformed, or matching no delivery


def notification_key(raw: bytes) -> str:
    """What the store keeps to apply a notification once: the hash of its bytes.

    Not the UID: UIDs change when a message is moved or the folder's
    UIDVALIDITY changes, and differ between two folders holding copies.
    """
    return hashlib.sha256(raw).hexdigest()


def read_once(
    settings: MailboxSettings,
    lookup: DeliveryLookup,
    applier: Applier,
    *,
    return_path: str | None,
    skipped: Skipped,
    batch: int = DEFAULT_BATCH,
) -> ReadSummary:
    """Read unseen mail once. Raises MailboxError (one line) if the mailbox fails."""
    applied = already = unread = 0
    with open_mailbox(settings) as mailbox:
        if mailbox.uidvalidity != skipped.uidvalidity:
            skipped.uidvalidity, skipped.uids = mailbox.uidvalidity, set()
        for uid in mailbox.unseen(limit=batch + len(skipped.uids)):
            if uid in skipped.uids:
                continue
            fetched = mailbox.fetch(uid)
            if fetched is None:
                continue  # moved or expunged meanwhile, by another instance or a person
            matched = _matched(uid, fetched.raw, lookup, return_path)
            if not matched:
                skipped.uids.add(uid)
                unread += 1
                continue
            if applier.apply(notification_key(fetched.raw), matched):
                applied += 1
            else:
                already += 1
            mailbox.mark_applied(uid)
    return ReadSummary(applied, already, unread)


def _matched(
    uid: int, raw: bytes, lookup: DeliveryLookup, return_path: str | None
) -> list[Matched]:
    report = classify(raw)
    if not isinstance(report, DeliveryReport):
        # An auto-reply or a person's mail is not worth a warning; a report
        # that cannot be read is, since a bounce may be hiding in it.
        level = logging.DEBUG if isinstance(report, NotAReport) else logging.WARNING
        log.log(level, "bounce mailbox UID %d left unread: %s", uid, report.reason)
        return []
    decisions = match_report(report, lookup, return_path=return_path)
    for decision in decisions:
        if isinstance(decision, Unmatched):
            log.info(
                "bounce mailbox UID %d: %s %s: %s",
                uid,
                decision.status.final_recipient,
                decision.status.action.value,
                decision.reason,
            )
    return [d for d in decisions if isinstance(d, Matched)]
