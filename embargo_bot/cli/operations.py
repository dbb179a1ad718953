"""What operators' and admins' commands do: run the service, lists, audit, keys, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from datetime import UTC, datetime

from rich.console import Console

from embargo_bot.app import App, open_app
from embargo_bot.cli import output
from embargo_bot.cli.environment import command_settings, emit_json
from embargo_bot.domain.errors import AuditError, ListError
from embargo_bot.officials.identity import current_user
from embargo_bot.settings import LogFormat, Settings


def lists_check_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.lists.catalogue import load_lists

    catalogue = load_lists(command_settings().recipients_dir)
    if args.json:
        emit_json(
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


def run_command(args: argparse.Namespace, console: Console) -> int:
    del args, console
    from embargo_bot.delivery.allocator import give_back_large_blocks

    # Before the service allocates anything large: see the module for why.
    give_back_large_blocks()
    settings = command_settings()
    configure_logging(settings.log_format)
    log = logging.getLogger("embargo_bot")
    log.info("starting: %s", startup_words(settings))
    if settings.sends_in_clear_over_a_network:
        log.warning(
            "INSECURE: EMBARGO_BOT_SMTP_ALLOW_PLAINTEXT is set: embargoed material goes to "
            "%s in clear, readable by anyone on the network between",
            settings.smtp_host,
        )
    with open_app(settings, create=True) as app:
        asyncio.run(serve(app))
    return 0


def startup_words(settings: Settings) -> str:
    """Where the service sends from and to, for the first log line: never a secret."""
    login = "with a login" if settings.smtp_username else "no login"
    return (
        f"relay {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}, {login}), "
        f"store {_store_words(settings)}, lists {settings.recipients_dir.absolute()}"
    )


def _store_words(settings: Settings) -> str:
    from embargo_bot.app import store_target

    target = store_target(settings)
    return str(target.path.absolute()) if target.path is not None else str(target.shown)


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


class JsonLines(logging.Formatter):
    """One JSON object per line: what log collectors (journald, Loki, CloudWatch) parse."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: LogFormat = LogFormat.TEXT) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # APScheduler's per-job lines say nothing the service's own log does not.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Alembic names each plugin and step when a store is created: nothing for an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def demo_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.cli.demo import run_demo  # the demo pulls in aiosmtpd; keep it off other paths

    return run_demo(console, out_dir=args.out, lift_in=args.lift_in)


def audit_verify_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.security import audit

    with open_app(command_settings(), create=False) as app:
        entries = app.store.audit_entries()
        problems = audit.verify(entries, app.audit_key, app.store.audit_head())
    if args.json:
        emit_json(console, {"entries": len(entries), "intact": not problems, "problems": problems})
    elif not problems:
        console.print(f"The audit log is intact: {len(entries)} entries, chain and head verified.")
    if problems:
        raise AuditError(
            f"the audit log has been tampered with ({len(problems)} problem(s))", problems
        )
    return 0


def audit_export_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.security import audit

    with open_app(command_settings(), create=False) as app:
        entries = app.store.audit_entries()
        if args.pack:
            app.store.get_pack(args.pack)  # a clear error for a pack that does not exist
            entries = [e for e in entries if e.pack_id == args.pack]
    console.file.write(audit.to_csv(entries) if args.format == "csv" else audit.to_json(entries))
    return 0


def rekey_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.officials import rekey

    del args
    with open_app(command_settings(), create=False) as app:
        result = rekey.rekey(app, by=current_user())
    console.print(
        f"Re-encrypted {result.rotated} version(s) under the new key "
        f"({result.already_current} already were). Every stored item now needs only the "
        "first key: remove the old one from EMBARGO_BOT_KEY once every process has restarted."
    )
    return 0


def keygen_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.security.vault import new_key

    del args
    console.file.write(f"EMBARGO_BOT_KEY={new_key()}\n")
    return 0


def status_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.cli import instance_output
    from embargo_bot.delivery.heartbeat import GONE_AFTER

    with open_app(command_settings(), create=False) as app:
        now = app.clock()
        live = app.store.live_instances(now, stale_after=GONE_AFTER)
        zone = app.settings.zone
    if args.json:
        emit_json(console, [instance_output.instance_json(item, now=now) for item in live])
    elif live:
        console.print(instance_output.instances_table(live, now=now, zone=zone))
    else:
        console.print("No service instance is running on this store: start `embargo-bot run`.")
    return 0


def db_upgrade_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.app import store_target
    from embargo_bot.store import upgrade

    settings = command_settings()
    target = store_target(settings)
    before, after = upgrade(target, group=settings.shared_group)
    if args.json:
        emit_json(console, {"store": str(target.shown), "from": before, "to": after})
    elif before == after:
        console.print(f"The store {target.shown} is already at revision {after}.")
    else:
        was = "made before migrations" if before is None else f"at revision {before}"
        console.print(f"Upgraded the store {target.shown} ({was}) to revision {after}.")
    return 0
