"""The command line as officials and admins use it: exit codes, messages, JSON."""

from __future__ import annotations

import asyncio
import email
import gc
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    LIVE_URL,
    Cli,
    PacedHandler,
    PackFiles,
    at,
    deliveries_of,
    queue,
    queue_args,
    running,
    stages_closed,
    start_service,
    store_dump,
    wait_until,
    write_big_list,
)

from embargo_bot.app import App, open_app
from embargo_bot.cli.main import main
from embargo_bot.devtools.standin_relay import Received, StandInRelay
from embargo_bot.domain.packs import DeliveryState, StageKind, StageState
from embargo_bot.officials.previews import preview
from embargo_bot.security.vault import new_key
from embargo_bot.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_lists_check_passes_on_the_shipped_lists(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_RECIPIENTS_DIR", str(REPO / "recipients"))
    code, out, _ = run_cli(capsys, "lists", "check", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["problems"] == []
    assert {"police-scotland", "nca", "copfs", "hmrc", "devolved"} <= set(document["lists"])


def test_lists_check_reports_every_problem_with_file_and_line(
    env: dict[str, str], lists_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (lists_dir / "broken.yaml").write_text(
        "name: Broken\n"
        "allowed_domains: [broken.example]\n"
        "max_classification: SECRET\n"
        "colour: blue\n"
        "recipients:\n"
        "  - email: not-an-address\n"
        "  - email: someone@elsewhere.example\n"
        "  - email: a@broken.example\n"
        "  - email: A@broken.example\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(capsys, "lists", "check")
    assert code != 0
    for line in (3, 4, 6, 7, 9):
        assert f"broken.yaml:{line}:" in err, err
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"--title": "Strategy\r\nBcc: everyone@example.org"}, "--title"),
        ({"--url": "http://insecure.example/x"}, "--url"),
        ({"--lift": "2001-01-01 11:00"}, "in the past"),
        ({"--lift": "2030-03-31 01:30"}, "does not exist"),
        ({"--lift": "next tuesday"}, "--lift"),
        ({"--lists": "alpha,nosuchlist"}, "nosuchlist"),
        ({"--lists": "low"}, "cleared only to OFFICIAL"),
        ({"--classification": "TOP-SECRET"}, "--classification"),
        ({"--contact": "not an address"}, "--contact"),
        ({"--pdf": "missing.pdf"}, "missing.pdf"),
    ],
)
def test_queue_refuses_bad_input_with_a_clear_error_and_no_change(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    overrides: dict[str, str],
    expected: str,
) -> None:
    code, _, _ = run_cli(capsys, *queue_args(pack_files))  # the store exists, with one pack
    assert code == 0
    before = store_dump(Path(env["EMBARGO_BOT_DATABASE"]))
    code, out, err = run_cli(capsys, *queue_args(pack_files, **overrides))
    assert code != 0
    assert expected in err
    assert "Traceback" not in err and out == ""
    assert store_dump(Path(env["EMBARGO_BOT_DATABASE"])) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"<html>not a pdf</html>", "not a PDF"),
        (b"%PDF-1.4\n1 0 obj", "cut short"),
    ],
)
def test_queue_refuses_a_pdf_that_is_not_one(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    expected: str,
) -> None:
    pack_files.pdf.write_bytes(content)
    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code != 0 and expected in err
    with open_app_from_env() as app:
        assert app.store.packs() == []


def open_app_from_env() -> AbstractContextManager[App]:
    return open_app(load_settings(_env_file=None))


def test_queue_refuses_a_release_that_is_not_utf8_or_carries_the_live_link(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    pack_files.release.write_bytes("Line one\nCaf\xe9 on line two\n".encode("latin-1"))
    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code != 0 and "release.md:2: not UTF-8" in err

    pack_files.release.write_text(f"Read it at {LIVE_URL} from today.", encoding="utf-8")
    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code != 0 and "contains the live link" in err
    with open_app_from_env() as app:
        assert app.store.packs() == []


def test_queue_json_then_list_show_and_cancel(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, *queue_args(pack_files, **{"--lift": "2031-02-23 11:00"}), "--json"
    )
    assert code == 0
    queued = json.loads(out)
    pack_id = queued["id"]
    assert queued["lift_at"] == "2031-02-23T11:00:00.000000Z"
    assert queued["classification"] == "OFFICIAL-SENSITIVE"

    code, out, _ = run_cli(capsys, "list", "--json")
    listed = json.loads(out)
    assert [p["id"] for p in listed] == [pack_id]
    assert listed[0]["next_send"]["stage"] == "notice"

    code, out, _ = run_cli(capsys, "show", pack_id)
    assert code == 0 and pack_id in out and "11:00 GMT on Sunday 23 February 2031" in out

    code, out, _ = run_cli(capsys, "cancel", pack_id, "--json")
    assert code == 0 and json.loads(out)["state"] == "cancelled"
    code, out, _ = run_cli(capsys, "show", pack_id, "--json")
    shown = json.loads(out)
    assert {s["state"] for s in shown["stages"]} == {"cancelled"}
    assert shown["next_send"] is None

    code, _, err = run_cli(capsys, "cancel", pack_id)
    assert code != 0 and "cannot be withdrawn" in err
    code, _, err = run_cli(capsys, "show", "no-such-pack")
    assert code != 0 and "no pack 'no-such-pack'" in err


async def test_preview_writes_exactly_the_bytes_the_relay_then_receives(
    relay: StandInRelay,
    make_settings: Callable[..., Settings],
    make_request: Callable[..., Any],
    tmp_path: Path,
) -> None:
    settings = make_settings(relay)
    with open_app(settings) as app:
        # Room for the notice before the lift on a loaded machine: a notice the lift overtakes is
        # skipped, and the preview would then have one message more than the relay got.
        pack = queue(app, make_request(lift=at(datetime.now(UTC) + timedelta(seconds=3))))
        async with running(app):
            await wait_until(lambda: stages_closed(app, pack.id))
        files = preview(app, pack.id, list(StageKind), tmp_path / "preview")

    sent = {
        (item.rcpt_tos[0], item.data)
        for item in relay.received
        if b"X-Embargo-Stage: report" not in item.data
    }
    previewed = {(f.recipient, f.path.read_bytes()) for f in files}
    assert len(previewed) == 6
    assert previewed == sent


def test_preview_before_sending_writes_parseable_messages(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, out, _ = run_cli(capsys, *queue_args(pack_files), "--json")
    pack_id = json.loads(out)["id"]
    code, out, _ = run_cli(
        capsys, "preview", pack_id, "--stage", "notice", "--out", str(tmp_path / "p"), "--json"
    )
    assert code == 0
    written = json.loads(out)
    assert sorted(w["recipient"] for w in written) == [
        "one@alpha.example",
        "one@beta.example",
        "shared@alpha.example",
    ]
    for item in written:
        message = email.message_from_bytes(Path(item["path"]).read_bytes(), policy=policy.default)
        assert message["X-Embargo-Stage"] == "notice"
        assert message["To"].addresses[0].addr_spec == item["recipient"]


def test_a_wrong_key_is_refused_and_changes_nothing(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _, out, _ = run_cli(capsys, *queue_args(pack_files), "--json")
    pack_id = json.loads(out)["id"]
    before = store_dump(Path(env["EMBARGO_BOT_DATABASE"]))
    monkeypatch.setenv("EMBARGO_BOT_KEY", new_key())

    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code == 78 and "not the key the store was written with" in err
    code, _, err = run_cli(capsys, "preview", pack_id, "--out", str(tmp_path / "p"))
    assert code == 78 and "EMBARGO_BOT_KEY" in err
    assert store_dump(Path(env["EMBARGO_BOT_DATABASE"])) == before

    monkeypatch.delenv("EMBARGO_BOT_KEY")
    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code == 78 and "EMBARGO_BOT_KEY is not set" in err and "keygen" in err
    monkeypatch.setenv("EMBARGO_BOT_KEY", "not-a-key")
    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code == 78 and "not a valid key" in err and "not-a-key" not in err


def test_an_invalid_setting_is_one_line_naming_the_variable(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", "lots")
    code, _, err = run_cli(capsys, "list")
    assert code == 78
    assert err.strip().count("\n") == 0
    assert "EMBARGO_BOT_SMTP_PORT" in err and "Traceback" not in err


def test_keygen_prints_a_line_for_env(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "keygen")
    assert code == 0
    name, _, value = out.strip().partition("=")
    assert name == "EMBARGO_BOT_KEY"
    from cryptography.fernet import Fernet

    assert Fernet(value.encode()).decrypt(Fernet(value.encode()).encrypt(b"x")) == b"x"


def test_settings_come_from_a_dot_env_file_in_the_working_directory(
    tmp_path: Path, lists_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".env").write_text(
        f"EMBARGO_BOT_RECIPIENTS_DIR={lists_dir}\nUNRELATED_TOOL_SETTING=1\n", encoding="utf-8"
    )
    code, out, _ = run_cli(capsys, "lists", "check", "--json")
    assert code == 0
    assert set(json.loads(out)["lists"]) == {"alpha", "beta", "low"}


def stop_service(service: subprocess.Popen[str]) -> str:
    service.send_signal(signal.SIGTERM)
    try:
        _, log = service.communicate(timeout=15)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, log
    assert "service stopped" in log and "Traceback" not in log
    return log


def test_sigterm_finishes_the_message_in_flight_and_the_next_start_resumes(
    env: dict[str, str],
    lists_dir: Path,
    pack_files: PackFiles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_big_list(lists_dir, "many", 80)
    with StandInRelay(PacedHandler(0.02)) as relay:
        env = {**env, "EMBARGO_BOT_SMTP_PORT": str(relay.port), "EMBARGO_BOT_SMTP_CONNECTIONS": "2"}
        _, out, _ = run_cli(capsys, *queue_args(pack_files, **{"--lists": "many"}), "--json")
        pack_id = json.loads(out)["id"]

        service = start_service(env, tmp_path)
        deadline = time.monotonic() + 10
        while len(relay.received) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        log = stop_service(service)
        assert "paused" in log and RELEASE_SECRET_WORD not in log

        with open_app_from_env() as app:
            stage = app.store.stage_of(pack_id, StageKind.NOTICE)
            sent = deliveries_of(app, pack_id, StageKind.NOTICE, DeliveryState.SENT)
            pending = deliveries_of(app, pack_id, StageKind.NOTICE, DeliveryState.PENDING)
        assert stage.state is StageState.SCHEDULED
        assert pending, "the stop landed mid-stage"
        # The operator is told what the next start has to do.
        left = f"service stopped: {len(pending)} message(s) of 1 stage(s) left for the next start"
        assert left in log, log
        # Every message the relay took was recorded: the ones in flight were finished.
        assert len(sent) == len(relay.received)

        stop_service_after = start_service(env, tmp_path)
        deadline = time.monotonic() + 15
        while len(notices(relay)) < 80 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_service(stop_service_after)

    rcpts = [item.rcpt_tos[0] for item in notices(relay)]
    assert len(rcpts) == 80 and len(set(rcpts)) == 80, "each partner exactly once"


RELEASE_SECRET_WORD = "Kestrel-Harbour-7"


def notices(relay: StandInRelay) -> list[Received]:
    """What partners received, leaving out the delivery reports to the official."""
    return [item for item in relay.received if b"X-Embargo-Stage: notice" in item.data]


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "embargo_bot", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for command in ("queue", "list", "show", "cancel", "preview", "run", "demo", "keygen"):
        assert command in result.stdout


def test_the_process_entry_point_writes_everything_and_exits_with_the_commands_code(
    cli: Cli,
) -> None:
    """`python -m embargo_bot` skips the collector at exit: nothing written may depend on it."""
    in_process = cli.run("list", "--json")
    done = subprocess.run(
        [sys.executable, "-m", "embargo_bot", "list", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == in_process[0] == 0
    # The whole document, one pack in it (its countdowns move between the two runs).
    assert [p["id"] for p in json.loads(done.stdout)] == [
        p["id"] for p in json.loads(in_process[1])
    ]
    missing = subprocess.run(
        [sys.executable, "-m", "embargo_bot", "show", "no-such-pack"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == cli.run("show", "no-such-pack")[0] != 0
    assert missing.stderr.startswith("embargo-bot: ") and missing.stderr.count("\n") == 1
    assert gc.isenabled()  # main, called in this process, left the collector as it was


def test_the_shipped_env_example_is_valid_and_documents_every_setting(tmp_path: Path) -> None:
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env").write_text(example, encoding="utf-8")
    settings = load_settings()
    assert settings.smtp_host == "relay.example.org"
    assert settings.smtp_username is None and settings.smtp_ca_file is None
    assert settings.templates_dir is None and settings.key is None
    documented = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    for field in Settings.model_fields:
        variable = "EMBARGO_BOT_FROM" if field == "sender" else f"EMBARGO_BOT_{field.upper()}"
        assert variable in documented


def test_the_official_commands_for_changing_an_embargo(
    env: dict[str, str],
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_REQUIRE_CLEARANCE", "true")
    code, out, _ = run_cli(
        capsys,
        *queue_args(pack_files, **{"--lists": "alpha", "--lift": "2031-02-23 11:00"}),
        "--notice",
        "beta@2031-02-22 16:15",
        "--json",
    )
    assert code == 0
    queued = json.loads(out)
    pack_id = queued["id"]
    assert [s["label"] for s in queued["stages"]] == ["notice wave 1", "notice wave 2", "live"]
    assert queued["clearance"] == {"needed": True, "cleared_at": None, "cleared_by": None}

    # The same OS account that queued it cannot clear it.
    code, _, err = run_cli(capsys, "approve", pack_id)
    assert code != 0 and "different person" in err

    code, out, _ = run_cli(capsys, "reschedule", pack_id, "--lift", "2031-02-24 09:30", "--json")
    assert code == 0 and json.loads(out)["lift_at"] == "2031-02-24T09:30:00.000000Z"
    code, _, err = run_cli(capsys, "reschedule", pack_id, "--lift", "2031-02-22 12:00")
    assert code != 0 and "must go before the lift" in err

    new_release = tmp_path / "v2.md"
    new_release.write_text("Revised wording.\n", encoding="utf-8")
    code, out, _ = run_cli(
        capsys, "amend", pack_id, "--release", str(new_release), "--note", "Wording", "--json"
    )
    assert code == 0
    versions = json.loads(out)["versions"]
    assert [(v["version"], v["changed"], v["note"]) for v in versions] == [
        (1, [], None),
        (2, ["release"], "Wording"),
    ]
    code, _, err = run_cli(capsys, "amend", pack_id, "--note", "nothing")
    assert code != 0 and "nothing to amend" in err

    code, out, _ = run_cli(capsys, "show", pack_id)
    assert "AWAITING CLEARANCE" in out and "notice wave 2" in out and "Wording" in out

    code, out, _ = run_cli(capsys, "cancel", pack_id, "--reason", "Postponed", "--json")
    assert code == 0
    assert json.loads(out)["withdrawn"]["reason"] == "Postponed"


async def test_preview_send_to_mails_a_listed_checker(
    env: dict[str, str],
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run_cli(capsys, *queue_args(pack_files), "--json")
    pack_id = json.loads(out)["id"]
    with StandInRelay() as relay:
        monkeypatch.setenv("EMBARGO_BOT_SMTP_PORT", str(relay.port))
        code, out, _ = await asyncio.to_thread(
            run_cli, capsys, "preview", pack_id, "--send-to", "one@beta.example", "--json"
        )
        assert code == 0 and json.loads(out)["state"] == "sent"
        code, _, err = await asyncio.to_thread(
            run_cli, capsys, "preview", pack_id, "--send-to", "nobody@nowhere.example"
        )
        assert code != 0 and "not on any valid list" in err
    assert [item.rcpt_tos for item in relay.received] == [("one@beta.example",)]


def test_queue_warns_when_the_rate_limit_makes_the_live_email_late(
    env: dict[str, str],
    lists_dir: Path,
    pack_files: PackFiles,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_big_list(lists_dir, "crowd", 150)
    monkeypatch.setenv("EMBARGO_BOT_SMTP_RATE", "30")
    monkeypatch.setenv("EMBARGO_BOT_LIVE_WITHIN", "2m")
    code, out, err = run_cli(capsys, *queue_args(pack_files, **{"--lists": "crowd"}), "--json")
    assert code == 0
    assert "warning: at 30 a minute" in err and "150 recipients takes 5m" in err
    assert "EMBARGO_BOT_SMTP_MAX_RECIPIENTS" in err, "the warning names the way out"
    stages = {s["stage"]: s for s in json.loads(out)["stages"]}
    assert stages["live"]["takes_seconds"] == 300.0

    # 50 recipients a message: 3 messages, 6 s at 30 a minute, and no warning.
    monkeypatch.setenv("EMBARGO_BOT_SMTP_MAX_RECIPIENTS", "50")
    code, out, err = run_cli(capsys, *queue_args(pack_files, **{"--lists": "crowd"}), "--json")
    assert code == 0 and "warning" not in err
    stages = {s["stage"]: s for s in json.loads(out)["stages"]}
    assert stages["live"]["takes_seconds"] == 6.0
    monkeypatch.setenv("EMBARGO_BOT_LIVE_WITHIN", "5s")
    code, _, err = run_cli(capsys, *queue_args(pack_files, **{"--lists": "crowd"}))
    assert code == 0 and "150 recipients in 3 messages takes 6s" in " ".join(err.split())
    monkeypatch.delenv("EMBARGO_BOT_SMTP_MAX_RECIPIENTS")

    monkeypatch.setenv("EMBARGO_BOT_LIVE_WITHIN", "10m")
    code, _, err = run_cli(capsys, *queue_args(pack_files, **{"--lists": "crowd"}))
    assert code == 0 and "warning" not in err


def test_the_contact_must_be_in_house_since_it_gets_the_delivery_reports(
    env: dict[str, str], pack_files: PackFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, *queue_args(pack_files, **{"--contact": "me@elsewhere.example"}))
    assert code != 0 and "--contact" in err and "example.org" in err
    code, _, _ = run_cli(capsys, *queue_args(pack_files, **{"--contact": "press@ops.example.org"}))
    assert code == 0


SHIPPED_LISTS = REPO / "recipients"


def rendered(renderable: Any, width: int) -> str:
    """What a terminal of ``width`` columns shows."""
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    Console(file=buffer, width=width, color_system=None).print(renderable)
    return buffer.getvalue()


@pytest.fixture
def cleared_app(make_settings: Callable[..., Settings]) -> Any:
    with open_app(make_settings(recipients_dir=SHIPPED_LISTS, require_clearance=True)) as app:
        yield app


def readme_pack(app: App, make_request: Callable[..., Any], *, first: str = "now") -> Any:
    lift = datetime.now(UTC) + timedelta(hours=20)
    return queue(
        app,
        make_request(
            lists=None,
            notice_at=None,
            waves=(
                f"police-scotland,nca,copfs,hmrc@{first}",
                f"devolved@{at(lift - timedelta(hours=2))}",
            ),
            lift=at(lift),
        ),
    )


def test_a_cancelled_pack_reads_cancelled_in_list_and_show_never_awaiting_clearance(
    cleared_app: App, make_request: Callable[..., Any]
) -> None:
    from embargo_bot.cli import output
    from embargo_bot.officials.actions import cancel_pack
    from embargo_bot.officials.status import all_statuses, pack_status

    app = cleared_app
    pack = readme_pack(app, make_request, first=at(datetime.now(UTC) + timedelta(hours=1)))
    cancel_pack(app, pack.id, by="frank")
    now, zone = app.clock(), app.settings.zone
    for text in (
        rendered(output.packs_table(all_statuses(app), now=now, zone=zone), 160),
        rendered(output.status_view(pack_status(app, pack.id), now=now, zone=zone), 160),
    ):
        assert "cancelled" in text
        assert "awaiting clearance" not in text.lower()


def test_a_stage_past_its_time_while_awaiting_clearance_has_no_negative_countdown(
    cleared_app: App, make_request: Callable[..., Any]
) -> None:
    from embargo_bot.cli import output
    from embargo_bot.officials.status import all_statuses, pack_status

    app = cleared_app
    pack = readme_pack(app, make_request)
    zone = app.settings.zone
    for later, words in (
        (timedelta(seconds=1), "due now"),
        (timedelta(minutes=1, seconds=9), "overdue by 1m 9s"),
    ):
        now = app.clock() + later
        table = rendered(output.packs_table(all_statuses(app), now=now, zone=zone), 80)
        shown = rendered(output.status_view(pack_status(app, pack.id), now=now, zone=zone), 80)
        assert f"{words}, awaiting clearance" in table
        assert "awaiting clearance" in shown.lower()
        for text in (table, shown):
            assert "-1s" not in text and "-1m" not in text


@pytest.mark.parametrize("width", [80, 160])
def test_tables_never_cut_ids_or_list_names(
    cleared_app: App, make_request: Callable[..., Any], width: int
) -> None:
    from embargo_bot.cli import output
    from embargo_bot.lists.catalogue import load_lists
    from embargo_bot.officials.status import all_statuses, pack_status

    app = cleared_app
    pack = readme_pack(app, make_request)
    assert pack.id.startswith("serious-organised-crime-")
    now, zone = app.clock(), app.settings.zone
    status = pack_status(app, pack.id)
    views = {
        "timetable": rendered(output.timetable(status, zone=zone), width),
        "show": rendered(output.status_view(status, now=now, zone=zone), width),
        "list": rendered(output.packs_table(all_statuses(app), now=now, zone=zone), width),
        "lists check": rendered(output.catalogue_table(load_lists(SHIPPED_LISTS)), width),
    }
    if width == 160:
        assert "┃ Pack" in views["list"] and "┃ Stage" in views["timetable"], "a table when it fits"
    for name, text in views.items():
        assert "…" not in text, (name, text)
        assert all(len(line) <= width for line in text.splitlines()), (name, text)
    for name in ("show", "list"):
        assert pack.id in views[name], views[name]
    for name in ("timetable", "show"):
        for key in ("police-scotland", "nca", "copfs", "hmrc", "devolved"):
            assert key in views[name], (name, views[name])
        for header in ("Sent", "Failed", "Pending"):
            assert header in views[name]
    for key in ("comms-subgroup", "police-scotland", "devolved"):
        assert key in views["lists check"], views["lists check"]


@pytest.mark.parametrize(
    "command",
    [
        ["show", "no-such-pack"],
        ["show", "no-such-pack", "--json"],
        ["cancel", "no-such-pack"],
        ["approve", "no-such-pack"],
        ["reschedule", "no-such-pack", "--lift", "2031-02-24 11:00"],
        ["amend", "no-such-pack", "--title", "New", "--note", "x"],
    ],
)
def test_an_unknown_pack_exits_not_found(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    from embargo_bot.domain.errors import NotFoundError, StoreError

    assert issubclass(NotFoundError, StoreError)
    assert run_cli(capsys, *queue_args(pack_files))[0] == 0  # a store, with one pack
    code, out, err = run_cli(capsys, *command)
    assert code == 66, err  # EX_NOINPUT, not 74 (EX_IOERR): the store is fine
    assert "no pack 'no-such-pack'" in err and "embargo-bot list" in err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    ("extra", "overrides", "option"),
    [
        ((), {"--lists": "alpha,btea"}, "--lists"),
        (("--notice", "btea@now"), {"--lists": "alpha"}, "--notice 'btea@now'"),
    ],
)
def test_an_unknown_list_names_its_option_and_the_nearest_name(
    env: dict[str, str],
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    overrides: dict[str, str],
    option: str,
) -> None:
    code, out, err = run_cli(capsys, *queue_args(pack_files, **overrides), *extra)
    assert code != 0 and out == ""
    assert f"{option}: no list 'btea'" in err and "did you mean beta?" in err, err


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["list", "--json"],
        ["show", "some-pack"],
        ["approve", "some-pack"],
        ["cancel", "some-pack"],
        ["reschedule", "some-pack", "--lift", "2030-01-01 10:00"],
        ["amend", "some-pack", "--note", "typo"],
        ["preview", "some-pack", "--out", "previews"],
        ["audit", "verify"],
        ["audit", "export"],
        ["rekey"],
    ],
)
def test_commands_other_than_run_and_queue_never_create_a_store(
    command: list[str],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Run from a folder holding no store, with the default (relative) setting.
    monkeypatch.delenv("EMBARGO_BOT_DATABASE")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    code, out, err = run_cli(capsys, *command)

    assert code == 66, err
    assert f"no store at embargo-bot.db in {elsewhere}" in err
    assert "EMBARGO_BOT_DATABASE" in err and "Traceback" not in err
    assert out == ""
    assert list(elsewhere.iterdir()) == [], "created nothing"


def test_a_missing_store_named_by_the_setting_is_not_created_either(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(tmp_path.rglob("*"))
    code, _, err = run_cli(capsys, "show", "some-pack")
    assert code == 66
    assert f"no store at {tmp_path / 'store.db'}" in err
    assert sorted(tmp_path.rglob("*")) == before


def test_queue_creates_the_store_it_is_pointed_at(
    env: dict[str, str], pack_files: PackFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, *queue_args(pack_files))
    assert code == 0, err
    assert (tmp_path / "store.db").exists()
    code, out, _ = run_cli(capsys, "list", "--json")
    assert code == 0 and len(json.loads(out)) == 1
