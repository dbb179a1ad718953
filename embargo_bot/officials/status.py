"""Where a pack stands: each stage's counts, its report, and how long it will take."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from embargo_bot.app import App
from embargo_bot.domain.errors import ListError
from embargo_bot.domain.link_watch import LinkWatch
from embargo_bot.domain.packs import (
    Attempt,
    Delivery,
    Pack,
    PackVersion,
    Stage,
    StageKind,
    StageState,
)
from embargo_bot.domain.reports import StageReport, estimate, summarise
from embargo_bot.store import StageSummary

# The lists (YAML, certificates) are read only for estimates under a rate limit.
if TYPE_CHECKING:
    from embargo_bot.lists.catalogue import ListCatalogue


@dataclass(frozen=True)
class StageStatus:
    stage: Stage
    summary: StageSummary
    report: StageReport
    takes: timedelta | None  # how long it lasts under the relay's rate limit


@dataclass(frozen=True)
class PackStatus:
    pack: Pack
    stages: list[StageStatus]
    deliveries: list[Delivery]
    versions: list[PackVersion]
    attempts: list[Attempt]
    link_watches: list[LinkWatch] = field(default_factory=list)

    def next_send(self) -> Stage | None:
        waiting = [s.stage for s in self.stages if s.stage.state is StageState.SCHEDULED]
        return min(waiting, key=lambda stage: stage.due_at, default=None)


def pack_status(
    app: App,
    pack_id: str,
    *,
    catalogue: ListCatalogue | None = None,
    with_attempts: bool = True,
) -> PackStatus:
    """Where a pack stands; ``with_attempts=False`` spares a big pack's every attempt."""
    store = app.store
    pack = store.get_pack(pack_id)
    deliveries = store.deliveries(pack_id)
    by_stage: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        by_stage.setdefault(delivery.stage_id, []).append(delivery)
    rate = app.settings.smtp_rate
    most = app.settings.smtp_max_recipients
    stages = []
    for stage in store.stages(pack_id):
        mine = by_stage.get(stage.id, [])
        summary = store.stage_summary(stage.id)
        takes = None
        if rate is not None:  # without a rate limit there is no duration to estimate
            if not summary.total and catalogue is None:
                catalogue = _lists_for_estimates(app, pack.list_keys)
            from embargo_bot.delivery.outgoing import plan_messages

            # The relay's rate counts messages: a message may carry several recipients.
            messages = (
                len(plan_messages(mine, stage.kind, most, {}))
                if summary.total
                else _expected_messages(catalogue, pack, stage, most)
            )
            takes = estimate(messages, rate)
        stages.append(
            StageStatus(stage=stage, summary=summary, report=summarise(stage, mine), takes=takes)
        )
    return PackStatus(
        pack=pack,
        stages=stages,
        deliveries=deliveries,
        versions=store.versions(pack_id),
        attempts=store.attempts(pack_id) if with_attempts else [],
        link_watches=store.link_watches(pack_id),
    )


def _lists_for_estimates(app: App, keys: Collection[str]) -> ListCatalogue | None:
    """The lists, for estimates only: a missing folder means no estimate, not an error."""
    from embargo_bot.lists.catalogue import load_lists

    try:
        return load_lists(app.settings.recipients_dir, only=keys)
    except ListError:
        return None


def _expected_messages(catalogue: ListCatalogue | None, pack: Pack, stage: Stage, most: int) -> int:
    """Before a stage starts: the messages to whom its lists name now (0 if unusable)."""
    from embargo_bot.delivery.outgoing import expected_messages
    from embargo_bot.lists.catalogue import select_lists, unique_recipients

    keys = stage.list_keys or (pack.list_keys if stage.kind is StageKind.LIVE else ())
    if catalogue is None or not keys or stage.state is not StageState.SCHEDULED:
        return 0
    try:
        lists = select_lists(catalogue, keys, pack.classification)
    except ListError:
        return 0
    return expected_messages(
        stage.kind,
        [(r.email, r.list_key, r.certificate is not None) for r in unique_recipients(lists)],
        most,
    )


def all_statuses(app: App) -> list[PackStatus]:
    packs = app.store.packs()
    # The lists are read once for every pack's estimates, not once per stage.
    keys = {key for pack in packs for key in pack.list_keys}
    catalogue = _lists_for_estimates(app, keys) if packs and app.settings.smtp_rate else None
    return [pack_status(app, pack.id, catalogue=catalogue) for pack in packs]
