"""The link check's settings and options, and `release`, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PackFiles, queue_args, store_dump

from embargo_bot.cli.main import main
from embargo_bot.domain.errors import ConfigError
from embargo_bot.settings import load_settings


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_link_settings_default_to_checking_for_30_minutes(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None)
    assert settings.link_check is True
    assert settings.link_wait.total_seconds() == 30 * 60
    assert settings.link_ca_file is None
    assert load_settings(_env_file=None, link_wait="3s").link_wait.total_seconds() == 3


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"link_wait": "soon"}, "EMBARGO_BOT_LINK_WAIT"),
        ({"link_wait": "0s"}, "EMBARGO_BOT_LINK_WAIT"),
        ({"link_ca_file": "/nowhere/ca.pem"}, "EMBARGO_BOT_LINK_CA_FILE"),
        ({"link_check": "perhaps"}, "EMBARGO_BOT_LINK_CHECK"),
    ],
)
def test_a_bad_link_setting_is_one_line_naming_it(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **overrides)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_queue_stores_expect_text_and_no_link_check_and_show_tells(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, *queue_args(pack_files, "--expect-text", "Serious Organised Crime", "--json")
    )
    assert code == 0, err
    checked = json.loads(out)["id"]
    code, out, err = run(capsys, *queue_args(pack_files, "--no-link-check", "--json"))
    assert code == 0, err
    unchecked = json.loads(out)["id"]
    code, out, _ = run(capsys, "show", checked, "--json")
    link = json.loads(out)["link_check"]
    assert link["enabled"] and link["expect_text"] == "Serious Organised Crime"
    assert link["watches"] == [] and link["alerts"] == [] and link["released"] is None
    code, out, _ = run(capsys, "show", unchecked, "--json")
    assert json.loads(out)["link_check"]["enabled"] is False
    code, out, _ = run(capsys, "show", unchecked)
    assert "off for this pack" in " ".join(out.split())


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "--expect-text: must not be empty"),
        ("   ", "--expect-text: must not be empty"),
        ("two\nlines", "--expect-text:"),
        ("x" * 201, "--expect-text: 201 characters is too long (at most 200)"),
        ("\u200b\u200b", "--expect-text:"),
    ],
)
def test_a_bad_expect_text_is_refused_and_nothing_is_stored(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    says: str,
) -> None:
    code, _, err = run(capsys, *queue_args(pack_files))
    assert code == 0, err
    before = store_dump(tmp_path / "store.db")
    code, _, err = run(capsys, *queue_args(pack_files, "--expect-text", text))
    assert code != 0
    assert says in err and "Traceback" not in err
    assert store_dump(tmp_path / "store.db") == before


def test_expect_text_with_no_link_check_is_refused(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, *queue_args(pack_files, "--expect-text", "Strategy", "--no-link-check")
    )
    assert code != 0 and "--expect-text" in err and "--no-link-check" in err


def test_release_is_refused_before_the_lift_and_records_nothing(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *queue_args(pack_files, "--json"))
    assert code == 0, err
    pack = json.loads(out)["id"]
    code, _, err = run(capsys, "release", pack)
    assert code != 0
    assert "before the lift" in err and "Traceback" not in err
    code, out, _ = run(capsys, "audit", "export", "--pack", pack, "--format", "json")
    assert "released" not in out
    with pytest.raises(SystemExit) as done:
        main(["release", "--help"])
    assert done.value.code == 0 and "without the check" in " ".join(capsys.readouterr().out.split())
