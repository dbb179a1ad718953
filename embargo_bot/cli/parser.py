"""The ``embargo-bot`` command line's arguments.

Each command names its function as ``module:function`` in ``cli``, imported
only when that command runs: ``--help`` must not pay for the SMTP client.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from embargo_bot.domain.packs import StageKind


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
    check.set_defaults(handler="operations:lists_check_command")

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
    queue.set_defaults(handler="commands:queue_command")

    approve = commands.add_parser("approve", help="clear a pack to go (not by who queued it)")
    approve.add_argument("pack")
    _json_flag(approve)
    approve.set_defaults(handler="commands:approve_command")

    reschedule = commands.add_parser("reschedule", help="move the lift; holders are told")
    reschedule.add_argument("pack")
    reschedule.add_argument("--lift", required=True, help="the new lift time")
    _notice_flag(reschedule, "replace the notice waves not yet started; repeatable")
    _json_flag(reschedule)
    reschedule.set_defaults(handler="commands:reschedule_command")

    amend = commands.add_parser("amend", help="new version of the material; holders get it")
    amend.add_argument("pack")
    amend.add_argument("--pdf", type=Path)
    amend.add_argument("--release", type=Path)
    amend.add_argument("--social", type=Path)
    amend.add_argument("--title")
    amend.add_argument("--url")
    amend.add_argument("--note", required=True, help="what changed, for partners")
    _json_flag(amend)
    amend.set_defaults(handler="commands:amend_command")

    listing = commands.add_parser("list", help="packs, their state and next send")
    _json_flag(listing)
    listing.set_defaults(handler="commands:list_command")

    show = commands.add_parser("show", help="one pack: its stages, and how each went")
    show.add_argument("pack")
    show.add_argument(
        "--recipients",
        action="store_true",
        help="list every recipient of every stage (long for big lists); --json always does",
    )
    _json_flag(show)
    show.set_defaults(handler="commands:show_command")

    cancel = commands.add_parser("cancel", help="withdraw a pack; holders are told")
    cancel.add_argument("pack")
    cancel.add_argument("--reason", help="why: told to partners who hold the notice")
    _json_flag(cancel)
    cancel.set_defaults(handler="commands:cancel_command")

    preview = commands.add_parser("preview", help="write the exact emails as .eml files")
    preview.add_argument("pack")
    preview.add_argument(
        "--stage", choices=[k.value for k in StageKind if k not in ("test", "report", "alert")]
    )
    destination = preview.add_mutually_exclusive_group(required=True)
    destination.add_argument("--out", type=Path, help="folder to write the .eml files into")
    destination.add_argument(
        "--send-to", metavar="ADDRESS", help="mail them, marked TEST, to one listed address"
    )
    _json_flag(preview)
    preview.set_defaults(handler="commands:preview_command")

    run = commands.add_parser("run", help="run the sending service")
    run.set_defaults(handler="operations:run_command")

    demo = commands.add_parser("demo", help="a self-contained demonstration on loopback")
    demo.add_argument("--out", type=Path, help="folder for the captured .eml files")
    demo.add_argument(
        "--lift-in", type=float, default=8.0, help="seconds from now to the demo's lift"
    )
    demo.set_defaults(handler="operations:demo_command")

    audit = commands.add_parser("audit", help="check or export the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="check no entry was edited, removed or moved")
    _json_flag(verify)
    verify.set_defaults(handler="operations:audit_verify_command")
    export = audit_commands.add_parser("export", help="write the log, e.g. for an FOI request")
    export.add_argument("--pack", help="only this pack's entries")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.set_defaults(handler="operations:audit_export_command")

    rekey = commands.add_parser(
        "rekey", help="re-encrypt everything stored under the first key in EMBARGO_BOT_KEY"
    )
    rekey.set_defaults(handler="operations:rekey_command")

    keygen = commands.add_parser("keygen", help="print a new at-rest key for .env")
    keygen.set_defaults(handler="operations:keygen_command")
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
