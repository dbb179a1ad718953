"""What the command line tells a new user: help with substance, and its version."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from embargo_bot.cli.main import main
from embargo_bot.cli.parser import build_parser


def commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand's parser, with the words that reach it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from commands(sub, (*prefix, name))


EVERY_COMMAND = list(commands(build_parser()))
COMMAND_NAMES = [" ".join(words) for words, _ in EVERY_COMMAND]


def test_every_command_is_walked() -> None:
    names = {" ".join(words) for words, _ in EVERY_COMMAND}
    assert {"queue", "run", "doctor", "lists check", "audit export", "keygen"} <= names


@pytest.mark.parametrize(("words", "parser"), EVERY_COMMAND, ids=COMMAND_NAMES)
def test_every_option_of_every_command_has_help(
    words: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help and action.help.strip(), f"{' '.join(words)} {action.option_strings}"


@pytest.mark.parametrize(("words", "parser"), EVERY_COMMAND, ids=COMMAND_NAMES)
def test_every_command_has_a_description_and_an_example(
    words: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    assert parser.description and len(parser.description) > 60, words
    assert parser.epilog and parser.epilog.startswith("example:\n  "), words
    assert f"embargo-bot {words[0]}" in parser.epilog or "embargo-bot" in parser.epilog


def help_of(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_queue_help_names_the_markings_and_explains_title_and_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(capsys, "queue")
    assert "{OFFICIAL,OFFICIAL-SENSITIVE}" in text
    assert "one of OFFICIAL, OFFICIAL-SENSITIVE" in text
    assert "e.g. the ISBN" in text and "the publication's title" in text
    # The example survives the formatter as typed, one option per line.
    assert "--notice nca,copfs@'2030-02-22 16:15'" in text


def test_run_help_lists_the_settings_that_matter(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "run")
    for variable in (
        "EMBARGO_BOT_SMTP_HOST",
        "EMBARGO_BOT_SMTP_SECURITY",
        "EMBARGO_BOT_SMTP_USERNAME",
        "EMBARGO_BOT_KEY",
        "EMBARGO_BOT_DATABASE",
        "EMBARGO_BOT_RECIPIENTS_DIR",
        "EMBARGO_BOT_LOG_FORMAT",
    ):
        assert variable in text


def test_version_comes_from_the_installed_package() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "embargo_bot", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"embargo-bot {version('embargo-bot')}\n"
