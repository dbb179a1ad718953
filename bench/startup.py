"""How quickly the command line starts: `--help`, and `list` on an empty store.

Each command runs as its own process, as a person types it, five times; the
median wall time is the figure. Issue 8's target: 0.2 s for each.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import Figure

TARGET = 0.2
RUNS = 5


def _median_seconds(args: list[str], env: dict[str, str], cwd: Path) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="embargo-bench-startup-") as work:
        folder = Path(work)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EMBARGO_BOT_")},
            "EMBARGO_BOT_DATABASE": str(folder / "store.db"),
        }
        command = [sys.executable, "-m", "embargo_bot"]
        # An empty store, made once before timing: `list` reads it, it does not create it.
        make = "import sys; from pathlib import Path; from embargo_bot.store import Store; "
        make += "Store.open(Path(sys.argv[1])).close()"
        subprocess.run([sys.executable, "-c", make, env["EMBARGO_BOT_DATABASE"]], check=True)
        figures = []
        for name, args in (
            ("--help", [*command, "--help"]),
            ("list, empty store", [*command, "list"]),
        ):
            seconds = _median_seconds(args, env, folder)
            figures.append(
                Figure(
                    "startup",
                    f"{name}, median of {RUNS}",
                    seconds * 1000,
                    "ms",
                    target=f"<= {TARGET * 1000:.0f} ms",
                    met=seconds <= TARGET,
                )
            )
        return figures
