"""Notice throughput and lift latency on PostgreSQL, with one instance and with two, beside SQLite.

Each variant runs ``embargo-bot run`` as real processes (one or two) on its own
store and its own ``smtp-sink``: a pack whose notice (100 KB PDF) goes now to
1,000 partners and whose live email goes to them at the lift. The PostgreSQL
server is the tests' throwaway one (tests/servers/postgres.py): fsync off, as
a test server, so the figure is the code's, not this VM's disk.
"""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from errors import BenchError
from figures import Figure
from inprocess import stage_closed, stage_of
from postfix_tools import SmtpSink
from workspace import Workspace, workspace

from embargo_bot.app import App, open_app
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.domain.times import utc_now
from embargo_bot.settings import ENV_PREFIX, load_settings

PART = "instances"
RECIPIENTS = 1000
PDF_SIZE = 100_000
# Services up, then the notice (about 4 s), then the live email prepared 5 s ahead.
LEAD = 12.0
TARGET_FIRST_MS = 20.0
TARGET_LAST_MS = 1000.0
TARGET_RATIO = 0.90
ROUNDS = 3  # each variant's figures are the median of this many rounds
POSTGRESQL = (("PostgreSQL, 1 instance", 1), ("PostgreSQL, 2 instances", 2))
TESTS = Path(__file__).resolve().parent.parent / "tests"

if TYPE_CHECKING:
    from servers.postgres import PostgresServer


@dataclass(frozen=True)
class Run:
    label: str
    notice_rate: float
    first_ms: float
    last_ms: float
    live_sent: int
    early: int
    sink_early: int


def _postgres() -> PostgresServer:
    sys.path.insert(0, str(TESTS))
    import pytest
    from servers.postgres import start_server

    try:
        return start_server()
    except pytest.skip.Exception as exc:
        raise BenchError(f"no PostgreSQL server: {exc}") from exc


def _variant(label: str, instances: int, database: str | None) -> Run:
    with SmtpSink() as sink, workspace(sink.port, recipients=RECIPIENTS) as space:
        values = space.setting_values()
        if database is not None:
            values["database"] = database
        settings = load_settings(_env_file=None, **values)
        env = {**space.environment(), ENV_PREFIX + "DATABASE": values["database"]}
        with open_app(settings) as app:
            services = [_start(env, space) for _ in range(instances)]
            try:
                _wait_for_instances(app, services)
                pack = space.queue(
                    app, pdf_size=PDF_SIZE, lift_at=utc_now() + timedelta(seconds=LEAD)
                )
                deadline = time.monotonic() + LEAD + 60
                while not stage_closed(app, pack.id, StageKind.LIVE):
                    if time.monotonic() > deadline:
                        raise BenchError(f"{label}: the live stage did not finish")
                    time.sleep(0.1)
                notice = stage_of(app, pack.id, StageKind.NOTICE)
                deliveries = app.store.deliveries(pack.id)
            finally:
                _stop(services)
        others_before = sum(
            d.kind is not StageKind.LIVE
            and d.state is DeliveryState.SENT
            and d.updated_at < pack.lift_at
            for d in deliveries
        )
        sink_early = sink.messages_before(pack.lift_at.timestamp()) - others_before
    if notice.started_at is None or notice.finished_at is None:
        raise BenchError(f"{label}: the notice stage did not run ({notice.state})")
    if notice.finished_at >= pack.lift_at:
        raise BenchError(f"{label}: the notice was still sending at the lift")
    notices = [
        d for d in deliveries if d.kind is StageKind.NOTICE and d.state is DeliveryState.SENT
    ]
    live = [d for d in deliveries if d.kind is StageKind.LIVE and d.state is DeliveryState.SENT]
    if not live:
        raise BenchError(f"{label}: the live stage sent nothing")
    after_ms = sorted((d.updated_at - pack.lift_at).total_seconds() * 1000 for d in live)
    seconds = (notice.finished_at - notice.started_at).total_seconds()
    return Run(
        label=label,
        notice_rate=len(notices) / seconds,
        first_ms=after_ms[0],
        last_ms=after_ms[-1],
        live_sent=len(live),
        early=sum(ms < 0 for ms in after_ms),
        sink_early=sink_early,
    )


def _start(env: dict[str, str], space: Workspace) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "embargo_bot", "run"],
        env=env,
        cwd=space.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_instances(app: App, services: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while True:
        live = app.store.live_instances(utc_now(), stale_after=timedelta(seconds=3.5))
        if len(live) == len(services):
            return
        if time.monotonic() > deadline or any(s.poll() is not None for s in services):
            raise BenchError("the service instances did not start")
        time.sleep(0.1)


def _stop(services: list[subprocess.Popen[bytes]]) -> None:
    for service in services:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
    for service in services:
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def _median_run(runs: list[Run]) -> Run:
    """Each figure's median over the rounds; every live email and every early one counted."""
    return Run(
        label=runs[0].label,
        notice_rate=statistics.median(run.notice_rate for run in runs),
        first_ms=statistics.median(run.first_ms for run in runs),
        last_ms=statistics.median(run.last_ms for run in runs),
        live_sent=min(run.live_sent for run in runs),
        early=sum(run.early for run in runs),
        sink_early=sum(run.sink_early for run in runs),
    )


def _each(runs: list[Run], figure: Callable[[Run], float], unit: str) -> str:
    return "runs: " + ", ".join(f"{figure(run):,.0f}" for run in runs) + unit


def _figures(runs: list[Run], sqlite_rates: list[float] | None) -> list[Figure]:
    run = _median_run(runs)
    part = f"{PART}: {run.label}"
    figures = [
        Figure(
            part,
            f"notice stage, start to finish (median of {len(runs)})",
            run.notice_rate,
            "msg/s",
            note=_each(runs, lambda r: r.notice_rate, ""),
        ),
        Figure(part, "live emails accepted, each round", run.live_sent, f"/ {RECIPIENTS:,}"),
        Figure(
            part,
            "first live accepted after the lift (median)",
            run.first_ms,
            "ms",
            1,
            target=f"<= {TARGET_FIRST_MS:g} ms",
            met=0 <= run.first_ms <= TARGET_FIRST_MS,
            note=_each(runs, lambda r: r.first_ms, " ms"),
        ),
        Figure(
            part,
            "last live accepted after the lift (median)",
            run.last_ms,
            "ms",
            1,
            target=f"<= {TARGET_LAST_MS:g} ms",
            met=run.live_sent == RECIPIENTS and run.last_ms <= TARGET_LAST_MS,
            note=_each(runs, lambda r: r.last_ms, " ms"),
        ),
        Figure(
            part,
            "live before the lift, every round (records / sink)",
            run.early + run.sink_early,
            "",
            target="0",
            met=run.early == 0 and run.sink_early == 0,
            note=f"{run.early} / {run.sink_early}",
        ),
    ]
    if sqlite_rates is not None:
        ratio = run.notice_rate / statistics.median(sqlite_rates)
        figures.append(
            Figure(
                part,
                "notice throughput / SQLite's (medians)",
                100 * ratio,
                "%",
                target=f">= {TARGET_RATIO:.0%}",
                met=ratio >= TARGET_RATIO,
            )
        )
    return figures


def measure() -> list[Figure]:
    server = _postgres()
    variants: dict[str, list[Run]] = {}
    try:
        # The variants take turns, round by round, so that a change in this
        # machine's load falls on each of them.
        for _ in range(ROUNDS):
            for label, count in (("SQLite, 1 instance", 0), *POSTGRESQL):
                url = server.url(server.new_database()) if count else None
                variants.setdefault(label, []).append(_variant(label, max(count, 1), url))
    finally:
        server.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(server.root, ignore_errors=True)
    [sqlite, *postgresql] = variants.values()
    sqlite_rates = [run.notice_rate for run in sqlite]
    figures = _figures(sqlite, None)
    for runs in postgresql:
        figures += _figures(runs, sqlite_rates)
    return figures
