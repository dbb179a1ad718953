"""What a big list costs the commands an official types: `queue` and `show`.

With a 10,000-recipient list in the folder, `queue` of a 3-recipient pack,
and `show` (the default per-stage summary) of a pack sent to all 10,000.
Each command runs as its own process, three times; the median wall time is
the figure. Issue 10's targets: queue <= 0.6 s, show <= 1 s.
"""

from __future__ import annotations

import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from figures import Figure
from workspace import Workspace, workspace

from embargo_bot.app import open_app
from embargo_bot.domain.packs import NewDelivery, StageKind

BIG = 10_000
RUNS = 3
QUEUE_TARGET = 0.6
SHOW_TARGET = 1.0


def _median_seconds(args: list[str], space: Workspace) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(
            args, env=space.environment(), cwd=space.root, check=True, capture_output=True
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _small_list(space: Workspace) -> None:
    entries = "\n".join(f"  - email: desk{n}@small.example" for n in range(3))
    (space.recipients_dir / "small.yaml").write_text(
        "name: Small\nallowed_domains: [small.example]\n"
        f"max_classification: OFFICIAL-SENSITIVE\nrecipients:\n{entries}\n",
        encoding="utf-8",
    )


def _sent_to_everyone(space: Workspace) -> str:
    """A pack whose notice went to all of the big list: its deliveries, as if sent."""
    with open_app(space.settings()) as app:
        pack = space.queue(app, pdf_size=10_000, lift_at=datetime.now(UTC) + timedelta(days=1))
        stage = app.store.stage_of(pack.id, StageKind.NOTICE)
        recipients = [
            NewDelivery(
                email=f"partner{n:04d}@bench.example",
                name=None,
                list_key="bench",
                message_id=f"<{pack.id}.{n}@bench.example>",
            )
            for n in range(1, BIG + 1)
        ]
        app.store.expand_stage(stage.id, recipients, app.clock())
    # One accepted attempt each, written straight in: a real send takes minutes.
    with sqlite3.connect(space.database) as db:
        db.execute(
            "UPDATE deliveries SET state = 'sent', attempts = 1, reply = '250 2.0.0 Ok' "
            "WHERE stage_id = ?",
            (stage.id,),
        )
        db.execute(
            "INSERT INTO attempts (stage_id, email, number, at, outcome, code, reply) "
            "SELECT stage_id, email, 1, updated_at, 'accepted', 250, '250 2.0.0 Ok' "
            "FROM deliveries WHERE stage_id = ?",
            (stage.id,),
        )
    return pack.id


def measure() -> list[Figure]:
    with workspace(2525, recipients=BIG) as space:  # no relay: nothing is sent
        _small_list(space)
        files = space.root / "input"
        pack_id = _sent_to_everyone(space)
        command = [sys.executable, "-m", "embargo_bot"]
        lift = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        queue = [
            *command, "queue", "--title", "Small pack", "--pdf", str(files / "publication.pdf"),
            "--release", str(files / "release.md"), "--url", "https://www.gov.example/isbn/s",
            "--lift", lift, "--lists", "small",
        ]  # fmt: skip
        queue_seconds = _median_seconds(queue, space)
        show_seconds = _median_seconds([*command, "show", pack_id], space)
        # The same queue with the big list gone: what the list itself costs is the difference.
        (space.recipients_dir / "bench.yaml").unlink()
        bare_seconds = _median_seconds(queue, space)
    return [
        Figure(
            "list cost",
            "queue, 3 recipients, no big list (this machine's floor)",
            bare_seconds,
            "s",
            decimals=2,
        ),
        Figure(
            "list cost",
            f"queue, 3 recipients, {BIG:,}-recipient list present",
            queue_seconds,
            "s",
            decimals=2,
            target=f"<= {QUEUE_TARGET} s",
            met=queue_seconds <= QUEUE_TARGET,
        ),
        Figure(
            "list cost",
            f"show, pack sent to {BIG:,}",
            show_seconds,
            "s",
            decimals=2,
            target=f"<= {SHOW_TARGET} s",
            met=show_seconds <= SHOW_TARGET,
        ),
    ]


if __name__ == "__main__":
    from figures import table

    print(table(measure()))
