"""What `embargo-bot doctor` concludes, as plain functions: no files, sockets or store here.

``doctor`` gathers the facts (file modes, the store, the relay's answers);
these turn them into one line each, ok or what to do.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from embargo_bot.domain.transport import SmtpSecurity


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but should be put right
    FAIL = "fail"  # `run` would not work, or would not be safe


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    @property
    def line(self) -> str:
        return f"{self.status.value.upper():<4}  {self.name}: {self.detail}"


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str) -> Check:
    return Check(name, Status.WARN, detail)


def fail(name: str, detail: str) -> Check:
    return Check(name, Status.FAIL, detail)


def exit_code(checks: list[Check]) -> int:
    return 1 if any(check.status is Status.FAIL for check in checks) else 0


def env_file_check(path: Path, mode: int, text: str) -> Check:
    """A .env holding the key must be its owner's alone: the key opens every stored pack."""
    holds_key = any(line.strip().startswith("EMBARGO_BOT_KEY=") for line in text.splitlines())
    if not holds_key:
        return ok(".env", f"{path} holds no EMBARGO_BOT_KEY")
    readers = (("group", stat.S_IRGRP), ("others", stat.S_IROTH))
    readable_by = [who for who, bit in readers if mode & bit]
    if readable_by:
        return warn(
            ".env",
            f"{path} holds EMBARGO_BOT_KEY and can be read by {' and '.join(readable_by)} "
            f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`",
        )
    return ok(".env", f"{path} holds the key and only its owner can read it")


def missing_store(path: Path, cwd: Path) -> Check:
    where = path if path.is_absolute() else cwd / path
    return ok(
        "store",
        f"none yet at {where}: `embargo-bot queue` or `embargo-bot run` will create it there",
    )


def security_words(security: SmtpSecurity) -> str:
    return {
        SmtpSecurity.STARTTLS: "STARTTLS (required)",
        SmtpSecurity.TLS: "implicit TLS",
        SmtpSecurity.NONE: "no TLS (clear text)",
    }[security]


def relay_ok(where: str, security: SmtpSecurity, username: str | None) -> Check:
    login = f", logged in as {username}" if username else ", no login set"
    return ok("relay", f"{where}: connected, {security_words(security)}{login}")


# What to check, by the step of the conversation with the relay that failed.
RELAY_HINTS = {
    "connect": "check EMBARGO_BOT_SMTP_HOST and EMBARGO_BOT_SMTP_PORT, and that the relay is up",
    "tls": "check EMBARGO_BOT_SMTP_SECURITY (starttls for 587, tls for 465) and "
    "EMBARGO_BOT_SMTP_CA_FILE for a private CA",
    "login": "check EMBARGO_BOT_SMTP_USERNAME and EMBARGO_BOT_SMTP_PASSWORD",
    "no-auth": "the relay offers no login: unset EMBARGO_BOT_SMTP_USERNAME, or use a relay "
    "that takes one",
}


def relay_failed(where: str, step: str, reply: str) -> Check:
    if step == "login":
        return fail("relay", f"{where}: the relay refused the login ({reply}): {RELAY_HINTS[step]}")
    what = {"connect": "cannot connect", "tls": "TLS failed", "no-auth": "no login offered"}
    return fail("relay", f"{where}: {what.get(step, step)} ({reply}): {RELAY_HINTS[step]}")
