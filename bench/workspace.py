"""A throwaway store, key, recipient list and pack for one benchmark part."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from embargo_bot.app import App
from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.domain.packs import Pack
from embargo_bot.officials.actions import queue_pack
from embargo_bot.officials.intake import QueueRequest
from embargo_bot.security.vault import new_key
from embargo_bot.settings import ENV_PREFIX, Settings, load_settings

LIST_KEY = "bench"
SENDER = "Bench <bench@example.org>"
PARTNER_DOMAIN = "bench.example"
LIVE_URL = "https://www.gov.example/isbn/bench"

_STARTXREF = re.compile(rb"startxref\n(\d+)\n%%EOF\n$")
_PADDING_LINE = b"% embargo-bot benchmark padding: a comment, ignored by PDF readers" + b" " * 9


def padded_pdf(size: int) -> bytes:
    """A valid PDF of about ``size`` bytes: the sample page plus comment lines.

    The comments go just before the cross-reference table, whose offset is
    moved to match, so the file stays a PDF a reader can open.
    """
    pdf = sample_pdf(["embargo-bot benchmark", f"about {size:,} bytes"])
    found = _STARTXREF.search(pdf)
    assert found is not None, "sample_pdf no longer ends with startxref/%%EOF"
    xref_at = int(found.group(1))
    lines_needed = max(0, size - len(pdf)) // (len(_PADDING_LINE) + 1)
    padding = (_PADDING_LINE + b"\n") * lines_needed
    head, table = pdf[:xref_at], pdf[xref_at : found.start()]
    trailer = b"startxref\n%d\n%%%%EOF\n" % (xref_at + len(padding))
    return head + padding + table + trailer


def partner_addresses(count: int) -> list[str]:
    return [f"partner{n:04d}@{PARTNER_DOMAIN}" for n in range(1, count + 1)]


@dataclass(frozen=True)
class Workspace:
    root: Path
    relay_port: int
    key: str

    @property
    def database(self) -> Path:
        return self.root / "bench.db"

    @property
    def recipients_dir(self) -> Path:
        return self.root / "recipients"

    def setting_values(self) -> dict[str, str]:
        """Every setting the benchmark fixes; smtp_connections is left at the default."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": str(self.relay_port),
            "smtp_security": "none",
            "require_clearance": "false",
            # The bench's live URL is on .example, which nothing answers: the link check
            # (measured in tests/test_link_gate.py against a local HTTPS site) is off here.
            "link_check": "false",
            "poll_interval": "0.2",
            "key": self.key,
            "database": str(self.database),
            "recipients_dir": str(self.recipients_dir),
            "sender": SENDER,
        }

    def settings(self) -> Settings:
        # _env_file=None: a developer's .env must not change what is measured.
        return load_settings(_env_file=None, **self.setting_values())

    def environment(self) -> dict[str, str]:
        """The environment for ``python -m embargo_bot`` run against this workspace."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        names = {"sender": "FROM"}
        for field, value in self.setting_values().items():
            env[ENV_PREFIX + names.get(field, field.upper())] = value
        env[ENV_PREFIX + "SMTP_CONNECTIONS"] = str(self.settings().smtp_connections)
        return env

    def write_list(self, recipients: int) -> None:
        entries = "\n".join(f"  - email: {address}" for address in partner_addresses(recipients))
        self.recipients_dir.mkdir(exist_ok=True)
        (self.recipients_dir / f"{LIST_KEY}.yaml").write_text(
            f"name: Bench\nallowed_domains: [{PARTNER_DOMAIN}]\n"
            f"max_classification: OFFICIAL-SENSITIVE\nrecipients:\n{entries}\n",
            encoding="utf-8",
        )

    def queue(self, app: App, *, pdf_size: int, lift_at: datetime) -> Pack:
        """A pack: one notice wave, now, to the bench list; its live stage at ``lift_at``."""
        files = self.root / "input"
        files.mkdir(exist_ok=True)
        (files / "publication.pdf").write_bytes(padded_pdf(pdf_size))
        (files / "release.md").write_text(
            "# Benchmark publication\n\nPartners will **work together** on this.\n",
            encoding="utf-8",
        )
        (files / "social.txt").write_text("A benchmark publication is out today.", "utf-8")
        request = QueueRequest(
            title="Benchmark publication",
            pdf=files / "publication.pdf",
            release=files / "release.md",
            social=files / "social.txt",
            url=LIVE_URL,
            lift=lift_at.isoformat(),
            lists=LIST_KEY,
            notice_at="now",
            classification="OFFICIAL-SENSITIVE",
            reference=None,
            contact=None,
        )
        return queue_pack(app, request, created_by="bench")


@contextmanager
def workspace(relay_port: int, *, recipients: int) -> Iterator[Workspace]:
    with tempfile.TemporaryDirectory(prefix="embargo-bench-") as root:
        space = Workspace(root=Path(root), relay_port=relay_port, key=new_key())
        space.write_list(recipients)
        yield space
