"""The long-running service: keeps APScheduler's timetable in step with the store.

The store is the truth. APScheduler only holds an in-memory date job per open
stage, rebuilt from the store at start and re-synced whenever another process
commits (``PRAGMA data_version``), so a pack queued or cancelled from the
command line is picked up within one poll interval. A fired job only asks the
``StageRunner`` to try; the runner re-checks the clock and claims the stage
with a conditional update before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from embargo_bot.delivery import heartbeat
from embargo_bot.delivery.held_waves import HeldWaves
from embargo_bot.delivery.retention import purge_expired
from embargo_bot.delivery.stage_runner import StageRunner
from embargo_bot.delivery.store_faults import next_wait
from embargo_bot.delivery.store_thread import on_store
from embargo_bot.domain.errors import EmbargoBotError, StoreError
from embargo_bot.domain.packs import Stage, StageKind
from embargo_bot.domain.times import Clock
from embargo_bot.lists.catalogue import UNREADABLE, list_fingerprint
from embargo_bot.store import (
    STORE_FAULTS,
    Store,
    describe_fault,
    is_connection_lost,
    is_disk_full,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

LISTS_SEEN = "lists_seen"
# How long before the lift the live email is made ready to go.
PREPARE_AHEAD = timedelta(seconds=5)

# Re-read the whole timetable this often even if nothing seems to have changed:
# covers a clock step and a lease that ran out.
FULL_SYNC_EVERY = 15.0
# Look at held notice waves this often: a fixed list is sent to within seconds.
HELD_CHECK_EVERY = 1.0


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_local_owner(owner: str, *, host: str, pid: int) -> bool:
    """A stage owner on this host whose process has gone (killed, crashed)."""
    owner_host, _, rest = owner.partition(":")
    owner_pid_text = rest.partition(":")[0]
    if owner_host != host or not owner_pid_text.isdigit():
        return False
    owner_pid = int(owner_pid_text)
    if owner_pid == pid:
        return False
    try:
        os.kill(owner_pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Service:
    def __init__(
        self,
        *,
        store: Store,
        runner: StageRunner,
        clock: Clock,
        poll_interval: float,
        retain: timedelta | None = None,
        recipients_dir: Path | None = None,
        background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        # Jobs beside the stages (the bounce reader), stopped with the service.
        self._background = tuple(background)
        self._retain = retain
        self._recipients_dir = recipients_dir
        self._store = store
        self._runner = runner
        self._clock = clock
        self._poll_interval = poll_interval
        self._running: dict[int, asyncio.Task[None]] = {}
        # The early link watches running, and those done, by (stage, lift): at most one each.
        self._watching: dict[int, asyncio.Task[None]] = {}
        self._watched: set[tuple[int, object]] = set()
        if runner.gate is not None:
            runner.gate.nudge = self._nudge
        self._stop = asyncio.Event()
        # Set when one of our own stages ends: our own commits do not change
        # data_version, and a stage that waited on it may now start.
        self._resync = False
        self._held = HeldWaves(runner)

    def _nudge(self) -> None:
        self._resync = True

    def stop(self) -> None:
        """Ask the service to stop: messages in flight finish, the rest wait for next start."""
        self._stop.set()

    async def run(self) -> None:
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                # APScheduler's default grace of 1 s would silently drop a stage
                # due while the service was down; lateness is decided by rules.py.
                "misfire_grace_time": None,
                "coalesce": True,
                "max_instances": 1,
            },
        )
        scheduler.start()
        log.info("service started as %s", self._runner.owner)
        self._warn_of_another_instance()
        self._beat()
        jobs = [asyncio.create_task(job(self._stop)) for job in self._background]
        try:
            await self._loop(scheduler)
        except STORE_FAULTS as exc:
            raise describe_fault(exc, self._store.path) from exc
        finally:
            self._stop.set()
            await asyncio.gather(*jobs, return_exceptions=True)
            scheduler.shutdown(wait=False)
            # On the thread that writes the beats, so that no beat can land after it.
            await self._off_loop(self._clear_heartbeat)
            self._runner.close_warm()
            for watch in self._watching.values():
                watch.cancel()
            await asyncio.gather(*self._watching.values(), return_exceptions=True)
            running = dict(self._running)
            if running:
                log.info(
                    "waiting for %d stage(s) to stop after their message in flight", len(running)
                )
                await asyncio.gather(*running.values(), return_exceptions=True)
            await self._runner.close()
            if self._runner.gate is not None:
                await self._runner.gate.aclose()
            log.info("service stopped%s", self._left_over(list(running)))

    def _beat(self, store: Store | None = None) -> None:
        (store or self._store).record_heartbeat(
            self._runner.owner, self._clock(), host=socket.gethostname(), pid=os.getpid()
        )

    def _warn_of_another_instance(self) -> None:
        """Two instances on one store are safe, and the way to run two hosts: say so, go on."""
        now = self._clock()
        live = self._store.live_instances(now, stale_after=heartbeat.GONE_AFTER)
        for other in heartbeat.others(live, me=self._runner.owner):
            if is_dead_local_owner(other.id, host=socket.gethostname(), pid=os.getpid()):
                continue
            seconds = max(0, round((now - other.heartbeat_at).total_seconds()))
            log.warning(
                "another embargo-bot service is running on this store (%s, seen %ds ago): "
                "that is safe, each stage is sent by one of them; stop one if two were not "
                "meant",
                other.id,
                seconds,
            )

    def _clear_heartbeat(self, store: Store) -> None:
        """At a clean stop: neither live nor dead, so nobody waits for its beat to age."""
        store.instance_stopped(self._runner.owner, self._clock())

    def _left_over(self, stage_ids: list[int]) -> str:
        """What the stages stopped part-way still have to send, for the stop's log line."""
        pending = [self._store.stage_summary(stage_id).pending for stage_id in stage_ids]
        left = [count for count in pending if count]
        if not left:
            return ""
        return f": {sum(left)} message(s) of {len(left)} stage(s) left for the next start"

    async def _loop(self, scheduler: AsyncIOScheduler) -> None:
        seen_version: int | None = None
        since_full = since_held = FULL_SYNC_EVERY
        beat_due = self._clock()
        backoff = 0.0  # while the database server is away
        while not self._stop.is_set():
            self._check_store_file()
            try:
                if self._clock() >= beat_due:
                    await self._off_loop(self._beat)
                    beat_due = self._clock() + heartbeat.BEAT_EVERY
                if since_held >= HELD_CHECK_EVERY:
                    since_held = 0.0
                    self._resync |= self._held.check()
                version = await self._off_loop(lambda store: store.data_version())
                if version != seen_version or self._resync or since_full >= FULL_SYNC_EVERY:
                    self._sync(scheduler, await self._off_loop(self._runnable))
                    if since_full >= FULL_SYNC_EVERY or seen_version is None:
                        self._housekeeping()
                    seen_version, since_full, self._resync = version, 0.0, False
                backoff = 0.0
                self._runner.faults.back()
            except STORE_FAULTS as exc:
                if is_connection_lost(exc):
                    # Reconnect with backoff, then re-read everything: a job that fired
                    # meanwhile found no store, and its stage is still to be run.
                    self._runner.faults.lost(exc, "keeping the timetable")
                    self._resync, backoff = True, next_wait(backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), timeout=backoff)
                    continue
                if not is_disk_full(exc, self._store.path):
                    raise
                # Nothing recorded is lost: this poll's work is done again at the next,
                # so a stage whose claim ran out meanwhile resumes as soon as there is room.
                self._runner.faults.report(exc, "keeping the timetable")
                self._resync = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._poll_interval)
            since_full += self._poll_interval
            since_held += self._poll_interval

    def _check_store_file(self) -> None:
        """Stop, rather than send and record into a store nobody else sees."""
        problem = self._store.file_problem()
        if problem is not None:
            raise StoreError(
                f"{problem}; the service stops so that nothing more is sent or recorded there. "
                "Put the store back (or set EMBARGO_BOT_DATABASE to it) and start it again"
            )

    def _off_loop(self, work: Callable[[Store], T]) -> Awaitable[T]:
        """The poll's store calls, on the store's own thread: a slow database stalls no
        SMTP session."""
        return on_store(self._runner.thread, self._store, work)

    def _runnable(self, store: Store) -> list[Stage]:
        self._reclaim_abandoned(store)
        return store.runnable_stages()

    def _sync(self, scheduler: AsyncIOScheduler, runnable: list[Stage]) -> None:
        wanted = {str(stage.id): stage for stage in runnable}
        now = self._clock()
        gate = self._runner.gate
        for stage in list(wanted.values()):
            if stage.kind is StageKind.LIVE and stage.due_at - PREPARE_AHEAD > now:
                wanted[f"{stage.id}/prepare"] = stage
            early = gate is not None and stage.kind is StageKind.LIVE and stage.due_at > now
            fresh = stage.id not in self._watching and (stage.id, stage.due_at) not in self._watched
            if early and fresh:
                wanted[f"{stage.id}/early"] = stage
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for job_id, stage in wanted.items():
            if stage.id in self._running:
                continue
            preparing = job_id.endswith("/prepare")
            run_date = stage.due_at - PREPARE_AHEAD if preparing else stage.due_at
            job_function = self._prepare if preparing else self._fire
            if job_id.endswith("/early"):
                assert gate is not None
                run_date = max(now, stage.due_at - gate.config.rules.early_from)
                job_function = self._watch_early
            job = scheduler.get_job(job_id)
            if job is not None and (
                job.next_run_time == run_date or (job_id.endswith("/early") and run_date <= now)
            ):
                continue
            scheduler.add_job(
                job_function,
                trigger=DateTrigger(run_date=run_date, timezone=UTC),
                args=(stage.id,),
                id=job_id,
                replace_existing=True,
            )

    def _housekeeping(self) -> None:
        """Now and then: delete long-public material, and note changed list files."""
        audit = self._runner.audit
        if self._retain is not None:
            purged = purge_expired(self._store, now=self._clock(), retain=self._retain, audit=audit)
            if purged:
                log.info("deleted the material of %d pack(s) past retention", len(purged))
        if self._recipients_dir is not None:
            files = list_fingerprint(self._recipients_dir)
            fingerprint = json.dumps(files, sort_keys=True)
            if self._store.meta(LISTS_SEEN) != fingerprint.encode():
                with self._store.transaction():
                    self._store.set_meta(LISTS_SEEN, fingerprint.encode())
                    audit("lists changed", None, files=files)
                log.info("recipient lists changed since last seen; recorded in the audit log")
                self._report_unreadable(files)

    def _report_unreadable(self, files: dict[str, str]) -> None:
        """Once per change of the lists: only packs that name such a list are affected."""
        for name, value in files.items():
            if value.startswith(UNREADABLE):
                log.error(
                    "recipient list %s %s; packs that name it leave it out until it is fixed",
                    name,
                    value,
                )

    def _reclaim_abandoned(self, store: Store) -> None:
        host, pid = socket.gethostname(), os.getpid()
        dead = [
            owner
            for owner in store.stage_owners()
            if is_dead_local_owner(owner, host=host, pid=pid)
        ]
        reclaimed = store.reclaim_abandoned(self._clock(), dead)
        reclaimed += store.reclaim_from_dead(self._clock(), stale_after=heartbeat.GONE_AFTER)
        if reclaimed:
            log.warning("resuming %d stage(s) left unfinished by a stopped instance", reclaimed)

    async def _prepare(self, stage_id: int) -> None:
        try:
            await self._runner.prepare(stage_id)
        except EmbargoBotError as exc:
            log.warning("stage %d could not be prepared ahead: %s", stage_id, exc)

    async def _watch_early(self, stage_id: int) -> None:
        gate = self._runner.gate
        if gate is None or stage_id in self._watching or self._stop.is_set():
            return
        key = (stage_id, self._store.stage(stage_id).due_at)
        self._watched.add(key)
        task = asyncio.create_task(self._early_watch(gate.watch_early, stage_id))
        self._watching[stage_id] = task
        task.add_done_callback(lambda _: self._watching.pop(stage_id, None))

    async def _early_watch(self, watch: Callable[[int], Awaitable[None]], stage_id: int) -> None:
        try:
            await watch(stage_id)
        except EmbargoBotError as exc:
            log.warning("stage %d: the early link watch stopped: %s", stage_id, exc)
        except Exception:
            log.exception("stage %d: the early link watch crashed", stage_id)

    async def _fire(self, stage_id: int) -> None:
        if stage_id in self._running or self._stop.is_set():
            return
        task = asyncio.create_task(self._run_stage(stage_id))
        self._running[stage_id] = task
        task.add_done_callback(lambda _: self._stage_ended(stage_id))

    def _stage_ended(self, stage_id: int) -> None:
        self._running.pop(stage_id, None)
        self._resync = True

    async def _run_stage(self, stage_id: int) -> None:
        try:
            await self._runner.run(stage_id, self._stop)
        except EmbargoBotError as exc:
            log.error("stage %d failed: %s", stage_id, exc)
        except STORE_FAULTS as exc:
            # Its claim runs out and it resumes, from what was recorded, once it can be written.
            self._runner.faults.report(exc, f"sending stage {stage_id}")
        except Exception:
            log.exception("stage %d crashed; it will be retried when its claim runs out", stage_id)
