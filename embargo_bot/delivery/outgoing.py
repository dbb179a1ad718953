"""A sending stage's messages: its pending deliveries, grouped as batches decide.

With EMBARGO_BOT_SMTP_MAX_RECIPIENTS at 1 every delivery is a message of its
own, with the Message-ID fixed for it when the stage's recipients were: the
same bytes as before batches existed, on every try. Above 1, recipients of a
list share messages (``batches.split_into_batches``); such a message takes the
Message-ID of its first recipient, recorded for all it carries before it is
offered, so those it is retried for (the refused with a 4xx) get it again as
the same message, in this run or after a restart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from embargo_bot.delivery.batches import PendingRecipient, split_into_batches
from embargo_bot.domain.packs import Delivery, DeliveryState, Stage, StageKind
from embargo_bot.store import Store

# Lists' display names by key, for a shared message's To:.
ListNames = Callable[[Collection[str]], Mapping[str, str]]

# Partners' stages; a report, test or alert goes to one person, addressed to them.
BATCHED_KINDS = frozenset(
    {StageKind.NOTICE, StageKind.LIVE, StageKind.CHANGED, StageKind.UPDATED, StageKind.WITHDRAWN}
)


@dataclass(frozen=True)
class Outgoing:
    """One message: the deliveries it carries, its Message-ID and how To: is written."""

    deliveries: tuple[Delivery, ...]
    message_id: str
    # The list's name for an empty-group To:; None: To: the one recipient themselves.
    to_group: str | None

    @property
    def envelope(self) -> tuple[str, ...]:
        return tuple(delivery.email for delivery in self.deliveries)

    @property
    def first(self) -> Delivery:
        return self.deliveries[0]

    @property
    def needs_binding(self) -> bool:
        """Several share it and the store does not say so yet."""
        return len(self.deliveries) > 1 and any(
            delivery.message_id != self.message_id for delivery in self.deliveries
        )

    def carrying(self, emails: Iterable[str]) -> Outgoing:
        """The same message for only some of its recipients: a retry of those still pending."""
        keep = set(emails)
        kept = tuple(
            replace(delivery, message_id=self.message_id)
            for delivery in self.deliveries
            if delivery.email in keep
        )
        return replace(self, deliveries=kept)


def plan_stage(
    store: Store, stage: Stage, max_recipients: int, list_names: ListNames | None
) -> list[Outgoing]:
    """The messages that send a stage's deliveries still pending, read from the store."""
    pending = store.deliveries(stage.pack_id, stage_id=stage.id, state=DeliveryState.PENDING)
    names: Mapping[str, str] = {}
    if list_names and max_recipients > 1 and stage.kind in BATCHED_KINDS:
        names = list_names({delivery.list_key for delivery in pending})
    return plan_messages(pending, stage.kind, max_recipients, names)


def plan_messages(
    pending: Sequence[Delivery],
    kind: StageKind,
    max_recipients: int,
    list_names: Mapping[str, str],
) -> list[Outgoing]:
    """The messages that send ``pending``, in the order their first delivery was fixed."""
    if max_recipients == 1 or kind not in BATCHED_KINDS:
        return [Outgoing((delivery,), delivery.message_id, None) for delivery in pending]
    by_id: defaultdict[str, list[Delivery]] = defaultdict(list)
    for delivery in pending:
        by_id[delivery.message_id].append(delivery)
    position = {delivery.email: index for index, delivery in enumerate(pending)}
    planned: list[Outgoing] = []
    fresh: list[Delivery] = []
    for message_id, members in by_id.items():
        if len(members) > 1 or members[0].attempts:
            # Already a message (tried, or bound before a crash): sent again as it was.
            name = _name(members[0], list_names)
            lone = len(members) == 1 and members[0].certificate is not None
            planned.append(Outgoing(tuple(members), message_id, None if lone else name))
        else:
            fresh.append(members[0])
    by_email = {delivery.email: delivery for delivery in fresh}
    recipients = [
        PendingRecipient(
            delivery.email,
            delivery.list_key,
            _name(delivery, list_names),
            alone=delivery.certificate is not None,
        )
        for delivery in fresh
    ]
    for batch in split_into_batches(recipients, max_recipients):
        members = [by_email[recipient.address] for recipient in batch.recipients]
        planned.append(Outgoing(tuple(members), members[0].message_id, batch.to_group))
    return sorted(planned, key=lambda message: position[message.first.email])


def expected_messages(
    kind: StageKind, recipients: Sequence[tuple[str, str, bool]], max_recipients: int
) -> int:
    """How many messages a stage not yet started takes: (address, list key, alone) each."""
    if max_recipients == 1 or kind not in BATCHED_KINDS:
        return len(recipients)
    pending = [PendingRecipient(email, key, key, alone) for email, key, alone in recipients]
    return len(split_into_batches(pending, max_recipients))


def _name(delivery: Delivery, list_names: Mapping[str, str]) -> str:
    # A list renamed or removed since its recipients were fixed: its key still names it.
    return list_names.get(delivery.list_key) or delivery.list_key
