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
from datetime import timedelta
from pathlib import Path

from errors import BenchError
from figures import Figure
from inprocess import serve_until_closed, stage_of
from plain_client import plain_rate
from postfix_tools import SmtpSink, smtp_source
from workspace import PARTNER_DOMAIN, Workspace, workspace

from embargo_bot.app import open_app
from embargo_bot.domain.packs import DeliveryState, StageKind
from embargo_bot.domain.times import utc_now

PART = "notice throughput"
TARGET_RATIO = 0.90  # of plain aiosmtplib
SOURCE_RUNS = 3  # each takes about a second: the median of three steadies it


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


def measure(*, recipients: int = 1000, pdf_size: int = 100_000) -> list[Figure]:
    with SmtpSink() as sink, workspace(sink.port, recipients=recipients) as space:
        settings = space.settings()
        connections = settings.smtp_connections
        with open_app(settings) as app:
            pack = space.queue(app, pdf_size=pdf_size, lift_at=utc_now() + timedelta(hours=1))
            message = notice_message(space, pack.id)
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
                for _ in range(SOURCE_RUNS)
            ]
            plain_rates = [
                plain_rate(
                    sink.port,
                    message=message,
                    count=recipients,
                    connections=connections,
                    sender=settings.sender_address,
                )
                for _ in range(SOURCE_RUNS)
            ]
            sink_before = sink.wait_for_messages(2 * SOURCE_RUNS * recipients, within=5)

            serve_until_closed(app, pack.id, StageKind.NOTICE, within=240)
            stage = stage_of(app, pack.id, StageKind.NOTICE)
            deliveries = app.store.deliveries(pack.id, state=DeliveryState.SENT)

        sent = [d for d in deliveries if d.kind is StageKind.NOTICE]
        # Every message the service handed over (a stage report may follow the
        # notices), as the sink counted them: a check that does not trust our records.
        sink_got = sink.wait_for_messages(sink_before + len(deliveries), within=5) - sink_before
    if not sent or stage.started_at is None or stage.finished_at is None:
        raise BenchError(f"the notice stage sent nothing ({stage.state}: {stage.detail})")

    stage_seconds = (stage.finished_at - stage.started_at).total_seconds()
    accepted = sorted(d.updated_at for d in sent)
    accept_span = (accepted[-1] - accepted[0]).total_seconds()
    ours = len(sent) / stage_seconds
    theirs = statistics.median(source_rates)
    plain = statistics.median(plain_rates)
    ratio = ours / plain
    return [
        Figure(PART, "message on the wire (one notice)", len(message) / 1000, "KB", 1),
        Figure(PART, "connections (smtp-source -s, service default)", connections, ""),
        Figure(PART, "notices recorded as accepted / sent to", len(sent), f"/ {recipients:,}"),
        Figure(PART, "messages counted by the sink / recorded", sink_got, f"/ {len(deliveries):,}"),
        Figure(PART, "smtp-source (median of 3 runs)", theirs, "msg/s"),
        Figure(PART, "plain aiosmtplib sendmail, same bytes (median of 3)", plain, "msg/s"),
        Figure(PART, "embargo-bot notice stage, start to finish", ours, "msg/s"),
        Figure(PART, "embargo-bot, first to last accepted", (len(sent) - 1) / accept_span, "msg/s"),
        Figure(PART, "embargo-bot stage wall time", stage_seconds, "s", 2),
        Figure(
            PART,
            "ratio embargo-bot / plain aiosmtplib",
            100 * ratio,
            "%",
            target=f">= {TARGET_RATIO:.0%}",
            met=ratio >= TARGET_RATIO and len(sent) == recipients,
        ),
    ]
