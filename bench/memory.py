"""Peak memory: the service, as its own process, sending a 20 MB PDF to 500 partners, and to 50.

Issue 12's targets: at most 260 MiB for 500, and within 10% of the same PDF
to 50, so memory does not grow with the recipients.

A separate process, so the figure is the service's alone: not the
benchmark's, which holds the same PDF to queue the pack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from errors import BenchError
from figures import Figure
from inprocess import stage_closed, stage_of
from postfix_tools import SmtpSink
from workspace import Workspace, workspace

from embargo_bot.app import open_app
from embargo_bot.domain.packs import StageKind
from embargo_bot.domain.times import utc_now

PART = "peak memory"
TARGET_MIB = 260.0
TARGET_GROWTH = 0.10  # 500 recipients against 50
FEW = 50
# The whole stage can take minutes when sending is slow; the peak comes in the
# first seconds (building the message, then the first sends on every
# connection), so the run is cut off here and the figure marked a lower bound.
DEFAULT_BUDGET = 90.0
_POLL = 0.25
_STOP_WITHIN = 60.0  # SIGTERM lets the messages in flight finish: 27 MB each


@dataclass(frozen=True)
class ServiceRun:
    # VmHWM of the service's own memory, last read as it exited: its high-water mark.
    peak_kib: int
    # ru_maxrss of the exited service. Not the service's alone: Popen starts it by vfork,
    # and Linux counts the benchmark's own high-water mark (it queued the 20 MB pack) in
    # the child's when the child execs.
    maxrss_kib: int
    rss_at_stop_kib: int  # VmRSS just before SIGTERM: what it was holding then
    exit_status: int
    stage_done: bool  # False: stopped at the time budget, part-way through the stage
    seconds: float  # from start to SIGTERM


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` line (VmRSS, VmHWM) from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field}")


def log_tail(space: Workspace, lines: int = 15) -> str:
    return "\n".join((space.root / "service.log").read_text(errors="replace").splitlines()[-lines:])


def high_water_kib(pid: int, last: int) -> int:
    """The child's VmHWM, or ``last`` once it has exited (a zombie has no memory lines)."""
    try:
        return max(last, proc_status_kib(pid, "VmHWM"))
    except (OSError, BenchError):
        return last


def reap(pid: int, within: float, peak_kib: int) -> tuple[int, int, int]:
    """Wait for the child: its exit status, its own VmHWM (read until it exits) and its
    ru_maxrss, both in KiB."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        peak_kib = high_water_kib(pid, peak_kib)
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            return os.waitstatus_to_exitcode(status), peak_kib, usage.ru_maxrss
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.wait4(pid, 0)
    raise BenchError(f"the service did not stop within {within:.0f} s of SIGTERM; killed it")


def run_service(space: Workspace, pack_id: str, budget: float) -> ServiceRun:
    """``embargo-bot run`` until the notice stage is done or the budget is spent."""
    log_path = space.root / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "embargo_bot", "run"],
            env=space.environment(),
            cwd=space.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    started = time.monotonic()
    try:
        with open_app(space.settings()) as app:
            while not (done := stage_closed(app, pack_id, StageKind.NOTICE)):
                if service.poll() is not None:
                    raise BenchError(
                        f"the service exited early ({service.returncode}):\n{log_tail(space)}"
                    )
                if time.monotonic() - started > budget:
                    break
                time.sleep(_POLL)
        rss_at_stop = proc_status_kib(service.pid, "VmRSS")
        peak = proc_status_kib(service.pid, "VmHWM")
        seconds = time.monotonic() - started
        service.send_signal(signal.SIGTERM)
        status, peak, maxrss = reap(service.pid, within=_STOP_WITHIN, peak_kib=peak)
        service.returncode = status  # reaped by wait4: Popen must not wait for it again
    finally:
        if service.returncode is None:
            service.kill()
            service.wait()
    return ServiceRun(peak, maxrss, rss_at_stop, status, done, seconds)


def measure(
    *, recipients: int = 500, pdf_size: int = 20_000_000, budget: float = DEFAULT_BUDGET
) -> list[Figure]:
    few, few_run = _measure_one(recipients=FEW, pdf_size=pdf_size, budget=budget)
    many, many_run = _measure_one(recipients=recipients, pdf_size=pdf_size, budget=budget)
    few_mib, many_mib = few_run.peak_kib / 1024, many_run.peak_kib / 1024
    growth = many_mib / few_mib - 1
    return [
        *(Figure(f.part, f"{f.name} ({FEW})", f.value, f.unit, f.decimals) for f in few),
        *many,
        Figure(
            PART,
            f"peak RSS, {recipients} against {FEW} recipients",
            100 * growth,
            "%",
            1,
            target=f"<= {TARGET_GROWTH:.0%}",
            met=growth <= TARGET_GROWTH,
        ),
    ]


def _measure_one(
    *, recipients: int, pdf_size: int, budget: float
) -> tuple[list[Figure], ServiceRun]:
    with SmtpSink() as sink, workspace(sink.port, recipients=recipients) as space:
        with open_app(space.settings()) as app:
            pack = space.queue(app, pdf_size=pdf_size, lift_at=utc_now() + timedelta(hours=1))
        run = run_service(space, pack.id, budget)
        with open_app(space.settings()) as app:
            stage = stage_of(app, pack.id, StageKind.NOTICE)
            sent = app.store.stage_summary(stage.id).sent
        sink_counted = sink.wait_for_messages(sent, within=5)
        if sent == 0:
            raise BenchError(
                f"no notice was sent within {budget:g} s ({stage.state}); the service's log "
                f"ends:\n{log_tail(space)}"
            )

    peak_mib = run.peak_kib / 1024
    complete = run.stage_done and sent == recipients and run.exit_status == 0
    rate = sent / run.seconds
    cut_short = "" if complete else f"stopped at {budget:g} s: the true peak is at least this"
    figures = [
        Figure(PART, "PDF size", pdf_size / 1e6, "MB", 1),
        Figure(PART, "notices accepted / sent to", sent, f"/ {recipients:,}"),
        Figure(PART, "messages counted by the sink", sink_counted, ""),
        Figure(PART, "send rate (service start to stop)", rate, "msg/s", 2),
        Figure(PART, "time for the whole stage (projected)", recipients / rate, "s"),
        Figure(PART, "service RSS when stopped", run.rss_at_stop_kib / 1024, "MiB", 1),
        Figure(
            PART,
            "ru_maxrss (with the benchmark's own peak, by vfork)",
            run.maxrss_kib / 1024,
            "MiB",
            1,
        ),
        Figure(
            PART,
            "service peak RSS (VmHWM)",
            peak_mib,
            "MiB",
            1,
            target=f"<= {TARGET_MIB:g} MiB",
            met=complete and peak_mib <= TARGET_MIB,
            note=cut_short,
        ),
    ]
    return figures, run
