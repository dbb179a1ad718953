"""The ``embargo-bot`` command: parses arguments, calls actions, prints results.

Every error embargo-bot raises on purpose becomes one clear message on stderr
and a non-zero exit; ``--json`` puts exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from embargo_bot import actions, audit, changes, keys, previews, views
from embargo_bot.app import App, open_app
from embargo_bot.errors import AuditError, EmbargoBotError, ListError
from embargo_bot.intake import AmendRequest, QueueRequest
from embargo_bot.packs import StageKind
from embargo_bot.recipients import load_lists
from embargo_bot.settings import Settings, load_settings
from embargo_bot.times import describe
from embargo_bot.vault import new_key

Handler = Callable[[argparse.Namespace, Console], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embargo-bot",
        description="Send an embargoed publication pack to partner agencies, "
        "then the live link the moment the embargo lifts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lists = commands.add_parser("lists", help="check the recipient lists")
    lists_commands = lists.add_subparsers(dest="lists_command", required=True, metavar="ACTION")
    check = lists_commands.add_parser("check", help="validate every list in the lists folder")
    _json_flag(check)
    check.set_defaults(handler=_lists_check)

    queue = commands.add_parser("queue", help="queue a pack for its partners")
    queue.add_argument("--title", required=True)
    queue.add_argument("--pdf", required=True, type=Path, help="the final publication")
    queue.add_argument("--release", required=True, type=Path, help="news release, Markdown")
    queue.add_argument("--social", type=Path, help="suggested social media post, plain text")
    queue.add_argument("--url", required=True, help="the link the publication will have")
    queue.add_argument(
        "--lift", required=True, help="when the embargo lifts: 'YYYY-MM-DD HH:MM' or ISO 8601"
    )
    queue.add_argument("--lists", help="comma-separated list names for the notice")
    queue.add_argument("--notice-at", help="when to send the notice to --lists (default: now)")
    _notice_flag(queue, "a notice wave; repeat for several")
    queue.add_argument("--classification", default="OFFICIAL-SENSITIVE")
    queue.add_argument("--reference", help="e.g. the ISBN")
    queue.add_argument("--contact", help="reply-to address (default: the From address)")
    _json_flag(queue)
    queue.set_defaults(handler=_queue)

    approve = commands.add_parser("approve", help="clear a pack to go (not by who queued it)")
    approve.add_argument("pack")
    _json_flag(approve)
    approve.set_defaults(handler=_approve)

    reschedule = commands.add_parser("reschedule", help="move the lift; holders are told")
    reschedule.add_argument("pack")
    reschedule.add_argument("--lift", required=True, help="the new lift time")
    _notice_flag(reschedule, "replace the notice waves not yet started; repeatable")
    _json_flag(reschedule)
    reschedule.set_defaults(handler=_reschedule)

    amend = commands.add_parser("amend", help="new version of the material; holders get it")
    amend.add_argument("pack")
    amend.add_argument("--pdf", type=Path)
    amend.add_argument("--release", type=Path)
    amend.add_argument("--social", type=Path)
    amend.add_argument("--title")
    amend.add_argument("--url")
    amend.add_argument("--note", required=True, help="what changed, for partners")
    _json_flag(amend)
    amend.set_defaults(handler=_amend)

    listing = commands.add_parser("list", help="packs, their state and next send")
    _json_flag(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one pack with every recipient's status")
    show.add_argument("pack")
    _json_flag(show)
    show.set_defaults(handler=_show)

    cancel = commands.add_parser("cancel", help="withdraw a pack; holders are told")
    cancel.add_argument("pack")
    cancel.add_argument("--reason", help="why: told to partners who hold the notice")
    _json_flag(cancel)
    cancel.set_defaults(handler=_cancel)

    preview = commands.add_parser("preview", help="write the exact emails as .eml files")
    preview.add_argument("pack")
    preview.add_argument(
        "--stage", choices=[k.value for k in StageKind if k not in ("test", "report")]
    )
    destination = preview.add_mutually_exclusive_group(required=True)
    destination.add_argument("--out", type=Path, help="folder to write the .eml files into")
    destination.add_argument(
        "--send-to", metavar="ADDRESS", help="mail them, marked TEST, to one listed address"
    )
    _json_flag(preview)
    preview.set_defaults(handler=_preview)

    run = commands.add_parser("run", help="run the sending service")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="a self-contained demonstration on loopback")
    demo.add_argument("--out", type=Path, help="folder for the captured .eml files")
    demo.add_argument(
        "--lift-in", type=float, default=8.0, help="seconds from now to the demo's lift"
    )
    demo.set_defaults(handler=_demo)

    audit = commands.add_parser("audit", help="check or export the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="check no entry was edited, removed or moved")
    _json_flag(verify)
    verify.set_defaults(handler=_audit_verify)
    export = audit_commands.add_parser("export", help="write the log, e.g. for an FOI request")
    export.add_argument("--pack", help="only this pack's entries")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.set_defaults(handler=_audit_export)

    rekey = commands.add_parser(
        "rekey", help="re-encrypt everything stored under the first key in EMBARGO_BOT_KEY"
    )
    rekey.set_defaults(handler=_rekey)

    keygen = commands.add_parser("keygen", help="print a new at-rest key for .env")
    keygen.set_defaults(handler=_keygen)
    return parser


def _notice_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--notice",
        action="append",
        default=[],
        metavar="LISTS@WHEN",
        help=f"{help_text}: e.g. police-scotland,copfs@'2022-02-22 16:15'",
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    handler: Handler = args.handler
    # Everything this process writes (the store, previews, demo output) holds or
    # may hold embargoed material: no access for other users, ever.
    previous_umask = os.umask(PRIVATE_UMASK)
    try:
        return handler(args, console)
    except EmbargoBotError as exc:
        # Plain text, never wrapped: each "file:line: message" stays one line to grep.
        sys.stderr.write(f"embargo-bot: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        os.umask(previous_umask)


PRIVATE_UMASK = 0o077
GROUP_UMASK = 0o007  # with EMBARGO_BOT_SHARED_GROUP: owner and group, nobody else


def _settings() -> Settings:
    settings = load_settings()
    if settings.shared_group is not None:
        os.umask(GROUP_UMASK)
    return settings


def _emit_json(console: Console, document: Any) -> None:
    console.file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _lists_check(args: argparse.Namespace, console: Console) -> int:
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
        console.print(views.catalogue_table(catalogue))
    if catalogue.problems:
        raise ListError(
            f"{len(catalogue.problems)} problem(s) in the recipient lists; "
            "fix each line named below, then run `embargo-bot lists check` again",
            [str(problem) for problem in catalogue.problems],
        )
    if not args.json:
        console.print(f"All {len(catalogue.lists)} lists are valid.")
    return 0


def _queue(args: argparse.Namespace, console: Console) -> int:
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
        status = actions.pack_status(app, pack.id)
        warning = actions.live_warning(app, pack)
        if warning:
            sys.stderr.write(f"embargo-bot: warning: {warning}\n")
        if args.json:
            _emit_json(console, views.status_json(status, now=app.clock(), with_deliveries=False))
            return 0
        console.print(f"Queued [bold]{pack.id}[/]: {pack.title}")
        console.print(views.timetable(status, zone=app.settings.zone))
        if pack.awaiting_clearance:
            console.print(
                "Nothing goes until someone else clears it: `embargo-bot approve "
                f"{pack.id}`. Check it first with `embargo-bot preview {pack.id} --out DIR`."
            )
        console.print("`embargo-bot run` must be running to send it.")
    return 0


def _show_change(args: argparse.Namespace, console: Console, app: App, message: str) -> int:
    status = actions.pack_status(app, args.pack)
    if args.json:
        _emit_json(console, views.status_json(status, now=app.clock(), with_deliveries=False))
    else:
        console.print(message)
        console.print(views.timetable(status, zone=app.settings.zone))
    return 0


def _approve(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        pack = actions.approve_pack(app, args.pack, approver=actions.current_user())
        when = describe(pack.cleared_at or app.clock(), app.settings.zone)
        return _show_change(args, console, app, f"Cleared {pack.id} ({pack.cleared_by}, {when}).")


def _reschedule(args: argparse.Namespace, console: Console) -> int:
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


def _amend(args: argparse.Namespace, console: Console) -> int:
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


def _list(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        statuses, now = actions.all_statuses(app), app.clock()
        if args.json:
            _emit_json(
                console, [views.status_json(s, now=now, with_deliveries=False) for s in statuses]
            )
        elif statuses:
            console.print(views.packs_table(statuses, now=now, zone=app.settings.zone))
        else:
            console.print("No packs queued. `embargo-bot queue --help` says how.")
    return 0


def _show(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        status, now = actions.pack_status(app, args.pack), app.clock()
        if args.json:
            _emit_json(console, views.status_json(status, now=now, with_deliveries=True))
        else:
            console.print(views.status_view(status, now=now, zone=app.settings.zone))
    return 0


def _cancel(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        pack = actions.cancel_pack(app, args.pack, reason=args.reason, by=actions.current_user())
        told = any(s.kind is StageKind.WITHDRAWN for s in app.store.stages(pack.id))
        if args.json:
            _emit_json(console, views.pack_json(pack))
        else:
            console.print(f"Withdrew {pack.id}: nothing more of it will be sent.")
            if told:
                console.print("Partners who hold the notice are being told not to publish it.")
    return 0


def _preview(args: argparse.Namespace, console: Console) -> int:
    kinds = [StageKind(args.stage)] if args.stage else list(StageKind)
    with open_app(_settings()) as app:
        if args.send_to:
            delivery = asyncio.run(
                previews.send_test(app, args.pack, args.send_to, kinds, by=actions.current_user())
            )
            if args.json:
                _emit_json(console, views.delivery_json(delivery))
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


def _run(args: argparse.Namespace, console: Console) -> int:
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


def _demo(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.demo import run_demo  # the demo pulls in aiosmtpd; keep it off other paths

    return run_demo(console, out_dir=args.out, lift_in=args.lift_in)


def _audit_verify(args: argparse.Namespace, console: Console) -> int:
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


def _audit_export(args: argparse.Namespace, console: Console) -> int:
    with open_app(_settings()) as app:
        entries = app.store.audit_entries()
        if args.pack:
            app.store.get_pack(args.pack)  # a clear error for a pack that does not exist
            entries = [e for e in entries if e.pack_id == args.pack]
    console.file.write(audit.to_csv(entries) if args.format == "csv" else audit.to_json(entries))
    return 0


def _rekey(args: argparse.Namespace, console: Console) -> int:
    del args
    with open_app(_settings()) as app:
        result = keys.rekey(app, by=actions.current_user())
    console.print(
        f"Re-encrypted {result.rotated} version(s) under the new key "
        f"({result.already_current} already were). Every stored item now needs only the "
        "first key: remove the old one from EMBARGO_BOT_KEY once every process has restarted."
    )
    return 0


def _keygen(args: argparse.Namespace, console: Console) -> int:
    del args
    console.file.write(f"EMBARGO_BOT_KEY={new_key()}\n")
    return 0
