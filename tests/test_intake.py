"""Checking a queue request: every refusal names its option, all problems come at once."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import GOOD_FILES, GOOD_REQUEST, PDF, RELEASE, SOCIAL, URL

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import InputError
from embargo_bot.officials.intake import (
    CheckedRequest,
    InputFiles,
    QueueRequest,
    WavePlan,
    check_request,
    new_pack_id,
    read_files,
)

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2022, 2, 21, 9, 0, tzinfo=UTC)
DEFAULT_CONTACT = "press@gov.example"


def check(
    request: QueueRequest = GOOD_REQUEST,
    files: InputFiles = GOOD_FILES,
    *,
    now: datetime = NOW,
) -> CheckedRequest:
    return check_request(request, files, now=now, zone=LONDON, default_contact=DEFAULT_CONTACT)


def problems_of(error: InputError) -> list[str]:
    header, *lines = str(error).splitlines()
    assert header == "cannot queue this pack:"
    assert all(line.startswith("  ") for line in lines), lines
    return [line.strip() for line in lines]


# --- a good request ---------------------------------------------------------------------------


def test_valid_request_is_checked_into_utc_times_and_normal_forms() -> None:
    assert check() == CheckedRequest(
        title="Serious Organised Crime Strategy",
        reference="SG/2022/14",
        url=URL,
        lift_at=datetime(2022, 2, 23, 11, 0, tzinfo=UTC),
        classification=Classification.OFFICIAL_SENSITIVE,
        contact=DEFAULT_CONTACT,
        waves=(WavePlan(("nca", "copfs"), datetime(2022, 2, 22, 9, 0, tzinfo=UTC)),),
        pdf=PDF,
        pdf_name="strategy.pdf",
        release=RELEASE,
        social=SOCIAL,
    )


@pytest.mark.parametrize(
    ("request_changes", "file_changes", "field", "expected"),
    [
        pytest.param({"notice_at": None}, {}, "notice_at", NOW, id="notice-default-now"),
        pytest.param({"notice_at": "now"}, {}, "notice_at", NOW, id="notice-now"),
        pytest.param({"notice_at": "  NOW "}, {}, "notice_at", NOW, id="notice-NOW"),
        pytest.param(
            {"notice_at": "2022-02-21 08:59"}, {}, "notice_at", NOW, id="notice-within-grace"
        ),
        pytest.param(
            {"notice_at": "2022-02-22T09:00+01:00"},
            {},
            "notice_at",
            datetime(2022, 2, 22, 8, 0, tzinfo=UTC),
            id="notice-offset",
        ),
        pytest.param(
            {"lift": "2022-06-23 11:00"},
            {},
            "lift_at",
            datetime(2022, 6, 23, 10, 0, tzinfo=UTC),
            id="lift-bst",
        ),
        pytest.param(
            {"lift": "2022-02-23T11:00:00Z"},
            {},
            "lift_at",
            datetime(2022, 2, 23, 11, 0, tzinfo=UTC),
            id="lift-iso",
        ),
        pytest.param({"title": "  Padded  "}, {}, "title", "Padded", id="title-trimmed"),
        pytest.param({"title": "x" * 200}, {}, "title", "x" * 200, id="title-at-limit"),
        pytest.param({"reference": None}, {}, "reference", None, id="no-reference"),
        pytest.param({"reference": "   "}, {}, "reference", None, id="blank-reference"),
        pytest.param({"url": f"  {URL}  "}, {}, "url", URL, id="url-trimmed"),
        pytest.param(
            {"classification": " official "},
            {},
            "classification",
            Classification.OFFICIAL,
            id="classification-official",
        ),
        pytest.param(
            {"classification": "OFFICIAL-SENSITIVE"},
            {},
            "classification",
            Classification.OFFICIAL_SENSITIVE,
            id="classification-upper",
        ),
        pytest.param(
            {"contact": "Comms@GOV.EXAMPLE"}, {}, "contact", "Comms@gov.example", id="contact"
        ),
        pytest.param({"contact": None}, {}, "contact", DEFAULT_CONTACT, id="default-contact"),
        pytest.param({"contact": ""}, {}, "contact", DEFAULT_CONTACT, id="empty-contact"),
        pytest.param(
            {"lists": " nca , copfs,,nca ,"},
            {},
            "list_keys",
            ("nca", "copfs"),
            id="lists-deduplicated",
        ),
        pytest.param(
            {"pdf": Path("/srv/packs/SOC strategy 2022.pdf")},
            {},
            "pdf_name",
            "SOC strategy 2022.pdf",
            id="pdf-name-is-base-name",
        ),
        pytest.param({"social": None}, {"social": None}, "social", None, id="no-social"),
        pytest.param(
            {},
            {"release": b"\xef\xbb\xbfLine one\r\nLine two\r\n"},
            "release",
            "Line one\nLine two\n",
            id="release-bom-crlf",
        ),
        pytest.param(
            {},
            {"release": "Caf\u00e9 \u2014 \u00a3100m\tfor\n".encode()},
            "release",
            "Caf\u00e9 \u2014 \u00a3100m\tfor\n",
            id="release-unicode-tab",
        ),
    ],
)
def test_valid_variations(
    request_changes: dict[str, object],
    file_changes: dict[str, object],
    field: str,
    expected: object,
) -> None:
    checked = check(
        dataclasses.replace(GOOD_REQUEST, **request_changes),  # type: ignore[arg-type]
        dataclasses.replace(GOOD_FILES, **file_changes),  # type: ignore[arg-type]
    )
    assert getattr(checked, field) == expected


def test_notice_is_never_before_now() -> None:
    for notice_at in (None, "now", "2022-02-21 08:58"):
        checked = check(dataclasses.replace(GOOD_REQUEST, notice_at=notice_at))
        assert checked.notice_at == NOW


# --- refusals ---------------------------------------------------------------------------------

TRUNCATED_PDF = PDF[: len(PDF) // 2]


@pytest.mark.parametrize(
    ("request_changes", "file_changes", "expected"),
    [
        pytest.param(
            {"title": "Strategy\r\nBcc: leak@evil.example"},
            {},
            [("--title:", "contains control character U+000D")],
            id="title-crlf-header-injection",
        ),
        pytest.param(
            {"title": "Strategy\nBcc: leak@evil.example"},
            {},
            [("--title:", "one line")],
            id="title-lf",
        ),
        pytest.param(
            {"title": "Tab\there"}, {}, [("--title:", "control character U+0009")], id="tab"
        ),
        pytest.param({"title": ""}, {}, [("--title:", "must not be empty")], id="title-empty"),
        pytest.param({"title": "  "}, {}, [("--title:", "must not be empty")], id="title-blank"),
        pytest.param(
            {"title": "x" * 201},
            {},
            [("--title:", "201 characters is too long (at most 200)")],
            id="title-too-long",
        ),
        pytest.param(
            {"reference": "SG/1\r\nX-Evil: 1"},
            {},
            [("--reference:", "contains control character")],
            id="reference-crlf",
        ),
        pytest.param(
            {"reference": "r" * 101},
            {},
            [("--reference:", "too long (at most 100)")],
            id="reference-too-long",
        ),
        pytest.param(
            {"url": "http://www.gov.scot/isbn/9781802019445"},
            {},
            [("--url:", "is not an https:// link")],
            id="url-http",
        ),
        pytest.param(
            {"url": "www.gov.scot/isbn/9781802019445"},
            {},
            [("--url:", "is not an https:// link")],
            id="url-no-scheme",
        ),
        pytest.param({"url": "https://"}, {}, [("--url:", "not an https://")], id="url-no-host"),
        pytest.param(
            {"url": "https://[www.gov.scot/isbn/9781802019445"},
            {},
            [("--url:", "is not a link")],
            id="url-unbalanced-bracket",
        ),
        pytest.param({"url": ""}, {}, [("--url:", "not an https://")], id="url-empty"),
        pytest.param(
            {"url": "https://www.gov.scot/a\r\nBcc: x@evil.example"},
            {},
            [("--url:", "control character U+000D")],
            id="url-crlf",
        ),
        pytest.param(
            {"url": "https://www.gov.scot/isbn/978 180"},
            {},
            [("--url:", "contains a space")],
            id="url-space",
        ),
        pytest.param(
            {"classification": "SECRET"},
            {},
            [("--classification:", "'SECRET' is not one of OFFICIAL, OFFICIAL-SENSITIVE")],
            id="classification-secret",
        ),
        pytest.param(
            {"classification": "official sensitive"},
            {},
            [("--classification:", "is not one of")],
            id="classification-misspelt",
        ),
        pytest.param(
            {"contact": "press-office"},
            {},
            [("--contact:", "'press-office' is not an email address")],
            id="contact-not-email",
        ),
        pytest.param(
            {"contact": "press@gov.example\r\nBcc: x@evil.example"},
            {},
            [("--contact:", "is not an email address")],
            id="contact-crlf",
        ),
        pytest.param({"lists": ""}, {}, [("--lists:", "at least one")], id="lists-empty"),
        pytest.param({"lists": " , ,"}, {}, [("--lists:", "at least one")], id="lists-commas"),
        pytest.param(
            {"lift": "2022-02-20 11:00", "notice_at": "now"},
            {},
            # Only the cause: not also "the notice must go before the lift".
            [("--lift:", "11:00 GMT on Sunday 20 February 2022 is in the past")],
            id="lift-in-past",
        ),
        pytest.param(
            {"lift": "2022-02-21 09:00", "notice_at": "now"},
            {},
            [("--lift:", "is in the past")],
            id="lift-is-now",
        ),
        pytest.param(
            {"notice_at": "2022-02-23 12:00"},
            {},
            [("--notice-at:", "must go before the lift (11:00 GMT on Wednesday 23 February")],
            id="notice-after-lift",
        ),
        pytest.param(
            {"notice_at": "2022-02-23 11:00"},
            {},
            [("--notice-at:", "must go before the lift")],
            id="notice-at-lift",
        ),
        pytest.param(
            {"notice_at": "2022-02-21 08:57"},
            {},
            [("--notice-at:", "08:57 GMT on Monday 21 February 2022 is in the past; use 'now'")],
            id="notice-past-beyond-grace",
        ),
        pytest.param(
            {"lift": "2022-03-27 01:30"},
            {},
            [("--lift:", "does not exist in Europe/London")],
            id="lift-nonexistent",
        ),
        pytest.param(
            {"lift": "2022-10-30 01:30"},
            {},
            [("--lift:", "happens twice in Europe/London")],
            id="lift-ambiguous",
        ),
        pytest.param({"lift": "Wednesday"}, {}, [("--lift:", "is not a time")], id="lift-junk"),
        pytest.param({"lift": "2022-02-23"}, {}, [("--lift:", "is not a time")], id="date-only"),
        pytest.param(
            {"notice_at": "soon"}, {}, [("--notice-at:", "is not a time")], id="notice-junk"
        ),
        pytest.param({}, {"pdf": b""}, [("--pdf strategy.pdf:", "the file is empty")], id="pdf0"),
        pytest.param(
            {},
            {"pdf": b"<html><body>Not found</body></html>"},
            [("--pdf strategy.pdf:", "not a PDF")],
            id="pdf-not-pdf",
        ),
        pytest.param(
            {},
            {"pdf": TRUNCATED_PDF},
            [("--pdf strategy.pdf:", "cut short (no %%EOF at the end)")],
            id="pdf-truncated",
        ),
        pytest.param(
            {},
            {"release": b"Line one\nLine two\nCaf\xe9 society\n"},
            [("--release release.md:3:", "not UTF-8 text (byte 21)")],
            id="release-latin-1",
        ),
        pytest.param(
            {}, {"release": b""}, [("--release release.md:", "the file is empty")], id="release0"
        ),
        pytest.param(
            {},
            {"release": b" \n\n\t\n"},
            [("--release release.md:", "the file is empty")],
            id="release-blank",
        ),
        pytest.param(
            {},
            {"release": b"Ring the \x07 bell\n"},
            [("--release release.md:1:", "contains control character U+0007")],
            id="release-bell",
        ),
        pytest.param(
            {},
            {"release": b"\x1b[31mred\x1b[0m\n"},
            [("--release release.md:1:", "contains control character U+001B")],
            id="release-ansi",
        ),
        pytest.param(
            {},
            {"release": b"old mac\rline endings\r"},
            [("--release release.md:1:", "contains control character U+000D")],
            id="release-lone-cr",
        ),
        pytest.param(
            {},
            {"social": b"\xff\xfe"},
            [("--social social.txt:1:", "not UTF-8 text")],
            id="social-not-utf8",
        ),
        pytest.param(
            {}, {"social": b"\n"}, [("--social social.txt:", "the file is empty")], id="social0"
        ),
    ],
)
def test_single_bad_change_is_refused_naming_the_option(
    request_changes: dict[str, object],
    file_changes: dict[str, object],
    expected: list[tuple[str, str]],
) -> None:
    with pytest.raises(InputError) as caught:
        check(
            dataclasses.replace(GOOD_REQUEST, **request_changes),  # type: ignore[arg-type]
            dataclasses.replace(GOOD_FILES, **file_changes),  # type: ignore[arg-type]
        )
    problems = problems_of(caught.value)
    assert len(problems) == len(expected), problems
    for problem, (option, fragment) in zip(problems, expected, strict=True):
        assert problem.startswith(f"{option} "), problem
        assert fragment in problem, problem


def test_several_problems_are_all_reported_at_once() -> None:
    request = dataclasses.replace(
        GOOD_REQUEST,
        title="",
        url="http://www.gov.scot/x",
        lists="",
        classification="TOP SECRET",
        contact="nobody",
        lift="2022-03-27 01:30",
    )
    files = dataclasses.replace(GOOD_FILES, pdf=b"", release=b"\xff")
    with pytest.raises(InputError) as caught:
        check(request, files)
    problems = problems_of(caught.value)
    options = [problem.split(":", 1)[0].split(" ", 1)[0] for problem in problems]
    assert options == [
        "--title",
        "--url",
        "--classification",
        "--contact",
        "--lift",
        "--lists",
        "--pdf",
        "--release",
    ]


def test_problem_with_the_default_contact_is_reported() -> None:
    with pytest.raises(InputError, match="--contact: 'not-configured' is not an email address"):
        check_request(
            GOOD_REQUEST, GOOD_FILES, now=NOW, zone=LONDON, default_contact="not-configured"
        )


def test_lift_a_moment_after_now_is_accepted() -> None:
    request = dataclasses.replace(GOOD_REQUEST, lift="2022-02-21 09:01", notice_at="now")
    checked = check(request)
    assert checked.lift_at - checked.notice_at == timedelta(minutes=1)


# --- new_pack_id ------------------------------------------------------------------------------

SUFFIX = "[abcdefghjkmnpqrstuvwxyz23456789]{4}"


@pytest.mark.parametrize(
    ("title", "stem"),
    [
        ("Serious Organised Crime Strategy", "serious-organised-crime"),
        ("Caf\u00e9 M\u00fcnster: \u00d6ko-Bericht 2022", "cafe-munster-oko-bericht"),
        ("  NHS   Recovery -- Plan!  ", "nhs-recovery-plan"),
        ("A/B 2022\r\nBcc: x", "a-b-2022-bcc-x"),
        ("\u6570\u636e\u62a5\u544a", "pack"),
        ("!!!", "pack"),
        ("", "pack"),
    ],
)
def test_new_pack_id_is_a_readable_slug_with_a_suffix(title: str, stem: str) -> None:
    pack_id = new_pack_id(title)
    assert re.fullmatch(f"{re.escape(stem)}-{SUFFIX}", pack_id), pack_id
    assert pack_id.isascii()
    assert len(pack_id) <= 30


@pytest.mark.parametrize(
    "title",
    [
        "The Scottish Government's Annual Report on Serious Organised Crime 2021 to 2022",
        "Supercalifragilisticexpialidocious statistics",
        "word " * 100,
    ],
)
def test_new_pack_id_stays_short(title: str) -> None:
    pack_id = new_pack_id(title)
    assert len(pack_id) <= 30
    assert re.fullmatch(f"[a-z0-9-]+-{SUFFIX}", pack_id), pack_id


def test_new_pack_ids_are_distinct() -> None:
    ids = {new_pack_id("Same title") for _ in range(10)}
    assert len(ids) == 10


# --- read_files -------------------------------------------------------------------------------


def test_read_files_reads_every_named_file(tmp_path: Path) -> None:
    (tmp_path / "strategy.pdf").write_bytes(PDF)
    (tmp_path / "release.md").write_bytes(RELEASE.encode())
    (tmp_path / "social.txt").write_bytes(SOCIAL.encode())
    request = dataclasses.replace(
        GOOD_REQUEST,
        pdf=tmp_path / "strategy.pdf",
        release=tmp_path / "release.md",
        social=tmp_path / "social.txt",
    )
    assert read_files(request) == GOOD_FILES
    without_social = read_files(dataclasses.replace(request, social=None))
    assert without_social == InputFiles(pdf=PDF, release=RELEASE.encode(), social=None)


def test_read_files_names_option_and_path_of_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "release.md").write_bytes(RELEASE.encode())
    missing = tmp_path / "no-such.pdf"
    request = dataclasses.replace(
        GOOD_REQUEST, pdf=missing, release=tmp_path / "release.md", social=None
    )
    with pytest.raises(InputError) as caught:
        read_files(request)
    message = str(caught.value)
    assert message.startswith(f"--pdf {missing}: cannot read it")
    assert "No such file or directory" in message
    assert "--release" not in message


def test_read_files_reports_every_unreadable_file(tmp_path: Path) -> None:
    request = dataclasses.replace(
        GOOD_REQUEST,
        pdf=tmp_path,  # a folder, not a file
        release=tmp_path / "gone.md",
        social=tmp_path / "gone.txt",
    )
    with pytest.raises(InputError) as caught:
        read_files(request)
    lines = str(caught.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        f"--pdf {tmp_path}",
        f"--release {tmp_path / 'gone.md'}",
        f"--social {tmp_path / 'gone.txt'}",
    ]
    assert all("cannot read it" in line for line in lines)
