"""What officials' commands do: queue, clear, change, withdraw, preview, look.

Each calls ``officials`` and prints the result; the modules behind a command
are imported when it runs, so ``list`` stays quick to start.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from rich.console import Console

from embargo_bot.app import open_app
from embargo_bot.cli import output
from embargo_bot.cli.environment import command_settings, emit_json
from embargo_bot.domain.packs import StageKind
from embargo_bot.domain.times import describe
from embargo_bot.officials.identity import current_user
from embargo_bot.officials.status import all_statuses, pack_status

if TYPE_CHECKING:
    from embargo_bot.app import App


def queue_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import actions
    from embargo_bot.officials.intake import QueueRequest

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
    with open_app(command_settings(), create=True) as app:
        pack, catalogue = actions.queue_pack_counted(
            app, request, created_by=current_user(), on_warning=_warn
        )
        status = pack_status(app, pack.id, catalogue=catalogue)
        warning = actions.live_warning(app, pack, catalogue)
        if warning:
            _warn(warning)
        if args.json:
            emit_json(console, output.status_json(status, now=app.clock(), with_deliveries=False))
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
        emit_json(console, output.status_json(status, now=app.clock(), with_deliveries=False))
    else:
        console.print(message)
        console.print(output.timetable(status, zone=app.settings.zone))
    return 0


def approve_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import actions

    with open_app(command_settings(), create=False) as app:
        pack = actions.approve_pack(app, args.pack, approver=current_user())
        when = describe(pack.cleared_at or app.clock(), app.settings.zone)
        return _show_change(args, console, app, f"Cleared {pack.id} ({pack.cleared_by}, {when}).")


def reschedule_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import changes

    with open_app(command_settings(), create=False) as app:
        pack = changes.reschedule_pack(
            app, args.pack, lift=args.lift, waves=tuple(args.notice), by=current_user()
        )
        lift = describe(pack.lift_at, app.settings.zone)
        message = f"Rescheduled {pack.id}: the embargo now lifts at {lift}."
        if any(s.kind is StageKind.CHANGED and s.state.value == "scheduled"
               for s in app.store.stages(pack.id)):  # fmt: skip
            message += " Partners who hold the notice are being told."
        return _show_change(args, console, app, message)


def amend_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import changes
    from embargo_bot.officials.intake import AmendRequest

    request = AmendRequest(
        pdf=args.pdf,
        release=args.release,
        social=args.social,
        title=args.title,
        url=args.url,
        note=args.note,
    )
    with open_app(command_settings(), create=False) as app:
        pack = changes.amend_pack(app, args.pack, request, by=current_user(), on_warning=_warn)
        message = f"Amended {pack.id}: now version {pack.version}."
        return _show_change(args, console, app, message)


def list_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(command_settings(), create=False) as app:
        statuses, now = all_statuses(app), app.clock()
        if args.json:
            emit_json(
                console, [output.status_json(s, now=now, with_deliveries=False) for s in statuses]
            )
        elif statuses:
            console.print(output.packs_table(statuses, now=now, zone=app.settings.zone))
        else:
            console.print("No packs queued. `embargo-bot queue --help` says how.")
    return 0


def show_command(args: argparse.Namespace, console: Console) -> int:
    with open_app(command_settings(), create=False) as app:
        # Every attempt only for --json: the table does not show them.
        status, now = pack_status(app, args.pack, with_attempts=args.json), app.clock()
        if args.json:
            emit_json(console, output.status_json(status, now=now, with_deliveries=True))
        else:
            view = output.status_view(
                status, now=now, zone=app.settings.zone, recipients=args.recipients
            )
            console.print(view)
    return 0


def cancel_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import actions

    with open_app(command_settings(), create=False) as app:
        pack = actions.cancel_pack(app, args.pack, reason=args.reason, by=current_user())
        told = any(s.kind is StageKind.WITHDRAWN for s in app.store.stages(pack.id))
        if args.json:
            emit_json(console, output.pack_json(pack))
        else:
            console.print(f"Withdrew {pack.id}: nothing more of it will be sent.")
            if told:
                console.print("Partners who hold the notice are being told not to publish it.")
    return 0


def preview_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import previews

    kinds = [StageKind(args.stage)] if args.stage else list(StageKind)
    with open_app(command_settings(), create=False) as app:
        if args.send_to:
            delivery = asyncio.run(
                previews.send_test(app, args.pack, args.send_to, kinds, by=current_user())
            )
            if args.json:
                emit_json(console, output.delivery_json(delivery))
            else:
                console.print(f"Test to {delivery.email}: {delivery.state} ({delivery.reply})")
            return 0 if delivery.state.value == "sent" else 1
        written = previews.preview(app, args.pack, kinds, args.out)
    if args.json:
        emit_json(
            console,
            [{"path": str(f.path), "recipient": f.recipient, "stage": f.stage} for f in written],
        )
    else:
        for item in written:
            console.print(f"{item.path}  ({item.stage}, {item.recipient})", highlight=False)
        console.print(f"Wrote {len(written)} message(s) to {args.out}")
    return 0


def _warn(warning: str) -> None:
    """Allowed, but worth a second look: on stderr, so --json output stays one document."""
    sys.stderr.write(f"embargo-bot: warning: {warning}\n")
