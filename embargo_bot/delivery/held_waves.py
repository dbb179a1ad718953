"""Notice waves held back by a list that was invalid at their time.

A held share of a wave is released (made claimable) as soon as one of its
lists can be used again, as long as the lift has not passed; at the lift it
is skipped, with a delivery report that names the lists, and the partners on
them when the list can now be read, who never had the notice. The live email
goes to them anyway if their list is valid by then.
"""

from __future__ import annotations

import json
import logging

from embargo_bot.delivery.stage_runner import StageRunner
from embargo_bot.domain.errors import EmbargoBotError
from embargo_bot.domain.packs import NewStage, Pack, PackState, Stage, StageKind, StageState
from embargo_bot.lists.audience import audience
from embargo_bot.lists.catalogue import ListCatalogue, list_fingerprint, load_lists, usable_lists

log = logging.getLogger(__name__)

NEVER_HAD = "never had the notice: the list could not be used before the lift"


class HeldWaves:
    """Checks held waves against the lists; cheap when nothing has changed."""

    def __init__(self, runner: StageRunner) -> None:
        self._runner = runner
        self._seen: tuple[str, tuple[int, ...]] | None = None

    def check(self) -> bool:
        """Release or settle held waves; True if any changed (so resync the timetable)."""
        store, now = self._runner.store, self._runner.clock()
        held = store.held_stages()
        if not held:
            self._seen = None
            return False
        packs = {stage.pack_id: store.get_pack(stage.pack_id) for stage in held}
        directory = self._runner.config.recipients_dir
        seen = (json.dumps(list_fingerprint(directory)), tuple(s.id for s in held))
        settled = any(p.state is not PackState.ACTIVE or now >= p.lift_at for p in packs.values())
        if seen == self._seen and not settled:
            return False  # the lists are as they were when we last looked
        self._seen = seen
        keys = {key for stage in held for key in stage.list_keys}
        try:
            catalogue = load_lists(directory, only=keys)
        except EmbargoBotError as exc:
            log.error("held notice waves wait: %s", exc)
            catalogue = ListCatalogue(directory, {}, ())
        changed = False
        for stage in held:
            changed |= self._check_one(packs[stage.pack_id], stage, catalogue)
        return changed

    def _check_one(self, pack: Pack, stage: Stage, catalogue: ListCatalogue) -> bool:
        store, now, audit = self._runner.store, self._runner.clock(), self._runner.audit
        if pack.state is not PackState.ACTIVE:
            store.finish_stage(
                stage.id,
                now,
                StageState.CANCELLED,
                f"not sent: the pack is {pack.state}",
                held=True,
            )
            return False
        lists, problems = usable_lists(catalogue, stage.list_keys, pack.classification)
        if now >= pack.lift_at:
            self._skip_at_lift(pack, stage, catalogue, bool(lists), problems)
            return True
        if not lists or not store.release_held(stage.id):
            return False
        names = ", ".join(f"'{key}'" for key in stage.list_keys)
        audit("held wave released", pack.id, stage=stage.label, lists=list(stage.list_keys))
        log.warning(
            "pack %s: %s: list(s) %s usable again; sending now", pack.id, stage.label, names
        )
        return True

    def _skip_at_lift(
        self,
        pack: Pack,
        stage: Stage,
        catalogue: ListCatalogue,
        readable: bool,
        problems: tuple[str, ...],
    ) -> None:
        store, now, audit = self._runner.store, self._runner.clock(), self._runner.audit
        names = ", ".join(f"'{key}'" for key in stage.list_keys)
        why = "; ".join(problems) or "they became valid only after the lift"
        detail = f"never sent before the lift: list(s) {names} could not be used ({why})"
        with store.transaction():
            if readable:
                # Readable now: name each partner who never had the notice.
                chosen = audience(
                    pack,
                    stage,
                    catalogue=catalogue,
                    holders=(),
                    earlier_waves=store.notice_addresses(pack.id, other_than=stage.id),
                )
                self._runner.expand(pack, stage, chosen.recipients, None)
                store.cancel_pending(stage.id, now, NEVER_HAD)
            report = NewStage(StageKind.REPORT, now, report_of=stage.id)
            if store.finish_stage(
                stage.id, now, StageState.SKIPPED, detail, held=True, report=report
            ):
                audit("stage skipped", pack.id, stage=stage.label, reason=detail)
        log.error("pack %s: %s: %s", pack.id, stage.label, detail)
