"""The link check around the live stage: it gates the send at the lift, and watches early.

At the lift the claimed live stage asks `open_for_live`: the page is checked at once (on
the client the prepare-ahead check warmed) and, if live, the stage sends. If not, the
contact is alerted, the stage keeps its claim and the page is checked by the rules of
link_schedule until it answers or the wait runs out; then the stage holds, claimed, until
`release PACK`. Everything a restart needs (the last check, the alerts sent, the release)
is in the store, so another instance resumes where this one stopped.

`watch_early` is the other watch: from 10 minutes before the lift, one alert if the page
is out already. It changes nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from embargo_bot.delivery.link_check import LinkCheck, LinkChecker
from embargo_bot.delivery.link_schedule import LinkWatchRules, WaitAlert
from embargo_bot.delivery.link_wait import (
    WaitEnd,
    WaitState,
    wait_until_live,
    watch_for_early_publication,
)
from embargo_bot.domain.link_watch import EARLY_ALERT, SeenCheck, Watch
from embargo_bot.domain.packs import NewStage, Pack, Stage, StageKind, StageState
from embargo_bot.domain.times import Clock
from embargo_bot.messages.link_alerts import (
    AlertWords,
    early_alert,
    not_live_alert,
    ran_out_alert,
)
from embargo_bot.security.audit import Auditor
from embargo_bot.store import Store

log = logging.getLogger(__name__)

# While the stage holds for `release`, the store is read this often: "within a few seconds".
RELEASE_POLL_SECONDS = 1.0
WARM_AHEAD = timedelta(seconds=1)


class _Stopped(Exception):
    """The service is stopping, or the stage's claim was lost: do not send."""


@dataclass(frozen=True)
class GateConfig:
    checker: LinkChecker
    rules: LinkWatchRules
    zone: ZoneInfo
    lease: timedelta
    # The longest one check can take: a lease renewed before a check covers it.
    check_deadline: timedelta = timedelta(seconds=15)


def _seen(check: LinkCheck) -> SeenCheck:
    return SeenCheck(
        checked_at=check.checked_at, seen=check.seen, status=check.status, live=check.live
    )


class LinkGate:
    def __init__(
        self,
        *,
        store: Store,
        config: GateConfig,
        clock: Clock,
        owner: str,
        audit: Auditor,
        nudge: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.owner = owner
        self.audit = audit
        # Tells the service a stage was added (an alert): our own commits do not wake it.
        self.nudge = nudge

    @staticmethod
    def applies(pack: Pack) -> bool:
        return pack.link_check

    def claim_lease(self) -> timedelta:
        """How long the live stage is claimed for at the lift: its first check included."""
        return self.config.lease + self.config.check_deadline

    async def aclose(self) -> None:
        await self.config.checker.aclose()

    async def check(self, pack: Pack, now: datetime | None = None) -> LinkCheck:
        return await self.config.checker.check(pack.url, expect_text=pack.expect_text, now=now)

    async def warm(self, pack: Pack) -> None:
        """One check just before the lift: the lift's check then reuses its open connection.

        A second before, not at the prepare-ahead's five: servers often close an idle
        connection after five seconds (Apache's default).
        """
        if not self.applies(pack):
            return
        ahead = (pack.lift_at - WARM_AHEAD - self.clock()).total_seconds()
        if ahead > 0:
            await asyncio.sleep(ahead)
        try:
            result = await self.check(pack)
        except RuntimeError:
            return  # the service stopped meanwhile and closed the client: nothing to warm
        log.info("pack %s: the page answered %s before the lift", pack.id, result.seen)

    def _alert(self, pack: Pack, words: AlertWords) -> NewStage:
        return NewStage(kind=StageKind.ALERT, due_at=self.clock(), detail=words.detail)

    async def open_for_live(self, pack: Pack, stage: Stage, stop: asyncio.Event) -> bool:
        """True: send the live stage now. False: do not (stopping; the stage is handed back)."""
        if pack.released_at is not None:
            return True
        row = self.store.link_watch(pack.id, Watch.LIVE)
        summary = self.store.stage_summary(stage.id)
        if (row is not None and row.live) or summary.sent or summary.failed:
            return True  # resuming a stage whose page was already seen live
        since_lift = row is not None and row.checked_at >= pack.lift_at
        state = WaitState(
            last_checked_at=row.checked_at if row is not None and since_lift else None,
            not_live_sent=row is not None and WaitAlert.NOT_LIVE.value in row.alerts,
            ran_out_sent=row is not None and WaitAlert.RAN_OUT.value in row.alerts,
        )
        waiting = _Waiting(self, pack, stage, stop)
        try:
            result = await wait_until_live(
                check=waiting.check,
                record=waiting.record,
                lift_at=pack.lift_at,
                clock=self.clock,
                rules=self.config.rules,
                state=state,
                released=waiting.released,
                sleep=waiting.sleep,
            )
            if result.end is WaitEnd.RAN_OUT:
                log.warning(
                    "pack %s: the page is still not live; the live email waits for "
                    "`embargo-bot release %s`",
                    pack.id,
                    pack.id,
                )
                while not waiting.released():
                    await waiting.sleep(RELEASE_POLL_SECONDS)
        except _Stopped:
            self.store.release_stage(stage.id, self.owner)
            return False
        if waiting.released():
            log.warning("pack %s: released; the live email goes without the check", pack.id)
        else:
            log.info("pack %s: the page is live; sending the live email", pack.id)
        return True

    async def watch_early(self, stage_id: int) -> None:
        """From 10 minutes before the lift until it: alert once if the page is out early."""
        stage = self.store.stage(stage_id)
        pack = self.store.get_pack(stage.pack_id)
        if stage.kind is not StageKind.LIVE or stage.state is not StageState.SCHEDULED:
            return
        if not self.applies(pack):
            return
        row = self.store.link_watch(pack.id, Watch.EARLY)

        async def record(result: LinkCheck, alert: bool) -> None:
            words = (
                early_alert(
                    seen=result.seen,
                    checked_at=result.checked_at,
                    lift_at=pack.lift_at,
                    expect_text=pack.expect_text,
                    zone=self.config.zone,
                )
                if alert
                else None
            )
            self.store.record_link_check(
                pack.id,
                Watch.EARLY,
                _seen(result),
                alert=EARLY_ALERT if alert else None,
                alert_stage=None if words is None else self._alert(pack, words),
            )
            if alert:
                log.warning("pack %s: the page is live before the lift: %s", pack.id, result.seen)
                self.audit("page live before the lift", pack.id, seen=result.seen)
                self.nudge()

        await watch_for_early_publication(
            check=lambda now: self.check(pack, now),
            record=record,
            lift_at=pack.lift_at,
            clock=self.clock,
            last_checked_at=None if row is None else row.checked_at,
            alerted=row is not None and EARLY_ALERT in row.alerts,
            rules=self.config.rules,
        )


class _Waiting:
    """One live stage waiting for its page: the side effects `wait_until_live` is given."""

    def __init__(self, gate: LinkGate, pack: Pack, stage: Stage, stop: asyncio.Event) -> None:
        self.gate = gate
        self.pack = pack
        self.stage = stage
        self.stop = stop
        self._renewed = time.monotonic()
        # The claim was taken with room for the first check (`claim_lease`): no write at the lift.
        self._first = True

    def released(self) -> bool:
        return self.gate.store.get_pack(self.pack.id).released_at is not None

    def _renew(self, extra: timedelta = timedelta(0)) -> None:
        gate = self.gate
        until = gate.clock() + gate.config.lease + extra
        if not gate.store.renew_lease(self.stage.id, gate.owner, until):
            raise _Stopped("the live stage's claim was lost")
        self._renewed = time.monotonic()

    async def check(self, now: datetime) -> LinkCheck:
        # Renewed first: a check that times out must not let the claim run out meanwhile.
        if not self._first:
            self._renew(self.gate.config.check_deadline)
        self._first = False
        return await self.gate.check(self.pack, now)

    async def record(self, result: LinkCheck, alert: WaitAlert | None) -> None:
        gate, pack = self.gate, self.pack
        words = None
        if alert is not None:
            build = not_live_alert if alert is WaitAlert.NOT_LIVE else ran_out_alert
            words = build(
                seen=result.seen,
                checked_at=result.checked_at,
                lift_at=pack.lift_at,
                wait=gate.config.rules.wait,
                expect_text=pack.expect_text,
                pack_id=pack.id,
                zone=gate.config.zone,
            )
        gate.store.record_link_check(
            pack.id,
            Watch.LIVE,
            _seen(result),
            alert=None if alert is None else alert.value,
            alert_stage=None if words is None else gate._alert(pack, words),
            lease=(self.stage.id, gate.owner, gate.clock() + gate.config.lease),
        )
        self._renewed = time.monotonic()
        if alert is not None:
            log.warning("pack %s: live email waiting: the page answered %s", pack.id, result.seen)
            gate.audit("live email waiting for the page", pack.id, seen=result.seen, alert=alert)
            gate.nudge()

    async def sleep(self, seconds: float) -> None:
        """Wait, keeping the claim; end early on a release, stop on the service's stop."""
        end = time.monotonic() + seconds
        renew_every = self.gate.config.lease.total_seconds() / 3
        while (left := end - time.monotonic()) > 0:
            if time.monotonic() - self._renewed >= renew_every:
                self._renew()
            step = min(left, RELEASE_POLL_SECONDS, renew_every)
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=step)
            except TimeoutError:
                pass
            else:
                raise _Stopped("the service is stopping")
            if self.released():
                return
