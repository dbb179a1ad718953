"""What an operator sees of a real `embargo-bot run` process: its log, and its neighbours."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from pathlib import Path

from conftest import start_service

SECRET_PASSWORD = "relay-password-Quillwort-9"


def read_until(service: subprocess.Popen[str], words: str, within: float = 15.0) -> list[str]:
    """The log lines up to and including the first that holds ``words``."""
    assert service.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([service.stderr], [], [], 0.1)
        if ready:
            line = service.stderr.readline()
            if not line:
                break
            lines.append(line)
            if words in line:
                return lines
    raise AssertionError(f"{words!r} not logged within {within}s: {lines}")


def stop(service: subprocess.Popen[str]) -> list[str]:
    service.send_signal(signal.SIGTERM)
    try:
        _, rest = service.communicate(timeout=15)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, rest
    return rest.splitlines(keepends=True)


def test_json_logs_one_object_per_line_and_the_start_names_relay_store_and_lists(
    env: dict[str, str], tmp_path: Path, lists_dir: Path
) -> None:
    env = {
        **env,
        "EMBARGO_BOT_LOG_FORMAT": "json",
        "EMBARGO_BOT_SMTP_USERNAME": "ocu",
        "EMBARGO_BOT_SMTP_PASSWORD": SECRET_PASSWORD,
    }
    service = start_service(env, tmp_path)
    lines = read_until(service, "service started")
    lines += stop(service)

    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(set(entry) >= {"time", "level", "logger", "message"} for entry in entries)
    assert all(entry["time"].endswith("+00:00") for entry in entries)
    [start] = [e for e in entries if e["message"].startswith("starting: ")]
    assert start["level"] == "INFO" and start["logger"] == "embargo_bot"
    assert start["message"] == (
        "starting: relay 127.0.0.1:2525 (none, with a login), "
        f"store {tmp_path / 'store.db'}, lists {lists_dir}"
    )
    assert entries[-1]["message"] == "service stopped"
    everything = "".join(lines)
    assert SECRET_PASSWORD not in everything and env["EMBARGO_BOT_KEY"] not in everything


def test_text_logs_by_default(env: dict[str, str], tmp_path: Path) -> None:
    service = start_service(env, tmp_path)
    lines = read_until(service, "service started")
    lines += stop(service)
    assert " INFO embargo_bot: starting: relay 127.0.0.1:2525 (none, no login)" in lines[0]
    assert not lines[0].startswith("{")


def test_a_second_run_on_the_same_store_warns_and_keeps_running(
    env: dict[str, str], tmp_path: Path
) -> None:
    first = start_service(env, tmp_path)
    try:
        read_until(first, "service started")
        second = start_service(env, tmp_path)
        try:
            warned = read_until(second, "another embargo-bot service is running")
            assert "WARNING" in warned[-1] and f":{first.pid}:" in warned[-1]
            assert "that is safe" in warned[-1]
            time.sleep(0.3)
            assert second.poll() is None, "a warning, not a refusal"
        finally:
            stop(second)
    finally:
        stop(first)


def test_a_run_after_a_clean_stop_does_not_warn(env: dict[str, str], tmp_path: Path) -> None:
    first = start_service(env, tmp_path)
    read_until(first, "service started")
    stop(first)
    second = start_service(env, tmp_path)
    lines = read_until(second, "service started")
    lines += stop(second)
    assert not any("another embargo-bot service" in line for line in lines), lines
