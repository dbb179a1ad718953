"""What ships for operators and new users: the systemd unit, and the README's first steps."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from embargo_bot.officials.intake import new_pack_id
from embargo_bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "embargo-bot.service"
README = (REPO / "README.md").read_text(encoding="utf-8")


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_the_unit_runs_the_service_restarts_it_and_stops_it_with_sigterm() -> None:
    service = unit()["Service"]
    assert service["Type"] == "simple"
    assert service["ExecStart"].endswith("/embargo-bot run")
    assert service["WorkingDirectory"] == service["ReadWritePaths"]
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    # At the default 30 s a step, one message is bounded at 4 steps: 120 s.
    assert int(service["TimeoutStopSec"].removesuffix("s")) > 120
    assert service["User"]
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert service[hardening] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    installed = Path(sys.executable).with_name("embargo-bot")
    text = UNIT.read_text(encoding="utf-8").replace(
        "/opt/embargo-bot/.venv/bin/embargo-bot", str(installed)
    )
    copy = tmp_path / "embargo-bot.service"
    copy.write_text(text, encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_readme_has_a_section_for_the_unit() -> None:
    assert "### Under systemd" in README and "deploy/embargo-bot.service" in README


def test_the_quick_start_says_what_to_do_before_the_first_real_pack() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    steps = ["cp .env.example .env", "chmod 600 .env", "embargo-bot keygen >> .env"]
    at = [quick_start.index(step) for step in steps]
    assert at == sorted(at), "in that order"
    assert "embargo-bot doctor" in quick_start


def test_the_worked_example_uses_ids_as_printed_and_says_to_replace_the_dates() -> None:
    example = README.split("## For officials", 1)[1].split("\n## ", 1)[0]
    stem = new_pack_id("Serious Organised Crime Strategy").rsplit("-", 1)[0]
    commands = r"embargo-bot (?:preview|approve|reschedule|amend|show|cancel) (\S+)"
    ids = set(re.findall(commands, example))
    assert ids, "the example names its pack"
    assert all(re.fullmatch(rf"{stem}-[a-z2-9]{{4}}", pack_id) for pack_id in ids), ids
    assert "replace them with future ones" in example


def _section(heading: str) -> str:
    return " ".join(README.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0].split())


def test_the_readme_settings_table_names_every_setting() -> None:
    rows = [row for row in _section("Settings").split(" | ") if "EMBARGO_BOT_" in row]
    for field in Settings.model_fields:
        variable = "EMBARGO_BOT_FROM" if field == "sender" else f"EMBARGO_BOT_{field.upper()}"
        stem, _, ending = variable.rpartition("_")
        # A row may name a sibling by its ending: `EMBARGO_BOT_X_USERNAME`, `_PASSWORD`.
        assert any(variable in row or (stem in row and f"`_{ending}`" in row) for row in rows), (
            variable
        )


def test_the_readme_tells_officials_and_admins_about_bounces() -> None:
    officials = _section("For officials")
    assert "shows as `bounced`, with the status and the server's words" in officials
    assert "(`X-Embargo-Stage: alert`) naming the partner, the list and the reason" in officials
    assert "The live email still goes to that partner at the lift" in officials
    admins = _section("For admins")
    assert "`embargo-bot lists bounces [--since DAYS] [--json]`" in admins
    assert "(`recipients/copfs.yaml:9`), the last reason" in admins
    assert "how many packs it bounced for" in admins
