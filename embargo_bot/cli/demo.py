"""``embargo-bot demo``: the whole job, end to end, on loopback in under 30 seconds.

A temporary store and key, a stand-in relay (aiosmtpd on 127.0.0.1), the
shipped example lists, and an example pack whose notice goes now and whose
embargo lifts a few seconds later. Nothing can leave this machine: the relay
is on loopback and the example lists use reserved example domains.
"""

from __future__ import annotations

import asyncio
import email
import shutil
import tempfile
from datetime import datetime, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from embargo_bot.app import App, open_app
from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.packs import OPEN_STAGE_STATES, Pack
from embargo_bot.domain.times import describe, utc_now
from embargo_bot.domain.transport import SmtpSecurity
from embargo_bot.lists.catalogue import load_lists
from embargo_bot.officials import actions
from embargo_bot.officials.identity import current_user
from embargo_bot.officials.intake import QueueRequest
from embargo_bot.officials.status import pack_status
from embargo_bot.security.vault import new_key
from embargo_bot.settings import load_settings
from embargo_bot.shipped import shipped_dir

# As in the source story: the comms leads first, UK and devolved counterparts later.
FIRST_WAVE = "police-scotland,nca,copfs,hmrc,comms-subgroup"
SECOND_WAVE = "devolved"

_RELEASE = """\
# Partners unite behind a refreshed strategy on serious organised crime

The Justice Secretary today set out how agencies will **share intelligence
and plan operations together** to reduce the harm organised crime groups cause.

The refreshed strategy commits partners to:

- act on shared threat assessments
- make better use of data across agencies
- support communities to resist exploitation

[Read the strategy](#) on the Scottish Government's website.

> "Organised crime affects every community. Working as one, we can
> disrupt it earlier." (Example quote for the demonstration.)
"""

_SOCIAL = (
    "Today partners published a refreshed strategy to tackle serious organised crime. "
    "Read how agencies will work together: [the strategy](#) #SOC"
)


def _demo_lists_dir() -> Path:
    local = Path("recipients")
    return local if any(local.glob("*.yaml")) else shipped_dir("recipients")


def run_demo(console: Console, *, out_dir: Path | None, lift_in: float) -> int:
    work = Path(tempfile.mkdtemp(prefix="embargo-bot-demo-"))
    try:
        with StandInRelay() as relay:
            settings = load_settings(
                _env_file=None,  # the demo must not pick up a real relay from .env
                smtp_host=relay.host,
                smtp_port=relay.port,
                smtp_security=SmtpSecurity.NONE,
                sender="Organised Crime Unit <ocu@example.org>",
                database=work / "demo.db",
                recipients_dir=_demo_lists_dir(),
                key=new_key(),
                poll_interval=0.2,
                # One person runs the demo, and clearance must come from someone else.
                require_clearance=False,
            )
            console.print(
                f"[bold]embargo-bot demo[/]: stand-in relay on {relay.host}:{relay.port}, "
                f"store in {work}, lists from {settings.recipients_dir}"
            )
            with open_app(settings) as app:
                pack = _queue_example(app, work, lift_in)
                lifts = describe(pack.lift_at, app.settings.zone)
                console.print(f"Queued pack [bold]{pack.id}[/]; the embargo lifts at {lifts}")
                asyncio.run(_run_until_sent(app, pack, console))
                _summarise(app, pack, relay.received, console)
                target = out_dir or Path("demo-output") / pack.id
                _write_messages(relay.received, target)
                console.print(f"Wrote {len(relay.received)} captured messages to {target}/")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _queue_example(app: App, work: Path, lift_in: float) -> Pack:
    pdf = work / "serious-organised-crime-strategy.pdf"
    pdf.write_bytes(
        sample_pdf(
            [
                "Serious Organised Crime Strategy (demonstration copy)",
                "Example content made for the embargo-bot demo.",
            ]
        )
    )
    release = work / "news-release.md"
    release.write_text(_RELEASE, encoding="utf-8")
    social = work / "social.txt"
    social.write_text(_SOCIAL, encoding="utf-8")
    # A whole second, so the lift reads the same in the emails and in the summary.
    lift = (app.clock() + timedelta(seconds=lift_in + 1)).replace(microsecond=0)
    second_wave = app.clock() + (lift - app.clock()) / 2
    request = QueueRequest(
        title="Serious Organised Crime Strategy",
        pdf=pdf,
        release=release,
        social=social,
        url="https://www.gov.scot/isbn/9781802019445",
        lift=lift.isoformat(),
        lists=None,
        notice_at=None,
        waves=(f"{FIRST_WAVE}@now", f"{SECOND_WAVE}@{second_wave.isoformat()}"),
        classification="OFFICIAL",
        reference="9781802019445",
        contact="ocu@example.org",
    )
    pack = actions.queue_pack(app, request, created_by=current_user())
    return pack


async def _run_until_sent(app: App, pack: Pack, console: Console) -> None:
    service = app.service()
    serving = asyncio.create_task(service.run())
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=console) as progress:
        bars: dict[int, TaskID] = {}
        while not serving.done():
            now = utc_now()
            stages = app.store.stages(pack.id)
            for stage in stages:
                if stage.id not in bars:
                    bars[stage.id] = progress.add_task(f"{stage.label}", total=None, note="")
                summary = app.store.stage_summary(stage.id)
                note = (
                    f"due in {(stage.due_at - now).total_seconds():.1f}s"
                    if stage.due_at > now
                    else stage.state.value
                )
                progress.update(
                    bars[stage.id],
                    total=summary.total or None,
                    completed=summary.sent + summary.failed,
                    note=note,
                )
            if all(s.state not in OPEN_STAGE_STATES for s in stages):
                service.stop()
            await asyncio.sleep(0.1)
    await serving


def _summarise(app: App, pack: Pack, received: list[Received], console: Console) -> None:
    lift = pack.lift_at
    zone = app.settings.zone
    table = Table(title="What each partner received, by the relay's clock")
    table.add_column("Recipient", overflow="fold")
    for column in ("Notice at", "Live link at", "After lift"):
        table.add_column(column, no_wrap=True)
    by_rcpt: dict[str, dict[str, datetime]] = {}
    reports = 0
    for item in received:
        stage = email.message_from_bytes(item.data, policy=policy.default)["X-Embargo-Stage"]
        if stage == "report":
            reports += 1  # to the official, not a partner
            continue
        for rcpt in item.rcpt_tos:
            by_rcpt.setdefault(rcpt, {})[str(stage)] = item.received_at
    early = 0
    for rcpt, stages in sorted(by_rcpt.items()):
        notice, live = stages.get("notice"), stages.get("live")
        if live is not None and live < lift:
            early += 1
        table.add_row(
            rcpt,
            _clock(notice, zone),
            _clock(live, zone),
            "-" if live is None else f"+{(live - lift).total_seconds():.3f}s",
        )
    console.print(table)
    status = pack_status(app, pack.id)
    for stage_status in status.stages:
        stage, summary = stage_status.stage, stage_status.summary
        console.print(
            f"{stage.label}: {stage.state} ({summary.sent} sent, {summary.failed} failed)"
        )
    listed = sum(
        len(recipient_list.recipients)
        for key, recipient_list in load_lists(app.settings.recipients_dir).lists.items()
        if key in pack.list_keys
    )
    console.print(
        f"Live emails accepted before the lift at {describe(lift, zone)}: {early}.\n"
        f"The lists name {listed} entries for {len(by_rcpt)} distinct addresses: "
        "each address got one message per stage.\n"
        f"The pack's contact, {pack.contact}, got {reports} delivery report(s), one per stage."
    )


def _clock(moment: datetime | None, zone: ZoneInfo) -> str:
    return "-" if moment is None else f"{moment.astimezone(zone):%H:%M:%S.%f}"[:-3]


def _write_messages(received: list[Received], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for number, item in enumerate(received, start=1):
        message = email.message_from_bytes(item.data, policy=policy.default)
        stage = message["X-Embargo-Stage"]
        rcpt = item.rcpt_tos[0].replace("@", "_at_")
        (target / f"{number:03d}-{stage}-{rcpt}.eml").write_bytes(item.data)
