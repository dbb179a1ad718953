"""Checking what an official asks to queue, before anything is stored.

``read_files`` is the only I/O; ``check_request`` is pure and reports every
problem at once, each naming the option or file it is about.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email

from embargo_bot.classification import Classification
from embargo_bot.errors import InputError
from embargo_bot.header_safety import header_problem
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
    lists: str | None
    notice_at: str | None
    classification: str
    reference: str | None
    contact: str | None
    waves: tuple[str, ...] = ()  # "LISTS@WHEN", one per --notice


@dataclass(frozen=True)
class InputFiles:
    pdf: bytes | None
    release: bytes | None
    social: bytes | None


@dataclass(frozen=True)
class WavePlan:
    """One notice wave: these lists, at this time."""

    list_keys: tuple[str, ...]
    at: datetime
    option: str = field(default="--notice", compare=False)  # where it was typed, for errors


@dataclass(frozen=True)
class CheckedRequest:
    title: str
    reference: str | None
    url: str
    lift_at: datetime
    classification: Classification
    contact: str
    waves: tuple[WavePlan, ...]
    pdf: bytes
    pdf_name: str
    release: str
    social: str | None

    @property
    def list_keys(self) -> tuple[str, ...]:
        """Every list the pack names, across its waves: who gets the live email."""
        return union_of_lists(self.waves)

    @property
    def notice_at(self) -> datetime:
        return min(wave.at for wave in self.waves)


def union_of_lists(waves: Sequence[WavePlan]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(key for wave in waves for key in wave.list_keys))


DEFAULT_MAX_PDF_MB = 25.0
# A news release or a social post is words: a megabyte of them is a wrong file.
MAX_TEXT_BYTES = 1024 * 1024


def read_files(request: QueueRequest, *, max_pdf_mb: float = DEFAULT_MAX_PDF_MB) -> InputFiles:
    return read_named_files(
        pdf=request.pdf, release=request.release, social=request.social, max_pdf_mb=max_pdf_mb
    )


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
    lift_at = _parse_time(request.lift, zone, "--lift", problems)
    if lift_at is not None and lift_at <= now:
        problems.append(
            f"--lift: {describe(lift_at, zone)} is in the past; an embargo must lift in the future"
        )
        lift_at = None  # one problem is enough: not also "the notice is after the lift"
    waves = _check_waves(request, now=now, zone=zone, lift_at=lift_at, problems=problems)
    pdf = _check_pdf(files.pdf, request.pdf, problems)
    release = _text_file(files.release, "--release", request.release, problems)
    social = (
        None
        if files.social is None or request.social is None
        else _text_file(files.social, "--social", request.social, problems)
    )
    _refuse(problems, "cannot queue this pack")
    assert title is not None and url is not None and classification is not None
    assert lift_at is not None and pdf is not None and release is not None
    return CheckedRequest(
        title=title,
        reference=reference,
        url=url,
        lift_at=lift_at,
        classification=classification,
        contact=contact or default_contact,
        waves=waves,
        pdf=pdf,
        pdf_name=_safe_file_name(request.pdf.name),
        release=release,
        social=social,
    )


def _check_waves(
    request: QueueRequest,
    *,
    now: datetime,
    zone: ZoneInfo,
    lift_at: datetime | None,
    problems: list[str],
) -> tuple[WavePlan, ...]:
    planned: list[WavePlan | None] = []
    if request.lists is not None or not request.waves:
        keys = _list_keys(request.lists or "", "--lists", problems)
        at = _wave_time(request.notice_at, "--notice-at", now=now, zone=zone, problems=problems)
        planned.append(None if keys is None or at is None else WavePlan(keys, at, "--notice-at"))
    elif request.notice_at is not None:
        problems.append("--notice-at goes with --lists; with --notice, give LISTS@WHEN")
    planned.extend(
        parse_wave(text, now=now, zone=zone, problems=problems) for text in request.waves
    )
    waves = [wave for wave in planned if wave is not None]
    check_wave_times(waves, lift_at, zone=zone, problems=problems)
    return tuple(sorted(waves, key=lambda wave: wave.at))


def parse_wave(text: str, *, now: datetime, zone: ZoneInfo, problems: list[str]) -> WavePlan | None:
    """'police-scotland,copfs@2022-02-22 16:15' (or '...@now') as a wave."""
    keys_text, at_sign, when = text.partition("@")
    if not at_sign:
        problems.append(
            f"--notice {text!r}: give LISTS@WHEN, e.g. police-scotland,copfs@'2022-02-22 16:15'"
        )
        return None
    keys = _list_keys(keys_text, f"--notice {text!r}", problems)
    at = _wave_time(when, f"--notice {text!r}", now=now, zone=zone, problems=problems)
    return None if keys is None or at is None else WavePlan(keys, at, f"--notice {text!r}")


def check_wave_times(
    waves: Sequence[WavePlan], lift_at: datetime | None, *, zone: ZoneInfo, problems: list[str]
) -> None:
    if lift_at is None:
        return
    for wave in waves:
        if wave.at >= lift_at:
            problems.append(
                f"{wave.option}: the notice ({describe(wave.at, zone)}) must go before the "
                f"lift ({describe(lift_at, zone)})"
            )


def _list_keys(text: str, option: str, problems: list[str]) -> tuple[str, ...] | None:
    keys = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    if any(has_control_characters(key) for key in keys):
        problems.append(f"{option}: list names must not contain control characters")
        return None
    if not keys:
        problems.append(f"{option}: name at least one recipient list, e.g. nca,copfs")
        return None
    return keys


def _wave_time(
    text: str | None, option: str, *, now: datetime, zone: ZoneInfo, problems: list[str]
) -> datetime | None:
    if text is None or text.strip().lower() == "now":
        return now
    at = _parse_time(text, zone, option, problems)
    if at is not None and at < now - NOTICE_GRACE:
        problems.append(f"{option}: {describe(at, zone)} is in the past; use 'now' to send at once")
        return None
    return None if at is None else max(at, now)


@dataclass(frozen=True)
class AmendRequest:
    pdf: Path | None
    release: Path | None
    social: Path | None
    title: str | None
    url: str | None
    note: str


@dataclass(frozen=True)
class CheckedAmend:
    """Only what changes; ``changed`` names it, in the words ``show`` uses."""

    title: str | None
    url: str | None
    pdf: bytes | None
    pdf_name: str | None
    release: str | None
    social: str | None
    note: str

    @property
    def changed(self) -> tuple[str, ...]:
        fields = ("title", "url", "pdf", "release", "social")
        return tuple(name for name in fields if getattr(self, name) is not None)


MAX_NOTE = 1000


def check_amend(request: AmendRequest, files: InputFiles) -> CheckedAmend:
    problems: list[str] = []
    title = _single_line(request.title, "--title", MAX_TITLE, problems)
    url = None if request.url is None else _check_url(request.url, problems)
    pdf = None if request.pdf is None else _check_pdf(files.pdf, request.pdf, problems)
    release = (
        None
        if request.release is None
        else _text_file(files.release, "--release", request.release, problems)
    )
    social = (
        None
        if request.social is None
        else _text_file(files.social, "--social", request.social, problems)
    )
    note = _single_line(request.note, "--note", MAX_NOTE, problems, required=True)
    if not problems and not any(v is not None for v in (title, url, pdf, release, social)):
        problems.append(
            "nothing to amend: give at least one of --pdf --release --social --title --url"
        )
    _refuse(problems, "cannot amend this pack")
    assert note is not None
    return CheckedAmend(
        title=title,
        url=url,
        pdf=pdf,
        pdf_name=None if request.pdf is None else _safe_file_name(request.pdf.name),
        release=release,
        social=social,
        note=note,
    )


def _refuse(problems: list[str], summary: str) -> None:
    if problems:
        raise InputError(f"{summary}:\n" + "\n".join(f"  {p}" for p in problems))


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
    # It goes into an email header: a line break would be header injection.
    problem = header_problem(cleaned)
    if problem is not None:
        problems.append(f"{option}: {problem}")
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
        # ASCII only: it goes into Reply-To and the relay may not speak SMTPUTF8.
        checked = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
        return checked.ascii_email or checked.normalized
    except EmailNotValidError as exc:
        problems.append(f"--contact: {value!r} is not an email address ({exc})")
        return None


def _parse_time(text: str, zone: ZoneInfo, option: str, problems: list[str]) -> datetime | None:
    try:
        return parse_when(text, zone, field=option)
    except InputError as exc:
        problems.append(str(exc))
        return None


def _check_pdf(data: bytes | None, path: Path, problems: list[str]) -> bytes | None:
    if data is None:
        return None
    if not data:
        problems.append(f"--pdf {path}: the file is empty")
    elif not data.startswith(b"%PDF-"):
        problems.append(f"--pdf {path}: not a PDF (it does not start with %PDF-)")
    elif b"%%EOF" not in data[-2048:]:
        problems.append(f"--pdf {path}: the PDF is cut short (no %%EOF at the end)")
    else:
        return data
    return None


def _text_file(data: bytes | None, option: str, path: Path, problems: list[str]) -> str | None:
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
    bad = [ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t"]
    if bad:
        problems.append(f"{option} {path}: contains control characters (e.g. {bad[0]!r})")
        return None
    return text


def _safe_file_name(name: str) -> str:
    """The attachment's name, as partners will see it: one plain line, or a default."""
    cleaned = "".join(ch for ch in name if not has_control_characters(ch)).strip()
    if not cleaned or header_problem(cleaned) is not None:
        return "publication.pdf"
    return cleaned
