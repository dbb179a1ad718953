"""Shared fixtures: a real SMTP relay on 127.0.0.1, a real SQLite file, real lists."""

from __future__ import annotations

import asyncio
import email
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from embargo_bot.app import App, open_app
from embargo_bot.cli.main import main
from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.devtools.standin_relay import CapturingHandler, Received, StandInRelay
from embargo_bot.domain.packs import OPEN_STAGE_STATES, Delivery, DeliveryState, Pack, StageKind
from embargo_bot.officials.actions import queue_pack
from embargo_bot.officials.fields import InputFiles
from embargo_bot.officials.identity import current_user
from embargo_bot.officials.intake import QueueRequest
from embargo_bot.security.vault import new_key
from embargo_bot.settings import Settings, load_settings

# Real servers the tests start themselves: a publication site over HTTPS, Dovecot.
pytest_plugins = ["servers.https_site", "servers.dovecot", "servers.postgres"]

RELEASE_SECRET = "Kestrel-Harbour-7 is the operation name nobody may see early."
PDF_SECRET = "PDF-ONLY-MARKER-Quillwort-42"
SOCIAL_TEXT = "Partners publish a refreshed strategy today. #SOC"
LIVE_URL = "https://www.gov.example/isbn/9781802019445"

ALPHA = """\
name: Alpha Agency
allowed_domains: [alpha.example]
max_classification: OFFICIAL-SENSITIVE
recipients:
  - email: one@alpha.example
    name: Alpha One
  - email: shared@alpha.example
    name: Shared Mailbox
"""

BETA = """\
name: Beta Agency
allowed_domains: [beta.example, alpha.example]
max_classification: OFFICIAL-SENSITIVE
recipients:
  - email: one@beta.example
  - email: Shared@Alpha.example
"""

LOW = """\
name: Low Clearance
allowed_domains: [low.example]
max_classification: OFFICIAL
recipients:
  - email: press@low.example
"""


# A queue request and its files that pass every check: tests of one check change one field.
URL = "https://www.gov.scot/isbn/9781802019445"
PDF = sample_pdf(["Serious Organised Crime Strategy", "February 2022"])
RELEASE = "# Strategy published\n\nThe **new** strategy sets out\nfour aims.\n"
SOCIAL = "New strategy out today #SOC\n"
GOOD_REQUEST = QueueRequest(
    title="Serious Organised Crime Strategy",
    pdf=Path("strategy.pdf"),
    release=Path("release.md"),
    social=Path("social.txt"),
    url=URL,
    lift="2022-02-23 11:00",
    lists="nca,copfs",
    notice_at="2022-02-22 09:00",
    classification="official-sensitive",
    reference="SG/2022/14",
    contact=None,
)
GOOD_FILES = InputFiles(pdf=PDF, release=RELEASE.encode(), social=SOCIAL.encode())


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's EMBARGO_BOT_* variables or .env leak into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("EMBARGO_BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def relay() -> Iterator[StandInRelay]:
    with StandInRelay() as server:
        yield server


@pytest.fixture
def lists_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "recipients"
    directory.mkdir()
    for name, text in (("alpha", ALPHA), ("beta", BETA), ("low", LOW)):
        (directory / f"{name}.yaml").write_text(dedent(text), encoding="utf-8")
    return directory


@pytest.fixture
def key() -> str:
    return new_key()


@pytest.fixture
def make_settings(tmp_path: Path, lists_dir: Path, key: str) -> Callable[..., Settings]:
    def build(relay: StandInRelay | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "_env_file": None,
            "database": tmp_path / "store.db",
            "recipients_dir": lists_dir,
            "key": key,
            "sender": "Organised Crime Unit <ocu@example.org>",
            "smtp_host": "127.0.0.1",
            "smtp_port": relay.port if relay else 2525,
            "smtp_security": "none",
            "poll_interval": 0.1,
            "lease_seconds": 5,
            "require_clearance": False,
            # The packs' live URLs are on .example, which no check can reach: tests of the
            # link check (test_link_gate.py) turn it on with a site of their own.
            "link_check": False,
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@dataclass
class PackFiles:
    pdf: Path
    release: Path
    social: Path
    pdf_bytes: bytes = field(repr=False)


@pytest.fixture
def pack_files(tmp_path: Path) -> PackFiles:
    files = tmp_path / "input"
    files.mkdir()
    pdf_bytes = sample_pdf(["Serious Organised Crime Strategy", PDF_SECRET])
    (files / "strategy.pdf").write_bytes(pdf_bytes)
    (files / "release.md").write_text(
        f"# Strategy refreshed\n\nPartners will **work together**.\n\n{RELEASE_SECRET}\n",
        encoding="utf-8",
    )
    (files / "social.txt").write_text(SOCIAL_TEXT, encoding="utf-8")
    return PackFiles(
        pdf=files / "strategy.pdf",
        release=files / "release.md",
        social=files / "social.txt",
        pdf_bytes=pdf_bytes,
    )


def write_big_list(lists_dir: Path, key: str, count: int) -> list[str]:
    """A list of ``count`` partners at ``KEY.example``; returns their addresses."""
    addresses = [f"partner{n:03d}@{key}.example" for n in range(count)]
    entries = "\n".join(f"  - email: {address}" for address in addresses)
    (lists_dir / f"{key}.yaml").write_text(
        f"name: {key.title()}\nallowed_domains: [{key}.example]\n"
        f"max_classification: OFFICIAL-SENSITIVE\nrecipients:\n{entries}\n",
        encoding="utf-8",
    )
    return addresses


def at(moment: datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def make_request(pack_files: PackFiles) -> Callable[..., QueueRequest]:
    def build(**overrides: Any) -> QueueRequest:
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "title": "Serious Organised Crime Strategy",
            "pdf": pack_files.pdf,
            "release": pack_files.release,
            "social": pack_files.social,
            "url": LIVE_URL,
            "lift": at(now + timedelta(hours=1)),
            "lists": "alpha,beta",
            "notice_at": "now",
            "classification": "OFFICIAL-SENSITIVE",
            "reference": "9781802019445",
            "contact": "ocu@example.org",
        }
        values.update(overrides)
        return QueueRequest(**values)

    return build


def queue(app: App, request: QueueRequest) -> Pack:
    return queue_pack(app, request, created_by=current_user())


@asynccontextmanager
async def running(app: App) -> AsyncIterator[None]:
    """The real service, in this event loop, for the length of the block."""
    service = app.service()
    task = asyncio.create_task(service.run())
    try:
        yield
    finally:
        service.stop()
        await asyncio.wait_for(task, timeout=15)


async def wait_until(
    condition: Callable[[], bool], *, within: float = 10.0, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def stages_closed(app: App, pack_id: str) -> bool:
    return all(stage.state not in OPEN_STAGE_STATES for stage in app.store.stages(pack_id))


def stage_closed(app: App, pack_id: str, kind: StageKind) -> bool:
    """There is a stage of this kind, and every one has finished (one wave, or several)."""
    states = [stage.state for stage in app.store.stages(pack_id) if stage.kind is kind]
    return bool(states) and all(state not in OPEN_STAGE_STATES for state in states)


def deliveries_of(
    app: App, pack_id: str, kind: StageKind, state: DeliveryState | None = None
) -> list[Delivery]:
    return [d for d in app.store.deliveries(pack_id, state=state) if d.kind is kind]


def store_dump(path: Path) -> list[str]:
    """Every row of the store as SQL text: equal dumps mean nothing changed."""
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


@pytest.fixture
def app_with_relay(relay: StandInRelay, make_settings: Callable[..., Settings]) -> Iterator[App]:
    with open_app(make_settings(relay)) as app:
        yield app


class RefusingHandler(CapturingHandler):
    """A relay that refuses chosen recipients with a permanent error."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class CountingHandler(CapturingHandler):
    """A relay that also counts the SMTP sessions opened to it (one EHLO each), and
    which sessions carried each stage's messages (by X-Embargo-Stage)."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0
        self.carried: dict[str, set[object]] = {}

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        stage = email.message_from_bytes(envelope.content)["X-Embargo-Stage"] or ""
        self.carried.setdefault(stage, set()).add(session.peer)  # the client's port: one a session
        return await super().handle_DATA(server, session, envelope)


class PacedHandler(CapturingHandler):
    """Takes a moment over each message, as a real relay does, so a stop lands mid-stage."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause = pause

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.pause)
        return await super().handle_DATA(server, session, envelope)


def start_service(env: dict[str, str], cwd: Path, *, log: bool = True) -> subprocess.Popen[str]:
    """``embargo-bot run`` as its own process; its log on stderr if ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "embargo_bot", "run"],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if log else subprocess.DEVNULL,
        text=True,
    )


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lists_dir: Path, key: str
) -> dict[str, str]:
    """The settings a user would put in .env, set in the environment."""
    values = {
        "EMBARGO_BOT_DATABASE": str(tmp_path / "store.db"),
        "EMBARGO_BOT_RECIPIENTS_DIR": str(lists_dir),
        "EMBARGO_BOT_KEY": key,
        "EMBARGO_BOT_FROM": "Organised Crime Unit <ocu@example.org>",
        "EMBARGO_BOT_SMTP_HOST": "127.0.0.1",
        "EMBARGO_BOT_SMTP_PORT": "2525",
        "EMBARGO_BOT_SMTP_SECURITY": "none",
        "EMBARGO_BOT_REQUIRE_CLEARANCE": "false",
        "EMBARGO_BOT_LINK_CHECK": "false",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def queue_args(files: PackFiles, *extra: str, joined: bool = False, **overrides: str) -> list[str]:
    """``queue`` with good values, each option replaceable (``**{"--lists": "x"}``).

    ``joined`` writes ``--option=value``: a value may start with "-", as a hostile one will.
    """
    options = {
        "--title": "Serious Organised Crime Strategy",
        "--pdf": str(files.pdf),
        "--release": str(files.release),
        "--social": str(files.social),
        "--url": LIVE_URL,
        "--lift": at(datetime.now(UTC) + timedelta(hours=1)),
        "--lists": "alpha,beta",
    }
    options.update(overrides)
    if joined:
        return ["queue", *extra, *(f"{option}={value}" for option, value in options.items())]
    args = ["queue", *extra]
    for option, value in options.items():
        args += [option, value]
    return args


def parse(item: Received) -> EmailMessage:
    """A message as the relay received it."""
    message = email.message_from_bytes(item.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


# Headers embargo-bot writes, and those of the MIME structure under them.
EXPECTED_HEADERS = {
    "date",
    "message-id",
    "to",
    "from",
    "reply-to",
    "subject",
    "x-embargo-pack",
    "x-embargo-stage",
    "x-embargo-lift",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "sio-label",
}
# Characters that mail programs or terminals take as the end of a line.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# The only headers a MIME part of ours carries.
PART_HEADERS = {
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "mime-version",
}


@dataclass
class Cli:
    database: Path
    files: PackFiles
    work: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def queue(self, **overrides: str) -> tuple[int, str, str]:
        return self.run(*queue_args(self.files, "--json", joined=True, **overrides))

    def dump(self) -> list[str]:
        return store_dump(self.database)

    def assert_refused(self, result: tuple[int, str, str], before: list[str]) -> str:
        """A clear error and nothing else; returns stderr."""
        code, out, err = result
        assert code != 0
        assert out == ""
        assert "Traceback" not in err
        assert err.startswith("embargo-bot: ") and err.endswith("\n")
        assert all(line.strip() for line in err.splitlines())
        # Values are echoed quoted: no raw control character reaches the terminal.
        assert not any(unicodedata.category(ch) == "Cc" for ch in err.replace("\n", "")), err
        assert self.dump() == before
        return err

    def preview(self, pack_id: str) -> list[EmailMessage]:
        out_dir = self.work / f"preview-{pack_id}"
        code, out, err = self.run("preview", pack_id, "--out", str(out_dir), "--json")
        assert code == 0, err
        written = json.loads(out)
        assert written
        return [assert_real_headers(Path(item["path"]).read_bytes()) for item in written]


@pytest.fixture
def cli(
    env: dict[str, str],
    tmp_path: Path,
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """The environment a user sets, and a store that already holds one good pack."""
    work = tmp_path / "hostile"
    work.mkdir()
    cli = Cli(tmp_path / "store.db", pack_files, work, capsys)
    code, _, err = cli.queue()
    assert code == 0, err
    return cli


HEADER_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


def assert_real_headers(data: bytes) -> EmailMessage:
    """Every header line is one that embargo-bot meant to write, and nothing was injected."""
    head, blank, _ = data.partition(b"\r\n\r\n")
    assert blank, "no blank line ends the headers"
    names = []
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, line
        assert len(line) <= 998, len(line)
        assert all(byte < 0x80 for byte in line), line  # non-ASCII only as RFC 2047 words
        if line[:1] in (b" ", b"\t"):
            assert names, "a continuation line before any header"
            continue
        assert HEADER_FIELD.match(line), line
        names.append(line.split(b":", 1)[0].decode().lower())
    assert set(names) <= EXPECTED_HEADERS, names
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_all("Bcc") is None and message.get_all("Cc") is None
    for name in ("Subject", "From", "To", "Reply-To", "X-Embargo-Pack"):
        try:
            values = message.get_all(name)
        except ValueError as exc:  # e.g. an encoded word in a display name decodes to CR LF
            pytest.fail(f"the {name} header cannot be read back: {exc}")
        assert values is not None and len(values) == 1, (name, values)
        assert not any(ch in LINE_BREAKS for ch in str(values[0])), (name, values)
    assert len(message["To"].addresses) == 1
    for part in message.walk():
        if part is not message:
            assert {name.lower() for name in part} <= PART_HEADERS, part.keys()
    return message


@asynccontextmanager
async def loop_lateness() -> AsyncIterator[list[tuple[float, float]]]:
    """How late the event loop is, sampled every 20 ms while inside: (when, seconds late)."""
    lags: list[tuple[float, float]] = []

    async def tick() -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(0.02)
            lags.append((began, time.monotonic() - began - 0.02))

    ticker = asyncio.create_task(tick())
    try:
        yield lags
    finally:
        ticker.cancel()


async def loop_lateness_while_held(
    app: App,
    relay: StandInRelay,
    stage_id: int,
    hold: Callable[[], AbstractContextManager[object]],
    *,
    held_for: float = 1.5,
) -> list[float]:
    """Send the stage; once 10 messages are in, keep ``hold()`` entered for ``held_for``
    seconds on a thread (a lock on the store). How late the loop was meanwhile, each 20 ms."""
    runner = app.runner()
    window: list[float] = []

    def holding() -> None:
        with hold():
            window.append(time.monotonic())
            time.sleep(held_for)
            window.append(time.monotonic())

    async def held_mid_stage() -> None:
        await wait_until(lambda: len(relay.received) >= 10, within=10)
        await asyncio.to_thread(holding)

    try:
        async with loop_lateness() as lags:
            await asyncio.gather(runner.run(stage_id, asyncio.Event()), held_mid_stage())
    finally:
        await runner.close()
    return [lag for began, lag in lags if window[0] <= began <= window[1]]
