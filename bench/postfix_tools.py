"""Postfix's smtp-sink (the relay every part sends to) and smtp-source (the baseline).

Both come from Debian's ``postfix`` package and live in /usr/sbin, which is
often not on a non-root PATH, so they are looked up there too.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from errors import BenchError

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/usr/lib/postfix/sbin"]
)
_MESSAGES = re.compile(rb"mesg=(\d+)")
_START_WITHIN = 5.0


def postfix_tool(name: str) -> str:
    found = shutil.which(name, path=_SEARCH_PATH)
    if found is None:
        raise BenchError(
            f"{name} not found: install Debian's postfix package "
            "(DEBIAN_FRONTEND=noninteractive apt-get install -y postfix)"
        )
    return found


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class SinkCount:
    """The sink's running message counter, as last printed, and when we read it."""

    at: float  # time.time()
    messages: int


class SmtpSink:
    """smtp-sink on a free 127.0.0.1 port, for the length of a ``with`` block.

    ``-c`` makes the sink print its counters after every message; a thread
    keeps the latest one, so a part can check the sink got what the sender
    says it sent, without trusting the sender's own records.
    """

    def __init__(self, backlog: int = 1000) -> None:
        self.port = free_loopback_port()
        self._backlog = backlog
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._counts: list[SinkCount] = [SinkCount(at=time.time(), messages=0)]
        self._lock = threading.Lock()

    def __enter__(self) -> SmtpSink:
        command = [postfix_tool("smtp-sink"), "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
        command += [f"127.0.0.1:{self.port}", str(self._backlog)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        self._reader = threading.Thread(target=self._read_counters, daemon=True)
        self._reader.start()
        try:
            self._wait_until_listening()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    @property
    def count(self) -> SinkCount:
        with self._lock:
            return self._counts[-1]

    def messages_before(self, moment: float) -> int:
        """The counter as last printed before ``moment`` (a ``time.time()``).

        The reader thread stamps a count when it gets it, so under load a
        stamp can be late by a scheduling slice (a few ms), never early.
        """
        with self._lock:
            earlier = [count.messages for count in self._counts if count.at < moment]
        return earlier[-1] if earlier else 0

    def wait_for_messages(self, total: int, within: float) -> int:
        """The counter once it reaches ``total`` (or when ``within`` runs out)."""
        deadline = time.monotonic() + within
        while self.count.messages < total and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count.messages

    def _wait_until_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_WITHIN
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BenchError(f"smtp-sink exited at start (status {self._process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise BenchError(f"smtp-sink did not listen on 127.0.0.1:{self.port} within 5 s")

    def _read_counters(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        # os.read returns whatever the sink has printed so far, without waiting to fill a buffer.
        descriptor = self._process.stdout.fileno()
        while chunk := os.read(descriptor, 65536):
            found = _MESSAGES.findall(chunk)
            if found:
                with self._lock:
                    self._counts.append(SinkCount(at=time.time(), messages=int(found[-1])))

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@dataclass(frozen=True)
class SourceRun:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def smtp_source(
    port: int, *, message_file: Path, count: int, concurrency: int, sender: str, recipient: str
) -> SourceRun:
    """Send ``count`` copies of a message with smtp-source, timed from start to exit.

    ``-d`` keeps each session open for the next message, as the service
    reuses its connections; ``-F`` sends the exact message file (with LF
    line ends: smtp-source appends CRLF to each line itself).
    """
    command = [
        postfix_tool("smtp-source"),
        "-d",
        "-s",
        str(concurrency),
        "-m",
        str(count),
        "-F",
        str(message_file),
        "-f",
        sender,
        "-t",
        recipient,
        f"127.0.0.1:{port}",
    ]
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, timeout=120, capture_output=True)
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip()
        raise BenchError(f"smtp-source failed (status {exc.returncode}): {detail}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError("smtp-source did not finish within 120 s") from exc
    return SourceRun(messages=count, seconds=time.perf_counter() - started)
