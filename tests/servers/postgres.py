"""A real PostgreSQL 15 server for the test session, and a fresh database for each test.

A pytest plugin: ``pytest_plugins = ["servers.postgres"]`` in the top
conftest (``tests/store/conftest.py`` loads it itself when nobody has).

Debian's ``postgresql-15`` puts ``initdb`` and ``pg_ctl`` off PATH (``pg_config
--bindir``), and ``initdb`` refuses root, so as root the server runs as the
``postgres`` user, from a directory of its own under /tmp (pytest's temporary
directories are private to root). It listens on a unix socket there and on
127.0.0.1 at a free port: local connections are trusted, TCP ones need a
password (scram), so the password paths are tested for real. fsync is off:
a test server need not survive a power cut.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

SUPERUSER = "postgres"
# A role with a password, for tests of the password paths (TCP only).
APP_ROLE, APP_PASSWORD = "embargo", "Test-Only-Pw-7"
_names = itertools.count(1)


def _bindir() -> Path | None:
    candidates = []
    if found := shutil.which("pg_config"):
        done = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(done.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "initdb").exists()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """One running server: its socket directory, TCP port and binaries."""

    bindir: Path
    root: Path
    port: int
    run_as: list[str] = field(default_factory=list)
    started_in: float = 0.0

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = SUPERUSER) -> str:
        """libpq form over the unix socket, as EMBARGO_BOT_DATABASE takes it."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, database: str, *, user: str = APP_ROLE) -> str:
        """libpq form over TCP to 127.0.0.1, without the password (scram is required)."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, *statements: str, database: str = SUPERUSER) -> list[tuple[object, ...]]:
        """Run statements as the superuser, each in its own transaction; the last one's rows."""
        rows: list[tuple[object, ...]] = []
        with psycopg.connect(self.url(database), autocommit=True) as connection:
            for statement in statements:
                cursor = connection.execute(statement.encode())
                rows = cursor.fetchall() if cursor.description else []
        return rows

    def new_database(self, *, template: str = "template0") -> str:
        """A fresh database (a copy of ``template``), owned by the password role; its name."""
        name = f"test_{os.getpid()}_{next(_names)}"
        self.sql(
            f'CREATE DATABASE "{name}" OWNER {APP_ROLE} TEMPLATE "{template}" STRATEGY FILE_COPY'
        )
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *arguments: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *arguments],
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, as in a real restart."""
        self.pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.root / "server.log"))


def start_server() -> PostgresServer:
    """Start a throwaway server, or skip the test with the reason it cannot run."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql-15); .ci/run does it")
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="embargo-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SUPERUSER)
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run the server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", SUPERUSER, "--"]
    server = PostgresServer(bindir=bindir, root=root, port=_free_port(), run_as=run_as)
    began = time.monotonic()
    try:
        subprocess.run(
            [*run_as, "mkdir", "-m", "0700", str(server.socket_dir)],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                *("-D", str(server.data_dir), "-U", SUPERUSER, "-E", "UTF8", "--no-sync"),
                *("--auth-local=trust", "--auth-host=scram-sha-256"),
            ],
            check=True,
            capture_output=True,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} "
            f"-c unix_socket_directories={server.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        server.pg_ctl("start", "-w", "-o", options, "-l", str(root / "server.log"))
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        reason = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        pytest.skip(f"cannot start a PostgreSQL server: {' '.join(reason) or exc}")
    server.sql(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
    server.started_in = time.monotonic() - began
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_server()
    try:
        yield server
    finally:
        try:
            server.pg_ctl("stop", "-m", "immediate", "-w")
        finally:
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The socket URL of a fresh database for this test, dropped after it."""
    name = postgres_server.new_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
