"""Bounces as people see them: ``lists bounces``, and a bounced delivery in ``show``."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.console import Console

from embargo_bot.cli.records import Field, Records
from embargo_bot.domain.bounces import BouncedAddress, ServerReport
from embargo_bot.domain.packs import Delivery
from embargo_bot.domain.reports import Failure
from embargo_bot.domain.times import describe_short, to_storage

if TYPE_CHECKING:
    from embargo_bot.lists.catalogue import ListCatalogue


def report_json(report: ServerReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {"status": report.status, "diagnostic": report.diagnostic, "at": to_storage(report.at)}


def delivery_bounce_json(delivery: Delivery) -> dict[str, Any]:
    """The partner server's words on a delivery, for ``show --json``."""
    return {"bounce": report_json(delivery.bounce), "delay": report_json(delivery.delay)}


def reply_words(delivery: Delivery) -> str:
    """The "Server's reply" a person reads: the partner's server's, once it has spoken."""
    if delivery.bounce is not None:
        return f"bounced by the partner's server: {delivery.bounce.words}"
    reply = delivery.reply or ""
    if delivery.delay is not None:
        return f"{reply} (delayed at the partner's server: {delivery.delay.words})".strip()
    return reply


def bounced_words(failure: Failure) -> Failure:
    return Failure(failure.email, f"bounced: {failure.reply}")


def where_listed(item: BouncedAddress, catalogue: ListCatalogue | None, root: Path) -> str:
    """``recipients/copfs.yaml:9``: where the list file names the address today."""
    found = None if catalogue is None else catalogue.lists.get(item.list_key)
    if found is None:
        return f"{_shown(root / f'{item.list_key}.yaml')} (list not found)"
    for recipient in found.recipients:
        if recipient.email.casefold() == item.email.casefold():
            return f"{_shown(found.path)}:{recipient.line}"
    return f"{_shown(found.path)} (no longer listed)"


def _shown(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def bounces_table(
    items: list[tuple[BouncedAddress, str]], *, zone: ZoneInfo, days: int | None
) -> Records:
    since = "" if days is None else f" in the last {days} day(s)"
    table = Records(
        f"Addresses that bounced{since}",
        [
            Field("Address"),
            Field("List"),
            Field("Listed at"),
            Field("Packs"),
            Field("Last"),
            Field("Last reason", wraps=True),
        ],
    )
    for item, where in items:
        table.add_row(
            item.email,
            item.list_key,
            where,
            str(item.packs),
            describe_short(item.last.at, zone),
            item.last.words,
        )
    return table


def bounces_json(items: list[tuple[BouncedAddress, str]], days: int | None) -> dict[str, Any]:
    return {
        "since_days": days,
        "bounces": [
            {
                "email": item.email,
                "list": item.list_key,
                "listed_at": where,
                "packs": item.packs,
                "last": report_json(item.last),
            }
            for item, where in items
        ],
    }


def lists_bounces_command(args: argparse.Namespace, console: Console) -> int:
    from embargo_bot.app import open_app
    from embargo_bot.cli.environment import command_settings, emit_json
    from embargo_bot.domain.errors import ListError
    from embargo_bot.lists.catalogue import load_lists

    settings = command_settings()
    days: int | None = args.since
    with open_app(settings, create=False) as app:
        since = None if days is None else app.clock() - timedelta(days=days)
        found = app.store.bounced_addresses(since=since)
    catalogue = None
    if found:
        try:
            catalogue = load_lists(settings.recipients_dir)
        except ListError:
            catalogue = None  # the addresses are still worth seeing without their lines
    items = [(item, where_listed(item, catalogue, settings.recipients_dir)) for item in found]
    if args.json:
        emit_json(console, bounces_json(items, days))
    elif not items:
        within = "" if days is None else f" in the last {days} day(s)"
        console.print(f"No address has bounced{within}.")
    else:
        console.print(bounces_table(items, zone=settings.zone, days=days))
    return 0
