"""The ``embargo-bot`` command line's arguments, and the help each command gives.

Each command names its function as ``module:function`` in ``cli``, imported
only when that command runs: ``--help`` must not pay for the SMTP client.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embargo_bot.cli.arguments import TIME_FORMS, command, json_flag, notice_flag, pack_argument
from embargo_bot.cli.operations_parser import operators_commands
from embargo_bot.domain.classification import Classification
from embargo_bot.domain.packs import StageKind

MARKINGS = ", ".join(c.value for c in Classification)
PREVIEW_KINDS = [k.value for k in StageKind if k not in ("test", "report", "alert")]


class _Version(argparse.Action):
    """``--version``, read from the installed package only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import version

        sys.stdout.write(f"embargo-bot {version('embargo-bot')}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embargo-bot",
        description="Send an embargoed publication pack to partner agencies, "
        "then the live link the moment the embargo lifts.",
        epilog="`embargo-bot COMMAND --help` describes each command, with an example.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _officials_commands(commands)
    operators_commands(commands)
    return parser


def _officials_commands(commands: Any) -> None:
    queue = command(
        commands,
        "queue",
        "queue a pack for its partners",
        "Check and store a pack: the PDF, the news release and the social post, "
        "encrypted, with the lift time and the waves of notice. Nothing is stored "
        "unless every check passes. The service (`embargo-bot run`) sends each wave at "
        "its time and the live link at the lift. Creates the store if there is none.",
        "embargo-bot queue --title 'Serious Organised Crime Strategy' \\\n"
        "      --pdf strategy.pdf --release release.md --social social.txt \\\n"
        "      --url https://www.gov.example/isbn/9781802019445 --lift '2030-02-23 11:00' \\\n"
        "      --notice nca,copfs@'2030-02-22 16:15' --notice devolved@'2030-02-23 08:50'",
    )
    queue.add_argument("--title", required=True, help="the publication's title, as partners see it")
    queue.add_argument("--pdf", required=True, type=Path, help="the final publication (a PDF)")
    queue.add_argument("--release", required=True, type=Path, help="news release, Markdown, UTF-8")
    queue.add_argument("--social", type=Path, help="suggested social media post, plain text")
    queue.add_argument("--url", required=True, help="the https link the publication will have")
    queue.add_argument("--lift", required=True, help=f"when the embargo lifts: {TIME_FORMS}")
    queue.add_argument("--lists", help="comma-separated list names for a single notice wave")
    queue.add_argument(
        "--notice-at", help="when to send the notice to --lists (default: now)", metavar="WHEN"
    )
    notice_flag(queue, "a notice wave; repeat for several")
    queue.add_argument(
        "--classification",
        default="OFFICIAL-SENSITIVE",
        metavar="{" + ",".join(c.value for c in Classification) + "}",
        help=f"the marking, one of {MARKINGS} (default: OFFICIAL-SENSITIVE); "
        "every list used must be cleared for it",
    )
    queue.add_argument("--reference", help="a reference partners can quote, e.g. the ISBN")
    queue.add_argument("--contact", help="reply-to address (default: the From address)")
    json_flag(queue)
    queue.set_defaults(handler="commands:queue_command")

    approve = command(
        commands,
        "approve",
        "clear a pack to go (not by who queued it)",
        "Clear a pack for sending. With EMBARGO_BOT_REQUIRE_CLEARANCE=true (the default) "
        "nothing of a pack goes until a different person approves it; who you are comes "
        "from the OS account running the command. A wave whose time has passed goes at once.",
        "embargo-bot approve serious-organised-crime-7k2q",
    )
    pack_argument(approve)
    json_flag(approve)
    approve.set_defaults(handler="commands:approve_command")

    reschedule = command(
        commands,
        "reschedule",
        "move the lift; holders are told",
        "Move the embargo's lift. Partners who already hold the notice get an "
        "'embargo changed' email with the old and new times; waves still to go state the "
        "new lift. Refused once the pack is live, or if the new lift is in the past.",
        "embargo-bot reschedule serious-organised-crime-7k2q --lift '2030-02-24 11:00' \\\n"
        "      --notice devolved@'2030-02-24 08:50'",
    )
    pack_argument(reschedule)
    reschedule.add_argument("--lift", required=True, help=f"the new lift time: {TIME_FORMS}")
    notice_flag(
        reschedule,
        "move these lists' waves not yet started (others keep their time); repeatable",
    )
    json_flag(reschedule)
    reschedule.set_defaults(handler="commands:reschedule_command")

    amend = command(
        commands,
        "amend",
        "new version of the material; holders get it",
        "Replace any of the pack's material. The pack gets a new version; everyone who "
        "holds an older one gets an 'updated embargoed pack' email with the new material "
        "and your note. Later waves and the live email use the latest version.",
        "embargo-bot amend serious-organised-crime-7k2q --release release-v2.md \\\n"
        "      --note 'Wording of paragraph 2 agreed with Police Scotland'",
    )
    pack_argument(amend)
    amend.add_argument("--pdf", type=Path, help="a new PDF of the publication")
    amend.add_argument("--release", type=Path, help="a new news release, Markdown, UTF-8")
    amend.add_argument("--social", type=Path, help="a new social media post, plain text")
    amend.add_argument("--title", help="a new title")
    amend.add_argument("--url", help="a new https link for the publication")
    amend.add_argument("--note", required=True, help="what changed, in words for partners")
    json_flag(amend)
    amend.set_defaults(handler="commands:amend_command")

    listing = command(
        commands,
        "list",
        "packs, their state and next send",
        "Every pack in the store: its state, its next send and how long until it.",
        "embargo-bot list --json",
    )
    json_flag(listing)
    listing.set_defaults(handler="commands:list_command")

    show = command(
        commands,
        "show",
        "one pack: its stages, and how each went",
        "One pack: its waves and stages with a summary of each (counts, failures, the "
        "slowest), versions and clearance; --recipients adds every recipient's status, "
        "--json every attempt and the relay's reply.",
        "embargo-bot show serious-organised-crime-7k2q",
    )
    pack_argument(show)
    show.add_argument(
        "--recipients",
        action="store_true",
        help="list every recipient of every stage (long for big lists); --json always does",
    )
    json_flag(show)
    show.set_defaults(handler="commands:show_command")

    cancel = command(
        commands,
        "cancel",
        "withdraw a pack; holders are told",
        "Withdraw a pack: nothing more of it is sent, except a 'withdrawn' email to "
        "everyone who holds the notice, asking them not to publish and to delete it. "
        "Once anyone holds the notice, --reason is required.",
        "embargo-bot cancel serious-organised-crime-7k2q --reason 'Postponed by ministers'",
    )
    pack_argument(cancel)
    cancel.add_argument("--reason", help="why: told to partners who hold the notice")
    json_flag(cancel)
    cancel.set_defaults(handler="commands:cancel_command")

    preview = command(
        commands,
        "preview",
        "write the exact emails as .eml files",
        "See what partners will get: write each stage's message for each recipient as "
        ".eml files, byte for byte what would be sent now, or mail them, marked TEST, "
        "to one address on a valid list. Before the lift a test leaves out the live email.",
        "embargo-bot preview serious-organised-crime-7k2q --out preview/\n"
        "  embargo-bot preview serious-organised-crime-7k2q --send-to comms@police.example",
    )
    pack_argument(preview)
    preview.add_argument(
        "--stage", choices=PREVIEW_KINDS, help="only this kind of email (default: every one)"
    )
    destination = preview.add_mutually_exclusive_group(required=True)
    destination.add_argument("--out", type=Path, help="folder to write the .eml files into")
    destination.add_argument(
        "--send-to", metavar="ADDRESS", help="mail them, marked TEST, to one listed address"
    )
    json_flag(preview)
    preview.set_defaults(handler="commands:preview_command")
