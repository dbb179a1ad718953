"""Bounces: finding the delivery a report is about, and applying each report once.

Any instance may read the bounce mailbox. A notification is applied in one
transaction: its key goes into ``bounce_notifications`` (insert, or nothing
on conflict) and only if that inserted a row are the deliveries changed and
the contact's alerts added, so two instances reading the same message apply
it once. Only the key (a hash) is kept, never the notification itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update

from embargo_bot.domain.bounces import (
    Bounced,
    BouncedAddress,
    BounceNote,
    DeliveryRow,
    ServerReport,
    alert_words,
)
from embargo_bot.domain.packs import DeliveryState, NewStage, StageKind
from embargo_bot.domain.times import from_storage, to_storage
from embargo_bot.store.instance_queries import InstanceQueries
from embargo_bot.store.tables import bounce_notifications, deliveries, stages

# Mail to partners: their bounces alert the contact. Reports, alerts and test
# sends go to our own people, and an alert about an alert could loop.
_PARTNER_KINDS = frozenset(
    kind.value
    for kind in (
        StageKind.NOTICE, StageKind.LIVE, StageKind.CHANGED, StageKind.UPDATED,
        StageKind.WITHDRAWN,
    )
)  # fmt: skip


class BounceQueries(InstanceQueries):
    def _delivery_rows(self, *conditions: object) -> list[DeliveryRow]:
        found = self._rows(
            select(
                self._order,
                deliveries.c.stage_id,
                deliveries.c.pack_id,
                deliveries.c.kind,
                deliveries.c.email,
            )
            .where(*conditions)  # type: ignore[arg-type]
            .order_by(self._order)
        )
        return [
            DeliveryRow(int(o), stage_id, pack, kind, email)
            for o, stage_id, pack, kind, email in found
        ]

    def delivery_by_verp_token(self, token: str) -> DeliveryRow | None:
        found = self._delivery_rows(deliveries.c.verp_token == token)
        return found[0] if found else None

    def deliveries_by_message_id(self, message_id: str) -> list[DeliveryRow]:
        return self._delivery_rows(deliveries.c.message_id == message_id)

    def deliveries_to(self, email: str, pack_id: str) -> list[DeliveryRow]:
        """Deliveries of a pack to an address, compared case-insensitively."""
        return self._delivery_rows(
            deliveries.c.pack_id == pack_id,
            func.lower(deliveries.c.email) == email.strip().lower(),
        )

    def apply_bounces(
        self, key: str, notes: Sequence[BounceNote], now: datetime, *, instance: str | None = None
    ) -> list[Bounced] | None:
        """Record one notification's bounces and delays, once.

        None if the notification was applied before (by any instance); else the
        deliveries that became bounced, each (if it was mail to a partner)
        with an alert to its pack's contact added in the same commit. A failure changes only a sent
        delivery; a delay changes no state.
        """
        stamp = to_storage(now)
        insert = self._upsert(bounce_notifications).values(
            key=key, applied_at=stamp, instance=instance, deliveries=len(notes)
        )
        bounced: list[Bounced] = []
        with self._write() as connection:
            # RETURNING, not rowcount: the row count of an INSERT is not
            # reliable on every driver.
            first = connection.execute(
                insert.on_conflict_do_nothing(
                    index_elements=[bounce_notifications.c.key]
                ).returning(bounce_notifications.c.key)
            ).first()
            if first is None:
                return None
            for note in notes:
                this = (deliveries.c.stage_id == note.stage_id, deliveries.c.email == note.email)
                if not note.failed:
                    connection.execute(
                        update(deliveries)
                        .where(*this)
                        .values(
                            delay_status=note.status,
                            delay_diagnostic=note.diagnostic,
                            delayed_at=stamp,
                        )
                    )
                    continue
                changed = connection.execute(
                    update(deliveries)
                    .where(*this, deliveries.c.state == DeliveryState.SENT.value)
                    .values(
                        state=DeliveryState.BOUNCED.value,
                        bounce_status=note.status,
                        bounce_diagnostic=note.diagnostic,
                        bounced_at=stamp,
                        updated_at=stamp,
                    )
                ).rowcount
                if not changed:
                    continue
                pack_id, kind, name, list_key = connection.execute(
                    select(
                        deliveries.c.pack_id,
                        deliveries.c.kind,
                        deliveries.c.name,
                        deliveries.c.list_key,
                    ).where(*this)
                ).one()
                report = ServerReport(note.status, note.diagnostic, from_storage(stamp))
                item = Bounced(pack_id, note.stage_id, kind, note.email, name, list_key, report)
                bounced.append(item)
                if kind not in _PARTNER_KINDS:
                    continue  # the contact's own mail: an alert about it could bounce forever
                (alert,) = self._insert_stages(
                    connection, pack_id, [NewStage(StageKind.ALERT, now, report_of=note.stage_id)]
                )
                connection.execute(
                    update(stages).where(stages.c.id == alert).values(detail=alert_words(item))
                )
        return bounced

    def is_applied(self, key: str) -> bool:
        row = self._first(
            select(bounce_notifications.c.key).where(bounce_notifications.c.key == key)
        )
        return row is not None

    def bounced_addresses(self, since: datetime | None = None) -> list[BouncedAddress]:
        """Each address that bounced (since ``since``), its last bounce, and for how many packs."""
        query = select(
            deliveries.c.email,
            deliveries.c.list_key,
            deliveries.c.pack_id,
            deliveries.c.bounce_status,
            deliveries.c.bounce_diagnostic,
            deliveries.c.bounced_at,
        ).where(deliveries.c.bounced_at.is_not(None))
        if since is not None:
            query = query.where(deliveries.c.bounced_at >= to_storage(since))
        found = self._rows(query.order_by(deliveries.c.bounced_at, self._order))
        last: dict[str, tuple[str, str, ServerReport]] = {}
        packs: dict[str, set[str]] = {}
        for email, list_key, pack_id, status, diagnostic, at in found:
            address = email.casefold()
            report = ServerReport(status or "", diagnostic or "", from_storage(at))
            last[address] = (email, list_key, report)
            packs.setdefault(address, set()).add(pack_id)
        return sorted(
            (
                BouncedAddress(email, list_key, report, len(packs[address]))
                for address, (email, list_key, report) in last.items()
            ),
            key=lambda item: (-item.packs, item.email.casefold()),
        )
