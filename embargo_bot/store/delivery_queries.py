"""Deliveries: each recipient of each stage, and what became of their message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Text, and_, bindparam, func, select, update

from embargo_bot.domain.bounces import new_verp_token
from embargo_bot.domain.outcomes import Outcome
from embargo_bot.domain.packs import (
    HOLDING_KINDS,
    Attempt,
    Delivery,
    DeliveryState,
    Holder,
    NewDelivery,
    StageKind,
)
from embargo_bot.domain.times import to_storage
from embargo_bot.store import rows
from embargo_bot.store.pack_queries import may_hold
from embargo_bot.store.stage_queries import StageQueries
from embargo_bot.store.tables import (
    ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS,
    attempts,
    deliveries,
    stages,
)


@dataclass(frozen=True)
class StageSummary:
    """Counts of a stage's deliveries by state."""

    pending: int = 0
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    bounced: int = 0  # sent, then refused by the partner's own server

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.failed + self.cancelled + self.bounced


# Built once: one attempt is recorded per message sent, between the lift and
# the last live email, and building these statements cost more than running them.
_THIS = and_(
    deliveries.c.stage_id == bindparam("stage"), deliveries.c.email == bindparam("address")
)
_RECORD = (
    update(deliveries)
    .where(_THIS, deliveries.c.state == DeliveryState.PENDING.value)
    .values(
        state=bindparam("new_state"),
        reply=bindparam("reply_text"),
        attempts=deliveries.c.attempts + 1,
        updated_at=bindparam("stamp"),
        next_attempt_at=bindparam("retry_at"),
        version=func.coalesce(bindparam("sent_version", type_=Integer), deliveries.c.version),
        lift_seq=func.coalesce(bindparam("sent_lift_seq", type_=Integer), deliveries.c.lift_seq),
    )
)
# An attempt's own values, after the delivery's stage, email and attempt count.
_ATTEMPT_VALUES = (
    bindparam("stamp", type_=Text),
    bindparam("outcome", type_=Text),
    bindparam("code", type_=Integer),
    bindparam("text", type_=Text),
)
_ADD_ATTEMPT = attempts.insert().from_select(
    [column.name for column in ATTEMPT_COLUMNS],
    select(
        deliveries.c.stage_id, deliveries.c.email, deliveries.c.attempts, *_ATTEMPT_VALUES
    ).where(_THIS),
)
# PostgreSQL: both in one statement, one round trip to the server, not two.
_RECORDED = _RECORD.returning(deliveries.c.stage_id, deliveries.c.email, deliveries.c.attempts).cte(
    "recorded"
)
RECORD_WITH_ATTEMPT = (
    attempts.insert()
    .from_select(
        [column.name for column in ATTEMPT_COLUMNS],
        select(_RECORDED.c.stage_id, _RECORDED.c.email, _RECORDED.c.attempts, *_ATTEMPT_VALUES),
    )
    .add_cte(_RECORDED)
    # Its rowcount is not the driver's to give for an INSERT … SELECT: count what it added.
    .returning(attempts.c.number)
)


def attempt_params(
    stage_id: int,
    email: str,
    outcome: Outcome,
    now: datetime,
    *,
    state: DeliveryState,
    retry_at: datetime | None = None,
    version: int | None = None,
    lift_seq: int | None = None,
) -> Mapping[str, Any]:
    """What ``RECORD_WITH_ATTEMPT`` (PostgreSQL) or ``_RECORD`` and ``_ADD_ATTEMPT`` take."""
    sent = state is DeliveryState.SENT
    return {
        "stage": stage_id,
        "address": email,
        "new_state": state.value,
        "reply_text": outcome.reply,
        "stamp": to_storage(now),
        "retry_at": rows.optional_storage(retry_at),
        "sent_version": version if sent else None,
        "sent_lift_seq": lift_seq if sent else None,
        "outcome": outcome.kind.value,
        "code": outcome.code,
        "text": outcome.text,
    }


class DeliveryQueries(StageQueries):
    def expand_stage(
        self,
        stage_id: int,
        recipients: Sequence[NewDelivery],
        now: datetime,
        *,
        note: str | None = None,
    ) -> bool:
        """Fix a stage's recipients once; False (and no change) if they were fixed already.

        Fixing them once means a restart resumes the same set rather than
        re-reading lists that an admin may have edited since.
        """
        with self._write() as connection:
            fixed = connection.execute(
                update(stages)
                .where(stages.c.id == stage_id, stages.c.expanded == 0)
                .values(expanded=1, detail=func.coalesce(note, stages.c.detail))
            ).rowcount
            if not fixed:
                return False
            pack_id, kind = connection.execute(
                select(stages.c.pack_id, stages.c.kind).where(stages.c.id == stage_id)
            ).one()
            stamp = to_storage(now)
            if recipients:
                connection.execute(
                    deliveries.insert(),
                    [
                        {
                            "stage_id": stage_id,
                            "pack_id": pack_id,
                            "kind": kind,
                            "email": item.email,
                            "name": item.name,
                            "list_key": item.list_key,
                            "message_id": item.message_id,
                            "state": DeliveryState.PENDING.value,
                            "attempts": 0,
                            "created_at": stamp,
                            "updated_at": stamp,
                            "certificate": item.certificate,
                            "verp_token": new_verp_token(),
                        }
                        for item in recipients
                    ],
                )
        return True

    def is_expanded(self, stage_id: int) -> bool:
        row = self._first(select(stages.c.expanded).where(stages.c.id == stage_id))
        return bool(row and row[0])

    def deliveries(
        self,
        pack_id: str,
        *,
        stage_id: int | None = None,
        state: DeliveryState | None = None,
    ) -> list[Delivery]:
        query = select(*DELIVERY_COLUMNS).where(deliveries.c.pack_id == pack_id)
        if stage_id is not None:
            query = query.where(deliveries.c.stage_id == stage_id)
        if state is not None:
            query = query.where(deliveries.c.state == state.value)
        query = query.order_by(deliveries.c.stage_id, self._order)
        return [rows.delivery(row) for row in self._rows(query)]

    def stage_summary(self, stage_id: int) -> StageSummary:
        counts = self._rows(
            select(deliveries.c.state, func.count())
            .where(deliveries.c.stage_id == stage_id)
            .group_by(deliveries.c.state)
        )
        return StageSummary(**{DeliveryState(state).value: count for state, count in counts})

    def notice_addresses(self, pack_id: str, *, other_than: int) -> set[str]:
        """Addresses already given a notice wave of this pack (any outcome), casefolded."""
        found = self._rows(
            select(deliveries.c.email).where(
                deliveries.c.pack_id == pack_id,
                deliveries.c.kind == StageKind.NOTICE.value,
                deliveries.c.stage_id != other_than,
            )
        )
        return {row[0].casefold() for row in found}

    def holders(self, pack_id: str) -> list[Holder]:
        """Everyone who may hold the embargoed material, with the latest version and lift.

        Version and lift 0 for one who may hold it but is not recorded as sent:
        every follow-up goes to them.
        """
        found = self._rows(
            select(
                deliveries.c.email,
                func.min(deliveries.c.name),
                func.min(deliveries.c.list_key),
                func.coalesce(func.max(deliveries.c.version), 0),
                func.coalesce(func.max(deliveries.c.lift_seq), 0),
            )
            .where(
                deliveries.c.pack_id == pack_id,
                may_hold(),
                deliveries.c.kind.in_([kind.value for kind in HOLDING_KINDS]),
            )
            .group_by(deliveries.c.email)
            .order_by(func.min(self._order))
        )
        return [
            Holder(email=email, name=name, list_key=list_key, version=version, lift_seq=lift_seq)
            for email, name, list_key, version, lift_seq in found
        ]

    def record_attempt(
        self,
        stage_id: int,
        email: str,
        outcome: Outcome,
        now: datetime,
        *,
        state: DeliveryState,
        retry_at: datetime | None = None,
        version: int | None = None,
        lift_seq: int | None = None,
    ) -> bool:
        """Record one attempt and where the delivery now stands, in one commit.

        ``state`` is PENDING (with ``retry_at``) after a temporary failure, else final.
        False, and no change, if the delivery was no longer pending.
        """
        return self.record_attempt_as(
            attempt_params(
                stage_id,
                email,
                outcome,
                now,
                state=state,
                retry_at=retry_at,
                version=version,
                lift_seq=lift_seq,
            )
        )

    def record_attempt_as(self, params: Mapping[str, Any]) -> bool:
        """``record_attempt`` of the values ``attempt_params`` made (as the stage's
        recorder makes them once for whichever store path takes them)."""
        if self.dialect == "postgresql":
            # One statement, atomic by itself: outside a transaction it commits as
            # it runs, one round trip where BEGIN and COMMIT would make three. Tried
            # again if the server dropped the connection, which is safe: it only
            # records a delivery still pending.
            prepared = self._prepared(RECORD_WITH_ATTEMPT)
            found = self._at_once(lambda c: prepared.execute(c, params).all())
            return len(found) == 1
        with self._write() as connection:
            recorded = self._prepared(_RECORD).execute(connection, params).rowcount
            if recorded:
                self._prepared(_ADD_ATTEMPT).execute(connection, params)
        return recorded == 1

    def bind_message(self, stage_id: int, emails: Sequence[str], message_id: str) -> int:
        """Record that these pending deliveries go in one message, with this Message-ID.

        Written before the message is offered, so a restart retries it as the
        same message (the same bytes) and a bounce names who it carried.
        """
        with self._write() as connection:
            return connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.stage_id == stage_id,
                    deliveries.c.email.in_(list(emails)),
                    deliveries.c.state == DeliveryState.PENDING.value,
                )
                .values(message_id=message_id)
            ).rowcount

    def attempts(self, pack_id: str) -> list[Attempt]:
        found = self._rows(
            select(*ATTEMPT_COLUMNS)
            .join(stages, stages.c.id == attempts.c.stage_id)
            .where(stages.c.pack_id == pack_id)
            .order_by(attempts.c.stage_id, attempts.c.email, attempts.c.number)
        )
        return [rows.attempt(row) for row in found]

    def cancel_pending(self, stage_id: int, now: datetime, reason: str) -> int:
        with self._write() as connection:
            return connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.stage_id == stage_id,
                    deliveries.c.state == DeliveryState.PENDING.value,
                )
                .values(
                    state=DeliveryState.CANCELLED.value, reply=reason, updated_at=to_storage(now)
                )
            ).rowcount
