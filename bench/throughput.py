"""Notice throughput: one notice stage into smtp-sink, beside plain aiosmtplib and smtp-source.

Issue 12 settled the bound: aiosmtplib's own DATA path (two whole-message
regular expressions and copies per message) is accepted, so the target is the
stage against plain aiosmtplib ``sendmail`` of the same bytes over the same
connections; smtp-source (C, Postfix's) is shown beside them for scale.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from errors import BenchError
from figures import Figure
from inprocess import serve_until_closed, stage_of
from plain_client import plain_rate
from postfix_tools import SmtpSink, smtp_source
from workspace import PARTNER_DOMAIN, Workspace, workspace

from embargo_bot.app import App, open_app
from embargo_bot.domain.packs import DeliveryState, Pack, StageKind
from embargo_bot.domain.times import utc_now

PART = "notice throughput"
TARGET_RATIO = 0.90  # of plain aiosmtplib
RUNS = 3  # of each side: each takes a few seconds, and the median of three steadies it


def notice_message(space: Workspace, pack_id: str) -> bytes:
    """One recipient's notice exactly as it goes to the relay, via ``embargo-bot preview``."""
    out_dir = space.root / "preview"
    command = [sys.executable, "-m", "embargo_bot", "preview", pack_id, "--stage", "notice"]
    done = subprocess.run(
        [*command, "--out", str(out_dir), "--json"],
        env=space.environment(),
        cwd=space.root,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"embargo-bot preview failed: {done.stderr.decode().strip()}")
    written = json.loads(done.stdout)
    message = Path(written[0]["path"]).read_bytes()
    for item in written:  # a thousand copies of 140 KB: not worth keeping
        Path(item["path"]).unlink()
    return message


def write_for_smtp_source(message: bytes, path: Path) -> None:
    # smtp-source -F appends CRLF to every line it reads, so it gets LF lines
    # and puts the same bytes on the wire as the service does.
    path.write_bytes(message.replace(b"\r\n", b"\n"))


@dataclass(frozen=True)
class StageRun:
    """One notice stage, as the store recorded it."""

    sent: int
    seconds: float  # the stage's started_at to finished_at
    accept_span: float  # first to last notice accepted

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def run_stage(app: App, pack: Pack) -> StageRun:
    serve_until_closed(app, pack.id, StageKind.NOTICE, within=240)
    stage = stage_of(app, pack.id, StageKind.NOTICE)
    sent = [
        d.updated_at
        for d in app.store.deliveries(pack.id, state=DeliveryState.SENT)
        if d.kind is StageKind.NOTICE
    ]
    if not sent or stage.started_at is None or stage.finished_at is None:
        raise BenchError(f"the notice stage sent nothing ({stage.state}: {stage.detail})")
    seconds = (stage.finished_at - stage.started_at).total_seconds()
    return StageRun(len(sent), seconds, (max(sent) - min(sent)).total_seconds())


def measure(*, recipients: int = 1000, pdf_size: int = 100_000) -> list[Figure]:
    with SmtpSink() as sink, workspace(sink.port, recipients=recipients) as space:
        settings = space.settings()
        connections = settings.smtp_connections
        with open_app(settings) as app:
            lift_at = utc_now() + timedelta(hours=1)
            packs = [space.queue(app, pdf_size=pdf_size, lift_at=lift_at)]
            message = notice_message(space, packs[0].id)
            message_file = space.root / "notice-lf.eml"
            write_for_smtp_source(message, message_file)

            source_rates = [
                smtp_source(
                    sink.port,
                    message_file=message_file,
                    count=recipients,
                    concurrency=connections,
                    sender=settings.sender_address,
                    recipient=f"partner@{PARTNER_DOMAIN}",
                ).rate
                for _ in range(RUNS)
            ]
            # Each side in turn, so that a change in the machine's load falls on both.
            plain_rates, runs = [], []
            for number in range(RUNS):
                plain_rates.append(
                    plain_rate(
                        sink.port,
                        message=message,
                        count=recipients,
                        connections=connections,
                        sender=settings.sender_address,
                    )
                )
                if number > 0:  # the same notice, to the same list, as another pack
                    packs.append(space.queue(app, pdf_size=pdf_size, lift_at=lift_at))
                runs.append(run_stage(app, packs[-1]))
            recorded = sum(len(app.store.deliveries(p.id, state=DeliveryState.SENT)) for p in packs)

        # Every message the service handed over (stage reports too), as the sink
        # counted them: a check that does not trust our records.
        others = 2 * RUNS * recipients
        sink_got = sink.wait_for_messages(others + recorded, within=5) - others

    ours = statistics.median(run.rate for run in runs)
    middle = next(run for run in runs if run.rate == ours)
    theirs = statistics.median(source_rates)
    plain = statistics.median(plain_rates)
    ratio = ours / plain
    every = ", ".join(f"{rate:.0f}" for rate in plain_rates)
    each = ", ".join(f"{run.rate:.0f}" for run in runs)
    all_sent = all(run.sent == recipients for run in runs)
    return [
        Figure(PART, "message on the wire (one notice)", len(message) / 1000, "KB", 1),
        Figure(PART, "connections (smtp-source -s, service default)", connections, ""),
        Figure(
            PART,
            "notices recorded as accepted, each stage",
            min(run.sent for run in runs),
            f"/ {recipients:,}",
        ),
        Figure(PART, "messages counted by the sink / recorded", sink_got, f"/ {recorded:,}"),
        Figure(PART, "smtp-source (median of 3 runs)", theirs, "msg/s"),
        Figure(
            PART,
            "plain aiosmtplib sendmail, same bytes (median of 3)",
            plain,
            "msg/s",
            note=f"runs: {every}",
        ),
        Figure(
            PART,
            "embargo-bot notice stage, start to finish (median of 3)",
            ours,
            "msg/s",
            note=f"runs: {each}",
        ),
        Figure(
            PART,
            "embargo-bot, first to last accepted (that stage)",
            (middle.sent - 1) / middle.accept_span,
            "msg/s",
        ),
        Figure(PART, "embargo-bot stage wall time (that stage)", middle.seconds, "s", 2),
        Figure(
            PART,
            "ratio embargo-bot / plain aiosmtplib",
            100 * ratio,
            "%",
            target=f">= {TARGET_RATIO:.0%}",
            met=ratio >= TARGET_RATIO and all_sent,
        ),
    ]
