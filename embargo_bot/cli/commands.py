"""What each ``embargo-bot`` command does: call the actions, print the results.

Every error embargo-bot raises on purpose becomes one clear message on stderr
and a non-zero exit (in ``cli.main``); ``--json`` puts exactly one JSON
document on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

from rich.console import Console

from embargo_bot.app import App, open_app
from embargo_bot.cli import output
from embargo_bot.domain.errors import AuditError, ListError
from embargo_bot.domain.packs import StageKind
from embargo_bot.domain.times import describe
from embargo_bot.lists.catalogue import load_lists
from embargo_bot.officials import actions, changes, previews, rekey
from embargo_bot.officials.intake import AmendRequest, QueueRequest
from embargo_bot.officials.status import all_statuses, pack_status
from embargo_bot.security import audit
from embargo_bot.security.vault import new_key
from embargo_bot.settings import Settings, load_settings

GROUP_UMASK = 0o007  # with EMBARGO_BOT_SHARED_GROUP: owner and group, nobody else


def _settings() -> Settings:
    settings = load_settings()
    if settings.shared_group is not None:
        os.umask(GROUP_UMASK)
    return settings


def _emit_json(console: Console, document: Any) -> None:
    console.file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def lists_check_command(args: argparse.Namespace, console: Console) -> int:
    catalogue = load_lists(_settings().recipients_dir)
    if args.json:
        _emit_json(
            console,
            {
                "directory": str(catalogue.directory),
                "lists": {
                    key: {
                        "name": item.name,
                        "max_classification": item.max_classification.value,
                        "allowed_domains": list(item.allowed_domains),
                        "recipients": len(item.recipients),
                    }
                    for key, item in catalogue.lists.items()
                },
                "problems": [str(problem) for problem in catalogue.problems],
            },
        )
    else:
        console.print(output.catalogue_table(catalogue))
    if catalogue.problems:
        raise ListError(
            f"{len(catalogue.problems)} problem(s) in the recipient lists; "
            "fix each line named below, then run `embargo-bot lists check` again",
            [str(problem) for problem in catalogue.problems],
        )
    if not args.json:
        console.print(f"All {len(catalogue.lists)} lists are valid.")
    return 0


def queue_command(args: argparse.Namespace, console: Console) -> int:
    request = QueueRequest(
        title=args.title,
        pdf=args.pdf,
        release=args.release,
        social=args.social,
        url=args.url,
        lift=args.lift,
        lists=args.lists,
        notice_at=args.notice_at,
        classification=args.classification,
        reference=args.reference,
        contact=args.contact,
        waves=tuple(args.notice),
    )
    with open_app(_settings()) as app:
        pack = actions.queue_pack(app, request, created_by=actions.current_user())
        status = pack_status(app, pack.id)
        warning = actions.live_warning(app, pack)
        if warning:
            sys.stderr.write(f"embargo-bot: warning: {warning}\n")
        if args.json:
            _emit_json(console, output.status_json(status, now=app.clock(), with_deliveries=False))
            return 0
        console.print(f"Queued [bold]{pack.id}[/]: {pack.title}")
        console.print(output.timetable(status, zone=app.settings.zone))
        if pack.awaiting_clearance:
            console.print(
                "Nothing goes until someone else clears it: `embargo-bot approve "
                f"{pack.id}`. Check it first with `embargo-bot preview {pack.id} --out DIR`."
            )
        console.print("`embargo-bot run` must be running to send it.")
    return 0


def _show_change(args: argparse.Namespace, console: Console, app: App, message: str) -> int:
    status = pack_status(app, args.pack)
    if args.json:
        _emit_json(console, output.status_json(status, now=app.clock(), with_deliveries=False))
    else:
        console.print(message)
        console.print(output.timetable(status, zone=app.settings.zone))
    return 0


def approve_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        pack = actions.approve_pack(app, args.pack, approver=actions.current_user())
        when = describe(pack.cleared_at or app.clock(), app.settings.zone)
        return _show_change(args, console, app, f"Cleared {pack.id} ({pack.cleared_by}, {when}).")


def reschedule_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        pack = changes.reschedule_pack(
            app, args.pack, lift=args.lift, waves=tuple(args.notice), by=actions.current_user()
        )
        lift = describe(pack.lift_at, app.settings.zone)
        message = f"Rescheduled {pack.id}: the embargo now lifts at {lift}."
        if any(s.kind is StageKind.CHANGED and s.state.value == "scheduled"
               for s in app.store.stages(pack.id)):  # fmt: skip
            message += " Partners who hold the notice are being told."
        return _show_change(args, console, app, message)


def amend_command(args: argparse.Namespace, console: Console) -> int:
    request = AmendRequest(
        pdf=args.pdf,
        release=args.release,
        social=args.social,
        title=args.title,
        url=args.url,
        note=args.note,
    )
    with open_app(_settings()) as app:
        pack = changes.amend_pack(app, args.pack, request, by=actions.current_user())
        message = f"Amended {pack.id}: now version {pack.version}."
        return _show_change(args, console, app, message)


def list_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        statuses, now = all_statuses(app), app.clock()
        if args.json:
            _emit_json(
                console, [output.status_json(s, now=now, with_deliveries=False) for s in statuses]
            )
        elif statuses:
            console.print(output.packs_table(statuses, now=now, zone=app.settings.zone))
        else:
            console.print("No packs queued. `embargo-bot queue --help` says how.")
    return 0


def show_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        status, now = pack_status(app, args.pack), app.clock()
        if args.json:
            _emit_json(console, output.status_json(status, now=now, with_deliveries=True))
        else:
            console.print(output.status_view(status, now=now, zone=app.settings.zone))
    return 0


def cancel_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        pack = actions.cancel_pack(app, args.pack, reason=args.reason, by=actions.current_user())
        told = any(s.kind is StageKind.WITHDRAWN for s in app.store.stages(pack.id))
        if args.json:
            _emit_json(console, output.pack_json(pack))
        else:
            console.print(f"Withdrew {pack.id}: nothing more of it will be sent.")
            if told:
                console.print("Partners who hold the notice are being told not to publish it.")
    return 0


def preview_command(args: argparse.Namespace, console: Console) -> int:
    kinds = [StageKind(args.stage)] if args.stage else list(StageKind)
    with open_app(_settings()) as app:
        if args.send_to:
            delivery = asyncio.run(
                previews.send_test(app, args.pack, args.send_to, kinds, by=actions.current_user())
            )
            if args.json:
                _emit_json(console, output.delivery_json(delivery))
            else:
                console.print(f"Test to {delivery.email}: {delivery.state} ({delivery.reply})")
            return 0 if delivery.state.value == "sent" else 1
        written = previews.preview(app, args.pack, kinds, args.out)
    if args.json:
        _emit_json(
            console,
            [{"path": str(f.path), "recipient": f.recipient, "stage": f.stage} for f in written],
        )
    else:
        for item in written:
            console.print(f"{item.path}  ({item.stage}, {item.recipient})", highlight=False)
        console.print(f"Wrote {len(written)} message(s) to {args.out}")
    return 0


def run_command(args: argparse.Namespace, console: Console) -> int:
    del args, console
    configure_logging()
    settings = _settings()
    if settings.sends_in_clear_over_a_network:
        logging.getLogger("embargo_bot").warning(
            "INSECURE: EMBARGO_BOT_SMTP_ALLOW_PLAINTEXT is set: embargoed material goes to "
            "%s in clear, readable by anyone on the network between",
            settings.smtp_host,
        )
    with open_app(settings) as app:
        asyncio.run(serve(app))
    return 0


async def serve(app: App) -> None:
    """Run the service until SIGINT or SIGTERM, then stop after the messages in flight."""
    service = app.service()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, service.stop)
    try:
        await service.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler's per-job lines say nothing the service's own log does not.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def demo_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.cli.demo import run_demo  # the demo pulls in aiosmtpd; keep it off other paths

    return run_demo(console, out_dir=args.out, lift_in=args.lift_in)


def audit_verify_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        entries = app.store.audit_entries()
        problems = audit.verify(entries, app.audit_key, app.store.audit_head())
    if args.json:
        _emit_json(console, {"entries": len(entries), "intact": not problems, "problems": problems})
    elif not problems:
        console.print(f"The audit log is intact: {len(entries)} entries, chain and head verified.")
    if problems:
        raise AuditError(
            f"the audit log has been tampered with ({len(problems)} problem(s))", problems
        )
    return 0


def audit_export_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        entries = app.store.audit_entries()
        if args.pack:
            app.store.get_pack(args.pack)  # a clear error for a pack that does not exist
            entries = [e for e in entries if e.pack_id == args.pack]
    console.file.write(audit.to_csv(entries) if args.format == "csv" else audit.to_json(entries))
    return 0


def rekey_command(args: argparse.Namespace, console: Console) -> int:
    del args
    with open_app(_settings()) as app:
        result = rekey.rekey(app, by=actions.current_user())
    console.print(
        f"Re-encrypted {result.rotated} version(s) under the new key "
        f"({result.already_current} already were). Every stored item now needs only the "
        "first key: remove the old one from EMBARGO_BOT_KEY once every process has restarted."
    )
    return 0


def keygen_command(args: argparse.Namespace, console: Console) -> int:
    del args
    console.file.write(f"EMBARGO_BOT_KEY={new_key()}\n")
    return 0
