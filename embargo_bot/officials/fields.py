"""Checks on single values an official gives: each reports a problem naming its option.

Shared by ``queue`` and ``amend`` (intake.py); reading the named files is the only I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.live_url import LiveUrl, check_live_url
from embargo_bot.domain.text_safety import first_unsafe, has_visible_text, header_problem
from embargo_bot.domain.times import parse_when
from embargo_bot.officials.pdf_safety import pdf_problems


@dataclass(frozen=True)
class InputFiles:
    pdf: bytes | None
    release: bytes | None
    social: bytes | None


DEFAULT_MAX_PDF_MB = 25.0
# A news release or a social post is words: a megabyte of them is a wrong file.
MAX_TEXT_BYTES = 1024 * 1024


def read_named_files(
    *,
    pdf: Path | None,
    release: Path | None,
    social: Path | None,
    max_pdf_mb: float = DEFAULT_MAX_PDF_MB,
) -> InputFiles:
    problems: list[str] = []

    def read(option: str, path: Path | None, limit: int, limit_words: str) -> bytes | None:
        if path is None:
            return None
        try:
            # Checked before reading: a 50 MB file must not be read only to be refused.
            size = path.stat().st_size
            if size > limit:
                problems.append(
                    f"{option} {path}: {size / 1_000_000:.1f} MB is over the limit of {limit_words}"
                )
                return None
            return path.read_bytes()
        except OSError as exc:
            problems.append(f"{option} {path}: cannot read it ({exc.strerror or exc})")
            return None

    pdf_limit = int(max_pdf_mb * 1_000_000)
    pdf_words = f"{max_pdf_mb:g} MB (EMBARGO_BOT_MAX_PDF_MB)"
    text_words = f"{MAX_TEXT_BYTES / 1_000_000:.1f} MB for text"
    files = InputFiles(
        pdf=read("--pdf", pdf, pdf_limit, pdf_words),
        release=read("--release", release, MAX_TEXT_BYTES, text_words),
        social=read("--social", social, MAX_TEXT_BYTES, text_words),
    )
    if problems:
        raise InputError("\n".join(problems))
    return files


def single_line(
    value: str | None, option: str, limit: int, problems: list[str], *, required: bool = False
) -> str | None:
    if value is None or not value.strip():
        if required:
            problems.append(f"{option}: must not be empty")
        return None
    cleaned = value.strip()
    # It goes into an email header: a line break would be header injection.
    problem = header_problem(cleaned)
    if problem is not None:
        problems.append(f"{option}: {problem}")
        return None
    if not has_visible_text(cleaned):
        problems.append(f"{option}: has no visible text; write it in words")
        return None
    if len(cleaned) > limit:
        problems.append(f"{option}: {len(cleaned)} characters is too long (at most {limit})")
        return None
    return cleaned


def check_url(
    value: str, problems: list[str], *, allowed_domains: Sequence[str] = ()
) -> LiveUrl | None:
    """The live URL: https, no credentials, a real host (in ASCII), on an allowed domain."""
    live, found = check_live_url(value, allowed_domains)
    problems.extend(found)
    return live


def check_classification(value: str, problems: list[str]) -> Classification | None:
    try:
        return Classification(value.strip().upper())
    except ValueError:
        allowed = ", ".join(c.value for c in Classification)
        problems.append(f"--classification: {value!r} is not one of {allowed}")
        return None


def check_contact(value: str, problems: list[str]) -> str | None:
    try:
        # ASCII only: it goes into Reply-To and the relay may not speak SMTPUTF8.
        checked = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
        return checked.ascii_email or checked.normalized
    except EmailNotValidError as exc:
        problems.append(f"--contact: {value!r} is not an email address ({exc})")
        return None


def parse_time(text: str, zone: ZoneInfo, option: str, problems: list[str]) -> datetime | None:
    try:
        return parse_when(text, zone, field=option)
    except InputError as exc:
        problems.append(str(exc))
        return None


def check_pdf(
    data: bytes | None, path: Path, problems: list[str], warnings: list[str]
) -> bytes | None:
    if data is None:
        return None
    if not data:
        problems.append(f"--pdf {path}: the file is empty")
    elif not data.startswith(b"%PDF-"):
        problems.append(f"--pdf {path}: not a PDF (it does not start with %PDF-)")
    elif b"%%EOF" not in data[-2048:]:
        problems.append(f"--pdf {path}: the PDF is cut short (no %%EOF at the end)")
    else:
        # Parsed, not searched: a script can hide in a compressed object stream.
        found, cautions = pdf_problems(data, path)
        problems.extend(found)
        warnings.extend(cautions)
        return None if found else data
    return None


def text_file(data: bytes | None, option: str, path: Path, problems: list[str]) -> str | None:
    if data is None:
        return None
    body = data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is not text
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        problems.append(
            f"{option} {path}:{line}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        )
        return None
    text = text.replace("\r\n", "\n")
    if not text.strip():
        problems.append(f"{option} {path}: the file is empty")
        return None
    unsafe = first_unsafe(text, multiline=True)
    if unsafe is not None:
        problems.append(f"{option} {path}:{unsafe.line}: {unsafe.describe()}")
        return None
    return text


def pdf_file_name(path: Path, problems: list[str]) -> str:
    """The attachment's name, as partners will see it: refused if it could deceive them."""
    name = path.name.strip()
    problem = header_problem(name)
    if problem is not None:
        # strategy\u202efdp.exe shows as "strategyexe.pdf": rename, never quietly repair.
        problems.append(f"--pdf {path!r}: the file name {problem}; rename the file")
        return "publication.pdf"
    return name if has_visible_text(name) else "publication.pdf"
