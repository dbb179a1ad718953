"""Checking what an official asks to queue or amend, before anything is stored.

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
from zoneinfo import ZoneInfo

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.text_safety import header_problem
from embargo_bot.domain.times import describe
from embargo_bot.officials.fields import (
    DEFAULT_MAX_PDF_MB,
    InputFiles,
    check_classification,
    check_contact,
    check_pdf,
    check_url,
    parse_time,
    pdf_file_name,
    read_named_files,
    single_line,
    text_file,
)
from embargo_bot.officials.material_checks import check_material

MAX_TITLE = 200
MAX_REFERENCE = 100
# A phrase from the live page, not the page: long enough for a title, short enough to type.
MAX_EXPECT_TEXT = 200
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
    expect_text: str | None = None  # --expect-text: the live page must contain it
    link_check: bool = True  # --no-link-check: send the live email without checking the page


@dataclass(frozen=True)
class WavePlan:
    """One notice wave: these lists, at this time."""

    list_keys: tuple[str, ...]
    at: datetime
    option: str = field(default="--notice", compare=False)  # where it was typed, for errors

    @property
    def lists_option(self) -> str:
        """Where the lists were typed: ``--lists`` in the one-wave form, else the ``--notice``."""
        return "--lists" if self.option == "--notice-at" else self.option


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
    # Shown to the official, not refused: e.g. a PDF with an attached file.
    warnings: tuple[str, ...] = ()
    expect_text: str | None = None
    link_check: bool = True

    @property
    def list_keys(self) -> tuple[str, ...]:
        """Every list the pack names, across its waves: who gets the live email."""
        return union_of_lists(self.waves)

    @property
    def notice_at(self) -> datetime:
        return min(wave.at for wave in self.waves)


def union_of_lists(waves: Sequence[WavePlan]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(key for wave in waves for key in wave.list_keys))


def read_files(request: QueueRequest, *, max_pdf_mb: float = DEFAULT_MAX_PDF_MB) -> InputFiles:
    return read_named_files(
        pdf=request.pdf, release=request.release, social=request.social, max_pdf_mb=max_pdf_mb
    )


def check_request(
    request: QueueRequest,
    files: InputFiles,
    *,
    now: datetime,
    zone: ZoneInfo,
    default_contact: str,
    live_domains: Sequence[str] = (),
) -> CheckedRequest:
    """Every check that needs no store: all problems in one ``InputError``."""
    problems: list[str] = []
    warnings: list[str] = []
    title = single_line(request.title, "--title", MAX_TITLE, problems, required=True)
    reference = single_line(request.reference, "--reference", MAX_REFERENCE, problems)
    expect_text = (
        None
        if request.expect_text is None
        else single_line(
            request.expect_text, "--expect-text", MAX_EXPECT_TEXT, problems, required=True
        )
    )
    if expect_text is not None and not request.link_check:
        problems.append(
            "--expect-text: the page is not checked with --no-link-check; give one or the other"
        )
    live = check_url(request.url, problems, allowed_domains=live_domains)
    url = None if live is None else live.url
    classification = check_classification(request.classification, problems)
    contact = check_contact(request.contact or default_contact, problems)
    lift_at = parse_time(request.lift, zone, "--lift", problems)
    if lift_at is not None and lift_at <= now:
        problems.append(
            f"--lift: {describe(lift_at, zone)} is in the past; an embargo must lift in the future"
        )
        lift_at = None  # one problem is enough: not also "the notice is after the lift"
    waves = _check_waves(request, now=now, zone=zone, lift_at=lift_at, problems=problems)
    pdf = check_pdf(files.pdf, request.pdf, problems, warnings)
    pdf_name = pdf_file_name(request.pdf, problems)
    release = text_file(files.release, "--release", request.release, problems)
    social = (
        None
        if files.social is None or request.social is None
        else text_file(files.social, "--social", request.social, problems)
    )
    check_material(
        url=url,
        release=release,
        release_path=request.release,
        social=social,
        social_path=request.social,
        problems=problems,
        warnings=warnings,
    )
    _refuse(problems, "cannot queue this pack")
    if live is not None and live.confirmation() != live.url:
        warnings.append(f"--url: {live.confirmation()}: check that this is the publishing site")
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
        pdf_name=pdf_name,
        release=release,
        social=social,
        warnings=tuple(warnings),
        expect_text=expect_text,
        link_check=request.link_check,
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
    unsafe = next((p for key in keys if (p := header_problem(key)) is not None), None)
    if unsafe is not None:
        problems.append(f"{option}: a list name {unsafe}")
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
    at = parse_time(text, zone, option, problems)
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
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> tuple[str, ...]:
        fields = ("title", "url", "pdf", "release", "social")
        return tuple(name for name in fields if getattr(self, name) is not None)


MAX_NOTE = 1000


def check_amend(
    request: AmendRequest, files: InputFiles, *, live_url: str, live_domains: Sequence[str] = ()
) -> CheckedAmend:
    """Every check on an amendment; ``live_url`` is the pack's link, if not amended too."""
    problems: list[str] = []
    warnings: list[str] = []
    title = single_line(request.title, "--title", MAX_TITLE, problems)
    live = (
        None
        if request.url is None
        else check_url(request.url, problems, allowed_domains=live_domains)
    )
    url = None if live is None else live.url
    pdf = None if request.pdf is None else check_pdf(files.pdf, request.pdf, problems, warnings)
    pdf_name = None if request.pdf is None else pdf_file_name(request.pdf, problems)
    release = (
        None
        if request.release is None
        else text_file(files.release, "--release", request.release, problems)
    )
    social = (
        None
        if request.social is None
        else text_file(files.social, "--social", request.social, problems)
    )
    note = single_line(request.note, "--note", MAX_NOTE, problems, required=True)
    check_material(
        url=url or live_url,
        release=release,
        release_path=request.release,
        social=social,
        social_path=request.social,
        problems=problems,
        warnings=warnings,
    )
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
        pdf_name=pdf_name,
        release=release,
        social=social,
        note=note,
        warnings=tuple(warnings),
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
