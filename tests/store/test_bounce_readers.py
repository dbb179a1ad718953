"""Bounce reports matched and applied through the real store, on each backend.

The matching rules themselves are tested on plain data (``test_bounce_matching``);
here the store's own lookups answer, so a query that strays across packs, or a
second instance that applies a report again, shows.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bounce_samples import RETURN_PATH, original, postfix_report

from embargo_bot.bounces.dsn import DeliveryReport, classify
from embargo_bot.bounces.mailbox import MailboxSettings
from embargo_bot.bounces.matching import Matched, Unmatched, Via, match_report
from embargo_bot.bounces.reader import ReadSummary
from embargo_bot.bounces.service import BounceReader, BounceReading, StoreApplier, StoreLookup
from embargo_bot.bounces.verp import verp_address
from embargo_bot.domain.packs import Delivery, DeliveryState, NewDelivery, StageKind
from embargo_bot.store import Store

from .builders import ACCEPTED, T0, a_pack, add, minutes, send, stage_id
from .conftest import OpenStore

if TYPE_CHECKING:
    from servers.dovecot import ImapUser

PARTNER = "officer@partner.example"


def report(
    address: str = PARTNER,
    *,
    message_id: str | None = None,
    pack: str | None = None,
    stage: str | None = "notice",
    envelope_to: str = RETURN_PATH,
) -> DeliveryReport:
    raw = postfix_report(
        envelope_to=envelope_to,
        recipients=((address, "failed", "5.1.1", "smtp; 550 5.1.1 User unknown"),),
        returned=original(to=address, message_id=message_id, pack=pack, stage=stage),
        headers_only=True,
    )
    parsed = classify(raw)
    assert isinstance(parsed, DeliveryReport), parsed
    return parsed


def notice_to(store: Store, pack_id: str, emails: list[str]) -> list[Delivery]:
    add(store, a_pack(pack_id))
    notice = stage_id(store, pack_id, StageKind.NOTICE)
    send(store, notice, emails)
    return store.deliveries(pack_id, stage_id=notice)


def test_the_store_matches_within_the_pack_named_and_never_across_packs(store: Store) -> None:
    # The same partner got the notice of two packs.
    [first] = notice_to(store, "pack-1", [PARTNER])
    [second] = notice_to(store, "pack-2", [PARTNER.upper()])
    lookup = StoreLookup(store)

    [by_pack] = match_report(report(pack="pack-2"), lookup, return_path=None)
    assert isinstance(by_pack, Matched) and by_pack.via is Via.RECIPIENT_AND_PACK
    assert (by_pack.delivery.pack, by_pack.delivery.stage_id) == ("pack-2", second.stage_id)

    contradicting = [
        # pack-1's Message-ID, with pack-2's headers returned.
        report(message_id=first.message_id, pack="pack-2"),
        # pack-1's VERP token, with pack-2's headers returned.
        report(envelope_to=verp_address(RETURN_PATH, str(first.verp_token)), pack="pack-2"),
        # A pack nobody sent to this partner.
        report(pack="pack-3"),
        # No pack at all: the partner is on both.
        report(pack=None),
    ]
    for item in contradicting:
        [decision] = match_report(item, lookup, return_path=RETURN_PATH)
        assert isinstance(decision, Unmatched), (item.original, decision)

    applier = StoreApplier(store, lambda: minutes(30))
    assert applier.apply("report-1", [by_pack])
    states = {
        d.pack_id: d.state for d in (*store.deliveries("pack-1"), *store.deliveries("pack-2"))
    }
    assert states == {"pack-1": DeliveryState.SENT, "pack-2": DeliveryState.BOUNCED}


def test_a_message_to_several_recipients_bounces_only_the_one_named(store: Store) -> None:
    # EMBARGO_BOT_SMTP_MAX_RECIPIENTS above 1: one message, one Message-ID, several deliveries.
    add(store, a_pack("pack-1"))
    notice = stage_id(store, "pack-1", StageKind.NOTICE)
    assert store.claim_stage(notice, "sender", T0, minutes(5))
    shared = "<batch-1.pack-1@gov.example>"
    emails = [PARTNER, "desk@partner.example"]
    store.expand_stage(notice, [NewDelivery(e, None, "alpha", shared) for e in emails], T0)
    for email in emails:
        store.record_attempt(notice, email, ACCEPTED, T0, state=DeliveryState.SENT)

    [decision] = match_report(
        report("desk@partner.example", message_id=shared), StoreLookup(store), return_path=None
    )
    assert isinstance(decision, Matched) and decision.via is Via.MESSAGE_ID
    assert StoreApplier(store, lambda: minutes(30)).apply("report-1", [decision])
    states = {d.email: d.state for d in store.deliveries("pack-1", stage_id=notice)}
    assert states == {PARTNER: DeliveryState.SENT, "desk@partner.example": DeliveryState.BOUNCED}


def test_two_readers_on_one_store_apply_each_notification_once(
    open_store: OpenStore, store_url: str, imap_user: ImapUser
) -> None:
    """Two instances, each with its own connection, read the same mailbox at the same moment."""
    store = open_store()
    emails = [f"partner{n}@alpha.example" for n in range(6)]
    sent = notice_to(store, "pack-1", emails)
    for delivery in sent:
        returned = original(to=delivery.email, message_id=delivery.message_id, pack="pack-1")
        imap_user.append(
            postfix_report(
                recipients=((delivery.email, "failed", "5.1.1", "smtp; 550 no such user"),),
                returned=returned,
                headers_only=True,
            )
        )
    mailbox = MailboxSettings(
        imap_user.server.host, imap_user.server.port, imap_user.username, imap_user.password,
        "none", timeout=5,
    )  # fmt: skip
    now = datetime.now(UTC)
    readers = [
        BounceReader(BounceReading(mailbox, None, 1, lambda: Store.open(store_url), lambda: now))
        for _ in range(2)
    ]
    start = threading.Barrier(2)
    results: list[ReadSummary] = []

    def read(reader: BounceReader) -> None:
        start.wait()
        results.append(reader.read())

    threads = [threading.Thread(target=read, args=(reader,)) for reader in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 2
    assert sum(r.applied for r in results) == len(emails)
    assert imap_user.unseen() == []
    alerts = [s for s in store.stages("pack-1") if s.kind is StageKind.ALERT]
    assert len(alerts) == len(emails)
    assert {d.state for d in store.deliveries("pack-1", stage_id=sent[0].stage_id)} == {
        DeliveryState.BOUNCED
    }
