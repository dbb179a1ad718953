"""Commands whose cost must not grow with lists they do not need, or with a pack's size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import PackFiles, queue, queue_args, running, stage_closed, wait_until, write_big_list

from embargo_bot.app import App
from embargo_bot.cli.main import main
from embargo_bot.domain.packs import StageKind
from embargo_bot.lists import catalogue


def test_queue_reads_only_the_lists_it_names_and_each_once(
    env: dict[str, str],
    lists_dir: Path,
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_big_list(lists_dir, "crowd", 200)
    parsed: list[str] = []
    real_parse = catalogue.parse_list

    def counting_parse(path: Path, text: str) -> Any:
        parsed.append(path.stem)
        return real_parse(path, text)

    monkeypatch.setattr(catalogue, "parse_list", counting_parse)
    assert main(queue_args(pack_files, **{"--lists": "alpha"})) == 0, capsys.readouterr().err
    assert parsed == ["alpha"]


def test_queue_loads_no_sending_stack_and_no_certificate_code_it_does_not_use(
    env: dict[str, str], pack_files: PackFiles, tmp_path: Path
) -> None:
    """Without a signing key or a partner's certificate, X.509 and PKCS #7 stay unloaded."""
    unused = ("aiosmtplib", "apscheduler", "alembic", "cryptography.x509", "psycopg")
    unused += ("embargo_bot.security.smime", "sqlalchemy.dialects.postgresql")
    script = (
        "import sys, json\n"
        "from embargo_bot.cli.main import main\n"
        "code = main(json.loads(sys.argv[1]))\n"
        f"unused = {unused!r}\n"
        "loaded = {u for u in unused for m in sys.modules if m == u or m.startswith(u + '.')}\n"
        "print(json.dumps([code, sorted(loaded)]))\n"
    )
    # A store made beforehand, as by an earlier `queue`: making one runs the migrations.
    first = queue_args(pack_files, "--json", **{"--lists": "alpha"})
    subprocess.run([sys.executable, "-m", "embargo_bot", *first], env=os.environ, check=True,
                   capture_output=True)  # fmt: skip
    args = queue_args(pack_files, "--json", **{"--lists": "alpha", "--title": "Another"})
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)],
        cwd=tmp_path,
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert code == 0, done.stderr
    assert loaded == []


async def test_show_sums_up_each_stage_and_lists_recipients_only_when_asked(
    app_with_relay: App,
    env: dict[str, str],
    lists_dir: Path,
    make_request: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: rich wraps nothing
    app = app_with_relay
    addresses = write_big_list(lists_dir, "crowd", 30)
    pack = queue(app, make_request(lists="crowd"))
    async with running(app):
        await wait_until(lambda: stage_closed(app, pack.id, StageKind.NOTICE))
    capsys.readouterr()
    assert main(["show", pack.id]) == 0
    summary = capsys.readouterr().out
    assert "notice wave 1" in summary and "30" in summary
    assert sum(address in summary for address in addresses) <= 1  # only the slowest is named
    assert main(["show", pack.id, "--recipients"]) == 0
    full = capsys.readouterr().out
    assert all(address in full for address in addresses)
