"""embargo-bot's benchmark: throughput, lift latency, peak memory, capped fan-out, in one run.

    .venv/bin/python bench/run.py                 # every part, about two minutes
    .venv/bin/python bench/run.py --only lift     # one part (repeat --only for more)

Prints one table, each figure against its target where the issue sets one.
Exit status: 0 every target met, 1 a target missed, 2 a part could not be measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import fanout
import instances
import lift
import list_cost
import memory
import startup
import throughput
from errors import BenchError
from figures import Figure, table

from embargo_bot.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=["startup", "throughput", "lift", "memory", "list-cost", "fanout", "instances"],
        help="run only this part (may be repeated)",
    )
    parser.add_argument(
        "--lift-lead",
        type=float,
        default=lift.DEFAULT_LEAD,
        help="seconds from queueing to the lift (the notice wave must finish before it)",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        default=memory.DEFAULT_BUDGET,
        help="seconds the 20 MB stage may run before it is stopped and measured",
    )
    return parser.parse_args()


def parts(args: argparse.Namespace) -> dict[str, Callable[[], list[Figure]]]:
    every: dict[str, Callable[[], list[Figure]]] = {
        "startup": startup.measure,
        "throughput": throughput.measure,
        "lift": lambda: lift.measure(lead=args.lift_lead),
        "memory": lambda: memory.measure(budget=args.memory_budget),
        "list-cost": list_cost.measure,
        "fanout": fanout.measure,
        "instances": instances.measure,
    }
    return {name: every[name] for name in every if not args.only or name in args.only}


def code_version() -> str:
    """The commit measured, and whether embargo_bot/ was edited: the figures move with the code."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    edited = git("status", "--porcelain", "--", "embargo_bot")
    return f"{commit} with uncommitted changes to embargo_bot/" if edited else commit


def machine() -> str:
    # Settings() with no .env: the default connection count the benchmark uses.
    connections = load_settings(_env_file=None).smtp_connections
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}, "
        f"{connections} SMTP connections"
    )


def main() -> int:
    args = parse_args()
    print(f"embargo-bot benchmark: {machine()}", flush=True)
    print(f"embargo-bot at {code_version()}", flush=True)
    figures: list[Figure] = []
    unmeasured: list[str] = []
    started = time.monotonic()
    for name, measure in parts(args).items():
        print(f"... {name}", flush=True)
        part_started = time.monotonic()
        try:
            figures += measure()
        except BenchError as exc:
            unmeasured.append(f"{name}: {exc}")
        print(f"    {time.monotonic() - part_started:.1f} s", flush=True)
    print()
    print(table(figures))
    for problem in unmeasured:
        print(f"\nNOT MEASURED  {problem}")
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s")
    if unmeasured:
        return 2
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
