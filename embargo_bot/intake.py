"""Checking what an official asks to queue, before anything is stored.

``read_files`` is the only I/O; ``check_request`` is pure and reports every
problem at once, each naming the option or file it is about.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from embargo_bot.classification import Classification
from embargo_bot.errors import InputError
from embargo_bot.times import describe, parse_when

MAX_TITLE = 200
MAX_REFERENCE = 100
# A notice time a little in the past is someone typing slowly, not a mistake.
NOTICE_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class QueueRequest:
    """A queue command as typed: every value still a string or a path."""

    title: str
    pdf: Path
    release: Path
    social: Path | None
    url: str
    lift: str
    lists: str
    notice_at: str | None
    classification: str
    reference: str | None
    contact: str | None


@dataclass(frozen=True)
class InputFiles:
    pdf: bytes
    release: bytes
    social: bytes | None


@dataclass(frozen=True)
class CheckedRequest:
    title: str
    reference: str | None
    url: str
    lift_at: datetime
    notice_at: datetime
    classification: Classification
    contact: str
    list_keys: tuple[str, ...]
    pdf: bytes
    pdf_name: str
    release: str
    social: str | None


def read_files(request: QueueRequest) -> InputFiles:
    problems: list[str] = []

    def read(option: str, path: Path | None) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            problems.append(f"{option} {path}: cannot read it ({exc.strerror or exc})")
            return None

    pdf = read("--pdf", request.pdf)
    release = read("--release", request.release)
    social = read("--social", request.social)
    if problems:
        raise InputError("\n".join(problems))
    assert pdf is not None and release is not None
    return InputFiles(pdf=pdf, release=release, social=social)


def check_request(
    request: QueueRequest,
    files: InputFiles,
    *,
    now: datetime,
    zone: ZoneInfo,
    default_contact: str,
) -> CheckedRequest:
    """Every check that needs no store: all problems in one ``InputError``."""
    problems: list[str] = []

    title = _single_line(request.title, "--title", MAX_TITLE, problems, required=True)
    reference = _single_line(request.reference, "--reference", MAX_REFERENCE, problems)
    url = _check_url(request.url, problems)
    classification = _check_classification(request.classification, problems)
    contact = _check_contact(request.contact or default_contact, problems)
    list_keys = tuple(dict.fromkeys(k.strip() for k in request.lists.split(",") if k.strip()))
    if not list_keys:
        problems.append("--lists: name at least one recipient list, e.g. --lists nca,copfs")

    lift_at = _parse_time(request.lift, zone, "--lift", problems)
    notice_at = (
        now
        if request.notice_at is None or request.notice_at.strip().lower() == "now"
        else _parse_time(request.notice_at, zone, "--notice-at", problems)
    )
    if lift_at is not None and lift_at <= now:
        problems.append(
            f"--lift: {describe(lift_at, zone)} is in the past; an embargo must lift in the future"
        )
    if notice_at is not None and notice_at < now - NOTICE_GRACE:
        problems.append(
            f"--notice-at: {describe(notice_at, zone)} is in the past; use 'now' to send at once"
        )
    if lift_at is not None and notice_at is not None and notice_at >= lift_at:
        problems.append(
            f"--notice-at: the notice ({describe(notice_at, zone)}) must go before the lift "
            f"({describe(lift_at, zone)})"
        )

    _check_pdf(files.pdf, request.pdf, problems)
    release = _text_file(files.release, "--release", request.release, problems, required=True)
    social = (
        None
        if files.social is None or request.social is None
        else _text_file(files.social, "--social", request.social, problems, required=True)
    )

    if problems:
        raise InputError("cannot queue this pack:\n" + "\n".join(f"  {p}" for p in problems))
    assert title is not None and url is not None and classification is not None
    assert lift_at is not None and notice_at is not None and release is not None
    return CheckedRequest(
        title=title,
        reference=reference,
        url=url,
        lift_at=lift_at,
        notice_at=max(notice_at, now),
        classification=classification,
        contact=contact or default_contact,
        list_keys=list_keys,
        pdf=files.pdf,
        pdf_name=_safe_file_name(request.pdf.name),
        release=release,
        social=social,
    )


def new_pack_id(title: str) -> str:
    """Short, readable and unique enough: 'serious-organised-crime-7k2q'."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_title.lower())
    stem = ""
    for word in words:
        if len(stem) + len(word) + 1 > 24:
            break
        stem = f"{stem}-{word}" if stem else word
    suffix = "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(4))
    return f"{stem or 'pack'}-{suffix}"


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _single_line(
    value: str | None, option: str, limit: int, problems: list[str], *, required: bool = False
) -> str | None:
    if value is None or not value.strip():
        if required:
            problems.append(f"{option}: must not be empty")
        return None
    cleaned = value.strip()
    # A line break here would end an email header early: header injection.
    if has_control_characters(cleaned):
        problems.append(f"{option}: must be one line with no control characters")
        return None
    if len(cleaned) > limit:
        problems.append(f"{option}: {len(cleaned)} characters is too long (at most {limit})")
        return None
    return cleaned


def _check_url(value: str, problems: list[str]) -> str | None:
    cleaned = value.strip()
    try:
        parts = urlsplit(cleaned)
        valid = parts.scheme == "https" and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unbalanced "[" or a port that is not a number
        valid = False
    if not valid or has_control_characters(cleaned):
        problems.append(
            f"--url: {value!r} is not an https:// link; give the address the publication "
            "will have, e.g. https://www.gov.scot/isbn/9781802019445"
        )
        return None
    if " " in cleaned:
        problems.append(f"--url: {value!r} contains a space")
        return None
    return cleaned


def _check_classification(value: str, problems: list[str]) -> Classification | None:
    try:
        return Classification(value.strip().upper())
    except ValueError:
        allowed = ", ".join(c.value for c in Classification)
        problems.append(f"--classification: {value!r} is not one of {allowed}")
        return None


def _check_contact(value: str, problems: list[str]) -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        problems.append(f"--contact: {value!r} is not an email address ({exc})")
        return None


def _parse_time(text: str, zone: ZoneInfo, option: str, problems: list[str]) -> datetime | None:
    try:
        return parse_when(text, zone, field=option)
    except InputError as exc:
        problems.append(str(exc))
        return None


def _check_pdf(data: bytes, path: Path, problems: list[str]) -> None:
    if not data:
        problems.append(f"--pdf {path}: the file is empty")
    elif not data.startswith(b"%PDF-"):
        problems.append(f"--pdf {path}: not a PDF (it does not start with %PDF-)")
    elif b"%%EOF" not in data[-2048:]:
        problems.append(f"--pdf {path}: the PDF is cut short (no %%EOF at the end)")


def _text_file(
    data: bytes, option: str, path: Path, problems: list[str], *, required: bool
) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(
            f"{option} {path}:{line}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        )
        return None
    text = text.replace("\r\n", "\n")
    if required and not text.strip():
        problems.append(f"{option} {path}: the file is empty")
        return None
    bad = [ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t"]
    if bad:
        problems.append(f"{option} {path}: contains control characters (e.g. {bad[0]!r})")
        return None
    return text


def _safe_file_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if not has_control_characters(ch)).strip()
    return cleaned or "publication.pdf"
