"""The pieces every command's arguments are built from: help, examples, common flags."""

from __future__ import annotations

import argparse
from typing import Any

TIME_FORMS = "'YYYY-MM-DD HH:MM' in EMBARGO_BOT_TIMEZONE, or ISO 8601 with an offset"


def command(
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


def pack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pack", help="the pack's id, as `queue` and `list` print it")


def notice_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--notice",
        action="append",
        default=[],
        metavar="LISTS@WHEN",
        help=f"{help_text}: e.g. police-scotland,copfs@'2030-02-22 16:15'",
    )


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
