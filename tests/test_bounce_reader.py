"""One read of the bounce mailbox, end to end against a real Dovecot."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest
from bounce_samples import (
    MALFORMED_NO_STATUS,
    MESSAGE_ID,
    ORDINARY_MAIL,
    OUT_OF_OFFICE,
    PACK,
    RETURN_PATH,
    original,
    postfix_delayed,
    postfix_report,
)

from embargo_bot.bounces.mailbox import MailboxError, MailboxSettings
from embargo_bot.bounces.matching import DeliveryRef, Matched
from embargo_bot.bounces.reader import ReadSummary, Skipped, notification_key, read_once
from embargo_bot.bounces.verp import new_token, verp_address

if TYPE_CHECKING:
    from servers.dovecot import ImapUser


NOTICE = DeliveryRef(1, PACK, "notice", "officer@partner.example")
VERP_DELIVERY = DeliveryRef(2, PACK, "notice", "desk@partner.example")


class Store:
    """Lookups and the applied-notifications table, as plain data."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.applied: dict[str, list[tuple[int, str, str]]] = {}

    def by_verp_token(self, token: str) -> DeliveryRef | None:
        return VERP_DELIVERY if token == self.token else None

    def by_message_id(self, message_id: str) -> list[DeliveryRef]:
        return [NOTICE] if message_id == MESSAGE_ID else []

    def by_recipient(self, recipient: str, pack: str) -> list[DeliveryRef]:
        return []

    def apply(self, key: str, matched: Sequence[Matched]) -> bool:
        if key in self.applied:  # the unique key of the applied-notifications table
            return False
        self.applied[key] = [
            (m.delivery.delivery_id, m.status.action.value, m.status.status) for m in matched
        ]
        return True


def settings_for(user: ImapUser) -> MailboxSettings:
    return MailboxSettings(
        user.server.host, user.server.port, user.username, user.password, "none", timeout=5
    )


def test_one_read_over_every_kind_of_mail(
    imap_user: ImapUser, caplog: pytest.LogCaptureFixture
) -> None:
    token = new_token()
    arrivals = {
        "failure": postfix_report(),
        "delayed": postfix_delayed(),
        "out-of-office": OUT_OF_OFFICE,
        "not a report": ORDINARY_MAIL,
        "malformed": MALFORMED_NO_STATUS,
        "never sent": postfix_report(returned=original(message_id="<other@gov.example>")),
        "verp": postfix_report(
            envelope_to=verp_address(RETURN_PATH, token), returned=original(message_id=None)
        ),
    }
    uid_of = {name: imap_user.append(raw) for name, raw in arrivals.items()}
    store, skipped = Store(token), Skipped()
    caplog.set_level(logging.DEBUG, logger="embargo_bot.bounces")

    summary = read_once(
        settings_for(imap_user), store, store, return_path=RETURN_PATH, skipped=skipped
    )

    assert summary == ReadSummary(applied=3, already_applied=0, left_unread=4)
    assert store.applied == {
        notification_key(arrivals["failure"]): [(1, "failed", "5.1.1")],
        notification_key(arrivals["delayed"]): [(1, "delayed", "4.4.1")],
        notification_key(arrivals["verp"]): [(2, "failed", "5.1.1")],
    }
    unread = ["out-of-office", "not a report", "malformed", "never sent"]
    assert imap_user.unseen() == [uid_of[n] for n in unread]
    assert len(imap_user.uids()) == len(arrivals)  # never emptied
    assert skipped.uids == {uid_of[n] for n in unread}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"bounce mailbox UID {uid_of['malformed']} left unread: "
        "delivery report without a message/delivery-status part"
    ]
    assert any("not one the store sent" in r.getMessage() for r in caplog.records)

    # The next read fetches nothing it has already looked at.
    again = read_once(
        settings_for(imap_user), store, store, return_path=RETURN_PATH, skipped=skipped
    )
    assert again == ReadSummary()


def test_two_instances_apply_each_notification_once(imap_user: ImapUser) -> None:
    raw = postfix_report()
    imap_user.append(raw)
    store = Store(new_token())
    # The other instance applied it and crashed before marking it seen.
    assert store.apply(notification_key(raw), [])
    summary = read_once(settings_for(imap_user), store, store, return_path=None, skipped=Skipped())
    assert summary == ReadSummary(applied=0, already_applied=1, left_unread=0)
    assert imap_user.unseen() == []


def test_a_new_uidvalidity_forgets_the_skipped_uids(imap_user: ImapUser) -> None:
    uid = imap_user.append(OUT_OF_OFFICE)
    skipped = Skipped(uidvalidity=1, uids={uid})
    store = Store(new_token())
    summary = read_once(settings_for(imap_user), store, store, return_path=None, skipped=skipped)
    assert summary.left_unread == 1 and skipped.uidvalidity != 1


def test_a_mailbox_that_fails_raises_one_error(imap_user: ImapUser) -> None:
    store = Store(new_token())
    bad = MailboxSettings(
        imap_user.server.host, imap_user.server.port, imap_user.username, "wrong", "none"
    )
    with pytest.raises(MailboxError, match="login refused"):
        read_once(bad, store, store, return_path=None, skipped=Skipped())
