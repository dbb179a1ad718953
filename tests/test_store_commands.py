"""The store from the command line: choosing it, upgrading it, and the instances on it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from conftest import start_service, wait_until
from store.legacy import make_legacy_store

from embargo_bot.cli.main import main
from embargo_bot.store import HEAD


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "url", ["mysql://embargo@db.internal/embargo", "http://db.internal/", "sqlite:///x.db"]
)
def test_a_database_url_of_another_kind_is_refused_in_one_line(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_DATABASE", url)
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    code, out, err = run_cli(capsys, "list")
    assert code == 78, err
    assert "EMBARGO_BOT_DATABASE" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and out == ""
    assert sorted(tmp_path.rglob("*")) == before, "no file made of the URL"


def test_a_postgresql_url_is_never_taken_for_a_file_name(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing listens on this socket folder: the command fails, and makes no file.
    monkeypatch.setenv("EMBARGO_BOT_DATABASE", f"postgresql://embargo@/embargo?host={tmp_path}")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "list")
    assert code != 0 and "Traceback" not in err
    assert "postgresql://" in err
    assert not any(p.name.startswith("postgresql") for p in tmp_path.rglob("*"))


def test_a_store_from_the_release_before_is_refused_until_db_upgrade(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    make_legacy_store(Path(env["EMBARGO_BOT_DATABASE"]))
    code, _, err = run_cli(capsys, "list")
    assert code != 0 and "run `embargo-bot db upgrade`" in err
    code, out, err = run_cli(capsys, "db", "upgrade")
    assert code == 0, err
    assert f"(at revision 0001) to revision {HEAD}" in " ".join(out.split())
    code, out, _ = run_cli(capsys, "db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["from"] == json.loads(out)["to"] == HEAD
    code, out, err = run_cli(capsys, "list", "--json")
    assert code == 0, err
    assert [pack["id"] for pack in json.loads(out)] == ["old-pack"]


async def test_status_lists_each_running_instance_and_what_it_holds(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_cli(capsys, "status")
    assert code != 0, "no store yet: status creates none"
    service = start_service(env, tmp_path, log=False)
    try:

        def listed() -> list[dict[str, object]]:
            code, out, _ = run_cli(capsys, "status", "--json")
            return json.loads(out) if code == 0 else []

        await wait_until(lambda: len(listed()) == 1, within=15)
        (instance,) = listed()
        assert instance["pid"] == service.pid
        assert float(str(instance["heartbeat_seconds_ago"])) < 3
        code, out, _ = run_cli(capsys, "status")
        assert code == 0 and str(instance["id"]) in out and "Last heartbeat" in out
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=15)
    code, out, _ = run_cli(capsys, "status")
    assert code == 0 and "No service instance is running" in out
