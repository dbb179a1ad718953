"""Faults of the machine around the service: broken files, a store swapped or full."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import PackFiles, at, queue_args, start_service, write_big_list

from embargo_bot.app import open_app
from embargo_bot.cli.main import main
from embargo_bot.devtools.standin_relay import CapturingHandler, Received, StandInRelay
from embargo_bot.domain.packs import DeliveryState, StageKind, StageState
from embargo_bot.settings import load_settings


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def break_the_folder(lists_dir: Path, tmp_path: Path) -> None:
    """Three list files nobody can read, even root (who reads a chmod 000 file anyway):
    a symbolic link to a share that went away, a directory, and a FIFO (reading
    one with no writer would block for ever)."""
    (lists_dir / "unrelated.yaml").symlink_to(tmp_path / "gone" / "share.yaml")
    (lists_dir / "folder.yaml").mkdir()
    os.mkfifo(lists_dir / "pipe.yaml")


def test_lists_check_names_each_unreadable_file_without_a_traceback(
    env: dict[str, str], lists_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_the_folder(lists_dir, tmp_path)
    code, out, err = run_cli(capsys, "lists", "check")
    assert code != 0
    assert "Traceback" not in out + err
    for name in ("unrelated.yaml", "folder.yaml", "pipe.yaml"):
        assert name in err
    assert "does not exist" in err  # the dangling link says where it pointed
    code, out, _ = run_cli(capsys, "lists", "check", "--json")
    assert set(json.loads(out)["lists"]) == {"alpha", "beta", "low"}


def test_an_unreadable_list_no_pack_uses_stops_nothing(
    env: dict[str, str],
    lists_dir: Path,
    pack_files: PackFiles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    break_the_folder(lists_dir, tmp_path)
    with StandInRelay() as relay:
        env = {**env, "EMBARGO_BOT_SMTP_PORT": str(relay.port)}
        lift = datetime.now(UTC) + timedelta(seconds=6)
        code, _, err = run_cli(
            capsys, *queue_args(pack_files, **{"--lists": "alpha", "--lift": at(lift)}), "--json"
        )
        assert code == 0, err
        service = start_service(env, tmp_path)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any(
                b"X-Embargo-Stage: live" in item.data for item in relay.received
            ):
                assert service.poll() is None, "the service stopped"
                time.sleep(0.05)
            assert service.poll() is None
        finally:
            service.send_signal(signal.SIGTERM)
            _, log = service.communicate(timeout=15)
    assert service.returncode == 0, log
    assert "Traceback" not in log
    stages = [item.data.split(b"X-Embargo-Stage: ")[1][:6] for item in relay.received]
    assert b"notice" in stages and b"live\r\n" in stages
    # Logged once, not at every check.
    assert log.count("unrelated.yaml") == 1, log


class StallAfterTaking(CapturingHandler):
    """Takes the ``nth`` message, then holds back its 250 reply: a crash now leaves a
    notice the relay has, which the service never recorded as sent."""

    def __init__(self, nth: int) -> None:
        super().__init__()
        self.nth = nth
        self.taken = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.nth:
            self.taken.set()
            await asyncio.sleep(30)
        return reply


def test_a_withdrawal_reaches_a_partner_whose_notice_a_crash_left_unrecorded(
    env: dict[str, str],
    lists_dir: Path,
    pack_files: PackFiles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_big_list(lists_dir, "crowd", 6)
    handler = StallAfterTaking(nth=3)
    with StandInRelay(handler) as relay:
        env = {**env, "EMBARGO_BOT_SMTP_PORT": str(relay.port), "EMBARGO_BOT_SMTP_CONNECTIONS": "1"}
        code, out, err = run_cli(capsys, *queue_args(pack_files, **{"--lists": "crowd"}), "--json")
        assert code == 0, err
        pack_id = json.loads(out)["id"]
        service = start_service(env, tmp_path, log=False)
        try:
            assert handler.taken.wait(15), "the third notice never reached the relay"
        finally:
            service.kill()  # the relay has the third notice; the store says it is pending
            service.wait(timeout=10)
        [third] = [item.rcpt_tos[0] for item in relay.received][2:3]
        code, _, err = run_cli(capsys, "cancel", pack_id, "--reason", "Postponed")
        assert code == 0, err
        handler.nth = 0  # the next service's messages are answered at once
        service = start_service(env, tmp_path, log=False)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not withdrawals(relay):
                time.sleep(0.05)
            time.sleep(1.0)  # let the rest of the withdrawal stage go
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=15)
        notified = {item.rcpt_tos[0] for item in relay.received if stage(item) == "notice"}
        told = {r for item in withdrawals(relay) for r in item.rcpt_tos}
    assert third in notified
    assert notified <= told, f"{sorted(notified - told)} hold the notice but were not told"


def stage(item: Received) -> str:
    return item.data.split(b"X-Embargo-Stage: ", 1)[1].split(b"\r\n", 1)[0].decode()


def withdrawals(relay: StandInRelay) -> list[Received]:
    return [item for item in relay.received if stage(item) == "withdrawn"]


def replace_with_new_file(store: Path) -> None:
    fresh = store.with_name("fresh.db")
    fresh.write_bytes(store.read_bytes())
    os.replace(fresh, store)


def overwrite_with_garbage(store: Path) -> None:
    store.write_bytes(b"not a database, just what a mistaken `cp` left\n" * 200)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Path.unlink, "removed"),
        (replace_with_new_file, "replaced"),
        (overwrite_with_garbage, "not a database"),
    ],
    ids=["removed", "replaced", "garbage"],
)
def test_a_store_removed_or_replaced_under_the_service_stops_it_with_one_line(
    env: dict[str, str],
    tmp_path: Path,
    change: Any,
    expected: str,
) -> None:
    store = Path(env["EMBARGO_BOT_DATABASE"])
    service = start_service({**env, "EMBARGO_BOT_POLL_INTERVAL": "0.1"}, tmp_path)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not store.exists():
            time.sleep(0.05)
        time.sleep(1.0)  # running, past its first poll
        assert service.poll() is None
        change(store)
        _, log = service.communicate(timeout=10)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode not in (0, None)
    assert "Traceback" not in log
    said = [line for line in log.splitlines() if str(store) in line and "starting:" not in line]
    [line] = [line for line in said if expected in line]
    assert "service stopped" in log or line.startswith("embargo-bot:")


def test_every_command_on_a_store_overwritten_with_garbage_says_so_in_one_line(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Path(env["EMBARGO_BOT_DATABASE"])
    assert run_cli(capsys, *queue_args(pack_files))[0] == 0  # queue makes the store
    overwrite_with_garbage(store)
    for args in (["list"], queue_args(pack_files), ["show", "no-such-pack"]):
        code, out, err = run_cli(capsys, *args)
        assert code != 0
        assert "Traceback" not in out + err
        [line] = err.strip().splitlines()
        assert str(store) in line


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB filesystem (tmpfs), mounted for the test: root only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path, *, leave: int) -> Path:
    stats = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


def test_a_full_disk_pauses_sending_says_so_once_and_resumes_with_nothing_lost(
    env: dict[str, str],
    lists_dir: Path,
    pack_files: PackFiles,
    tmp_path: Path,
    small_disk: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    addresses = write_big_list(lists_dir, "crowd", 1500)
    store = small_disk / "store.db"
    with StandInRelay() as relay:
        env = {
            **env,
            "EMBARGO_BOT_DATABASE": str(store),
            "EMBARGO_BOT_SMTP_PORT": str(relay.port),
            "EMBARGO_BOT_POLL_INTERVAL": "0.1",
            "EMBARGO_BOT_LEASE_SECONDS": "5",
        }
        for name, value in env.items():  # the in-process commands below use the same store
            monkeypatch.setenv(name, value)
        code, out, err = run_cli(capsys, *queue_args(pack_files, **{"--lists": "crowd"}), "--json")
        assert code == 0, err
        pack_id = json.loads(out)["id"]
        filler = fill(small_disk, leave=200_000)
        service = start_service(env, tmp_path)
        lines: list[str] = []
        assert service.stderr is not None
        log_pipe = service.stderr
        reader = threading.Thread(target=lambda: lines.extend(iter(log_pipe.readline, "")))
        reader.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any("is full" in line for line in lines):
                time.sleep(0.05)
            time.sleep(3)  # polls every 0.1 s: the line must not repeat at each
            full = [line for line in lines if "the disk holding the store is full" in line]
            assert len(full) == 1, "".join(lines[-20:])
            assert str(store) in full[0]
            filler.unlink()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(notice_rcpts(relay)) < len(addresses):
                time.sleep(0.1)
            assert len(notice_rcpts(relay)) == len(addresses), "".join(lines[-10:])
            time.sleep(1)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=15)
            reader.join(timeout=5)
            if service.stderr is not None:
                service.stderr.close()
    assert "Traceback" not in "".join(lines)
    assert notice_rcpts(relay) == set(addresses)
    with open_app(load_settings(_env_file=None)) as app:
        stage = app.store.stage_of(pack_id, StageKind.NOTICE)
        states = {d.state for d in app.store.deliveries(pack_id, stage_id=stage.id)}
    assert stage.state is StageState.DONE and states == {DeliveryState.SENT}
    connection = sqlite3.connect(store)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        connection.close()
    # Checkpointed after the stage: the write-ahead log does not sit on the small disk.
    wal = store.with_name("store.db-wal")
    assert not wal.exists() or wal.stat().st_size < 1_100_000


def notice_rcpts(relay: StandInRelay) -> set[str]:
    return {r for item in relay.received if stage(item) == "notice" for r in item.rcpt_tos}


def test_a_command_on_a_full_disk_says_so_in_one_line(
    env: dict[str, str],
    pack_files: PackFiles,
    small_disk: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = small_disk / "store.db"
    monkeypatch.setenv("EMBARGO_BOT_DATABASE", str(store))
    assert run_cli(capsys, *queue_args(pack_files))[0] == 0  # queue makes the store
    fill(small_disk, leave=0)
    for args in (queue_args(pack_files), ["list"]):
        code, out, err = run_cli(capsys, *args)
        assert code != 0
        assert "Traceback" not in out + err
        [line] = err.strip().splitlines()
        assert f"the disk holding the store is full ({store})" in line
