"""The arguments of operators' and admins' commands: the service, the store, lists, keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embargo_bot.cli.arguments import command, json_flag

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
  EMBARGO_BOT_RETURN_PATH, _VERP      where bounces go (default the From address)
  EMBARGO_BOT_BOUNCE_IMAP_HOST, ...   the bounce mailbox to read (unset: none)
`embargo-bot doctor` checks them all before a first start."""


def _days(text: str) -> int:
    import argparse

    try:
        days = int(text)
    except ValueError:
        days = -1
    if not 1 <= days <= 36500:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days, e.g. 30")
    return days


def operators_commands(commands: Any) -> None:
    lists = command(
        commands,
        "lists",
        "check the recipient lists",
        "Work with the recipient lists: one YAML file per list in EMBARGO_BOT_RECIPIENTS_DIR.",
        "embargo-bot lists check",
    )
    lists_commands = lists.add_subparsers(dest="lists_command", required=True, metavar="ACTION")
    check = command(
        lists_commands,
        "check",
        "validate every list in the lists folder",
        "Validate every list and report every problem at once, as file:line: message. "
        "Exits non-zero if there is any. Run it after every edit.",
        "embargo-bot lists check",
    )
    json_flag(check)
    check.set_defaults(handler="operations:lists_check_command")
    bounces = command(
        lists_commands,
        "bounces",
        "addresses whose partner's server bounced a message",
        "Each address a partner's server reported undeliverable after the relay accepted "
        "the message (read from the bounce mailbox): its list, the file and line that name "
        "it, the last reason, and how many packs it bounced for. Fix or remove the line.",
        "embargo-bot lists bounces --since 30",
    )
    bounces.add_argument(
        "--since", type=_days, metavar="DAYS", help="only bounces in the last DAYS days"
    )
    json_flag(bounces)
    bounces.set_defaults(handler="bounce_output:lists_bounces_command")

    run = command(
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

    doctor = command(
        commands,
        "doctor",
        "check the settings, key, store, relay, lists and bounce mailbox",
        "Check that everything `run` needs is in place: the settings, the key against the "
        "store, the store and its schema, the relay (connects, TLS, login), the lists, and "
        "the bounce mailbox if one is set (connects, logs in). "
        "One line each, ok or what to do; exits non-zero if anything fails. Sends nothing.",
        "embargo-bot doctor --json",
    )
    json_flag(doctor)
    doctor.set_defaults(handler="doctor:doctor_command")

    status = command(
        commands,
        "status",
        "the service instances running on this store",
        "List the live service instances sharing this store (one per host, or several): "
        "each one's host and process, when it started, its last heartbeat, and the stages "
        "it is sending. An instance silent for a few seconds is taken for dead, and "
        "another resumes its work.",
        "embargo-bot status --json",
    )
    json_flag(status)
    status.set_defaults(handler="operations:status_command")

    db = command(
        commands,
        "db",
        "the store's schema",
        "Keep the store's tables at this release's revision (Alembic migrations). After "
        "installing a new release, stop the service, back up the store, run "
        "`embargo-bot db upgrade`, then start the service again: `run` refuses a store that "
        "is out of date.",
        "embargo-bot db upgrade",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = command(
        db_commands,
        "upgrade",
        "bring the store to this release's revision",
        "Apply every migration the store has not had yet, in one transaction; running it "
        "again changes nothing. A store made before migrations is recognised and upgraded "
        "in place.",
        "embargo-bot db upgrade",
    )
    json_flag(upgrade)
    upgrade.set_defaults(handler="operations:db_upgrade_command")

    demo = command(
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

    audit = command(
        commands,
        "audit",
        "check or export the audit log",
        "The audit log records every action and send, chained so that no entry can be "
        "edited, removed or moved unnoticed.",
        "embargo-bot audit verify",
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = command(
        audit_commands,
        "verify",
        "check no entry was edited, removed or moved",
        "Check the whole audit chain and its head; exits non-zero naming each problem.",
        "embargo-bot audit verify --json",
    )
    json_flag(verify)
    verify.set_defaults(handler="operations:audit_verify_command")
    export = command(
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

    rekey = command(
        commands,
        "rekey",
        "re-encrypt everything stored under the first key in EMBARGO_BOT_KEY",
        "Rotate the at-rest key: put a new key first in EMBARGO_BOT_KEY (new,old), run "
        "this, then remove the old key once every process has restarted.",
        "EMBARGO_BOT_KEY=NEW,OLD embargo-bot rekey",
    )
    rekey.set_defaults(handler="operations:rekey_command")

    keygen = command(
        commands,
        "keygen",
        "print a new at-rest key for .env",
        "Print a new at-rest key as an EMBARGO_BOT_KEY= line. Back it up: losing it "
        "loses every stored pack.",
        "embargo-bot keygen >> .env && chmod 600 .env",
    )
    keygen.set_defaults(handler="operations:keygen_command")
