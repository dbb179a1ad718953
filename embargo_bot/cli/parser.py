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

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.packs import StageKind

MARKINGS = ", ".join(c.value for c in Classification)
PREVIEW_KINDS = [k.value for k in StageKind if k not in ("test", "report")]

RUN_SETTINGS = """\
settings that matter (environment or .env in the working folder):
  EMBARGO_BOT_SMTP_HOST, _SMTP_PORT   the mail relay (default localhost:587)
  EMBARGO_BOT_SMTP_SECURITY           starttls (default), tls, or none (loopback only)
  EMBARGO_BOT_SMTP_USERNAME, _PASSWORD  the relay login, if it needs one
  EMBARGO_BOT_SMTP_CA_FILE            a CA bundle for a relay with a private CA
  EMBARGO_BOT_FROM                    the From of every message
  EMBARGO_BOT_KEY                     the at-rest key (`embargo-bot keygen`)
  EMBARGO_BOT_DATABASE                the store (default ./embargo-bot.db)
  EMBARGO_BOT_RECIPIENTS_DIR          the lists folder (default ./recipients)
  EMBARGO_BOT_SMTP_CONNECTIONS, _SMTP_RATE  how hard to push the relay
  EMBARGO_BOT_RETRY_FOR               how long temporary failures are retried (default 4h)
  EMBARGO_BOT_LOG_FORMAT              text (default) or json, one object per line
`embargo-bot doctor` checks them all before a first start."""


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
    _operators_commands(commands)
    return parser


def _officials_commands(commands: Any) -> None:
    queue = _command(
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
    queue.add_argument("--lift", required=True, help=f"when the embargo lifts: {_TIME_FORMS}")
    queue.add_argument("--lists", help="comma-separated list names for a single notice wave")
    queue.add_argument(
        "--notice-at", help="when to send the notice to --lists (default: now)", metavar="WHEN"
    )
    _notice_flag(queue, "a notice wave; repeat for several")
    queue.add_argument(
        "--classification",
        default="OFFICIAL-SENSITIVE",
        metavar="{" + ",".join(c.value for c in Classification) + "}",
        help=f"the marking, one of {MARKINGS} (default: OFFICIAL-SENSITIVE); "
        "every list used must be cleared for it",
    )
    queue.add_argument("--reference", help="a reference partners can quote, e.g. the ISBN")
    queue.add_argument("--contact", help="reply-to address (default: the From address)")
    _json_flag(queue)
    queue.set_defaults(handler="commands:queue_command")

    approve = _command(
        commands,
        "approve",
        "clear a pack to go (not by who queued it)",
        "Clear a pack for sending. With EMBARGO_BOT_REQUIRE_CLEARANCE=true (the default) "
        "nothing of a pack goes until a different person approves it; who you are comes "
        "from the OS account running the command. A wave whose time has passed goes at once.",
        "embargo-bot approve serious-organised-crime-7k2q",
    )
    _pack_argument(approve)
    _json_flag(approve)
    approve.set_defaults(handler="commands:approve_command")

    reschedule = _command(
        commands,
        "reschedule",
        "move the lift; holders are told",
        "Move the embargo's lift. Partners who already hold the notice get an "
        "'embargo changed' email with the old and new times; waves still to go state the "
        "new lift. Refused once the pack is live, or if the new lift is in the past.",
        "embargo-bot reschedule serious-organised-crime-7k2q --lift '2030-02-24 11:00' \\\n"
        "      --notice devolved@'2030-02-24 08:50'",
    )
    _pack_argument(reschedule)
    reschedule.add_argument("--lift", required=True, help=f"the new lift time: {_TIME_FORMS}")
    _notice_flag(
        reschedule,
        "move these lists' waves not yet started (others keep their time); repeatable",
    )
    _json_flag(reschedule)
    reschedule.set_defaults(handler="commands:reschedule_command")

    amend = _command(
        commands,
        "amend",
        "new version of the material; holders get it",
        "Replace any of the pack's material. The pack gets a new version; everyone who "
        "holds an older one gets an 'updated embargoed pack' email with the new material "
        "and your note. Later waves and the live email use the latest version.",
        "embargo-bot amend serious-organised-crime-7k2q --release release-v2.md \\\n"
        "      --note 'Wording of paragraph 2 agreed with Police Scotland'",
    )
    _pack_argument(amend)
    amend.add_argument("--pdf", type=Path, help="a new PDF of the publication")
    amend.add_argument("--release", type=Path, help="a new news release, Markdown, UTF-8")
    amend.add_argument("--social", type=Path, help="a new social media post, plain text")
    amend.add_argument("--title", help="a new title")
    amend.add_argument("--url", help="a new https link for the publication")
    amend.add_argument("--note", required=True, help="what changed, in words for partners")
    _json_flag(amend)
    amend.set_defaults(handler="commands:amend_command")

    listing = _command(
        commands,
        "list",
        "packs, their state and next send",
        "Every pack in the store: its state, its next send and how long until it.",
        "embargo-bot list --json",
    )
    _json_flag(listing)
    listing.set_defaults(handler="commands:list_command")

    show = _command(
        commands,
        "show",
        "one pack with every recipient's status",
        "One pack in full: its waves and stages, versions, clearance, and every "
        "recipient's status with each attempt and the relay's reply.",
        "embargo-bot show serious-organised-crime-7k2q",
    )
    _pack_argument(show)
    _json_flag(show)
    show.set_defaults(handler="commands:show_command")

    cancel = _command(
        commands,
        "cancel",
        "withdraw a pack; holders are told",
        "Withdraw a pack: nothing more of it is sent, except a 'withdrawn' email to "
        "everyone who holds the notice, asking them not to publish and to delete it. "
        "Once anyone holds the notice, --reason is required.",
        "embargo-bot cancel serious-organised-crime-7k2q --reason 'Postponed by ministers'",
    )
    _pack_argument(cancel)
    cancel.add_argument("--reason", help="why: told to partners who hold the notice")
    _json_flag(cancel)
    cancel.set_defaults(handler="commands:cancel_command")

    preview = _command(
        commands,
        "preview",
        "write the exact emails as .eml files",
        "See what partners will get: write each stage's message for each recipient as "
        ".eml files, byte for byte what would be sent now, or mail them, marked TEST, "
        "to one address on a valid list. Before the lift a test leaves out the live email.",
        "embargo-bot preview serious-organised-crime-7k2q --out preview/\n"
        "  embargo-bot preview serious-organised-crime-7k2q --send-to comms@police.example",
    )
    _pack_argument(preview)
    preview.add_argument(
        "--stage", choices=PREVIEW_KINDS, help="only this kind of email (default: every one)"
    )
    destination = preview.add_mutually_exclusive_group(required=True)
    destination.add_argument("--out", type=Path, help="folder to write the .eml files into")
    destination.add_argument(
        "--send-to", metavar="ADDRESS", help="mail them, marked TEST, to one listed address"
    )
    _json_flag(preview)
    preview.set_defaults(handler="commands:preview_command")


def _operators_commands(commands: Any) -> None:
    lists = _command(
        commands,
        "lists",
        "check the recipient lists",
        "Work with the recipient lists: one YAML file per list in EMBARGO_BOT_RECIPIENTS_DIR.",
        "embargo-bot lists check",
    )
    lists_commands = lists.add_subparsers(dest="lists_command", required=True, metavar="ACTION")
    check = _command(
        lists_commands,
        "check",
        "validate every list in the lists folder",
        "Validate every list and report every problem at once, as file:line: message. "
        "Exits non-zero if there is any. Run it after every edit.",
        "embargo-bot lists check",
    )
    _json_flag(check)
    check.set_defaults(handler="operations:lists_check_command")

    run = _command(
        commands,
        "run",
        "run the sending service",
        "Run the service that sends every stage at its time, until SIGINT or SIGTERM. "
        "Messages in flight finish; the rest wait for the next start. Changes made from "
        "the command line are picked up within the poll interval. Logs go to stderr. "
        "Creates the store if there is none.",
        "embargo-bot run\n\n" + RUN_SETTINGS,
    )
    run.set_defaults(handler="operations:run_command")

    doctor = _command(
        commands,
        "doctor",
        "check the settings, key, store, relay and lists",
        "Check that everything `run` needs is in place: the settings, the key against the "
        "store, the store and its schema, the relay (connects, TLS, login), and the lists. "
        "One line each, ok or what to do; exits non-zero if anything fails. Sends nothing.",
        "embargo-bot doctor --json",
    )
    _json_flag(doctor)
    doctor.set_defaults(handler="doctor:doctor_command")

    demo = _command(
        commands,
        "demo",
        "a self-contained demonstration on loopback",
        "Run the whole job on this machine: a temporary store and key, a stand-in relay "
        "on 127.0.0.1, an example pack with two waves and a lift a few seconds away. "
        "Nothing leaves the machine.",
        "embargo-bot demo --lift-in 20 --out demo-output",
    )
    demo.add_argument("--out", type=Path, help="folder for the captured .eml files")
    demo.add_argument(
        "--lift-in", type=float, default=8.0, help="seconds from now to the demo's lift"
    )
    demo.set_defaults(handler="operations:demo_command")

    audit = _command(
        commands,
        "audit",
        "check or export the audit log",
        "The audit log records every action and send, chained so that no entry can be "
        "edited, removed or moved unnoticed.",
        "embargo-bot audit verify",
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = _command(
        audit_commands,
        "verify",
        "check no entry was edited, removed or moved",
        "Check the whole audit chain and its head; exits non-zero naming each problem.",
        "embargo-bot audit verify --json",
    )
    _json_flag(verify)
    verify.set_defaults(handler="operations:audit_verify_command")
    export = _command(
        audit_commands,
        "export",
        "write the log, e.g. for an FOI request",
        "Write the audit log to stdout, every entry or one pack's, as CSV or JSON: who did "
        "what and when, and every send with the relay's reply, e.g. for an FOI request.",
        "embargo-bot audit export --pack serious-organised-crime-7k2q --format csv > audit.csv",
    )
    export.add_argument("--pack", metavar="PACK", help="only this pack's entries")
    export.add_argument(
        "--format", choices=["csv", "json"], default="csv", help="csv (default) or json"
    )
    export.set_defaults(handler="operations:audit_export_command")

    rekey = _command(
        commands,
        "rekey",
        "re-encrypt everything stored under the first key in EMBARGO_BOT_KEY",
        "Rotate the at-rest key: put a new key first in EMBARGO_BOT_KEY (new,old), run "
        "this, then remove the old key once every process has restarted.",
        "EMBARGO_BOT_KEY=NEW,OLD embargo-bot rekey",
    )
    rekey.set_defaults(handler="operations:rekey_command")

    keygen = _command(
        commands,
        "keygen",
        "print a new at-rest key for .env",
        "Print a new at-rest key as an EMBARGO_BOT_KEY= line. Back it up: losing it "
        "loses every stored pack.",
        "embargo-bot keygen >> .env && chmod 600 .env",
    )
    keygen.set_defaults(handler="operations:keygen_command")


_TIME_FORMS = "'YYYY-MM-DD HH:MM' in EMBARGO_BOT_TIMEZONE, or ISO 8601 with an offset"


def _command(
    commands: Any, name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=_wrap(description),
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=78)


def _pack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pack", help="the pack's id, as `queue` and `list` print it")


def _notice_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--notice",
        action="append",
        default=[],
        metavar="LISTS@WHEN",
        help=f"{help_text}: e.g. police-scotland,copfs@'2030-02-22 16:15'",
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
