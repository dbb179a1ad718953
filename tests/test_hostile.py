"""Hostile input: random and malicious values for the list parser, the time parser and
every ``queue`` field.

Each must get a clear error or a safe result: never a traceback, never a changed
store, never a header line that was not written as a header, never markup or
template syntax from an official's text that a mail client would run.
"""

from __future__ import annotations

import codecs
import email
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import LIVE_URL, PackFiles, at, store_dump
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from embargo_bot.classification import Classification
from embargo_bot.cli import main
from embargo_bot.errors import InputError
from embargo_bot.intake import (
    MAX_REFERENCE,
    MAX_TITLE,
    CheckedRequest,
    InputFiles,
    QueueRequest,
    check_request,
)
from embargo_bot.recipients import RecipientList, parse_list
from embargo_bot.samplepdf import sample_pdf
from embargo_bot.times import parse_when

LONDON = ZoneInfo("Europe/London")
ZONES = [LONDON, ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")]
NOW = datetime(2022, 2, 21, 9, 0, tzinfo=UTC)
GOOD_PDF = sample_pdf(["Serious Organised Crime Strategy", "February 2022"])

# Characters that could end or split an email header line, or a line of output.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
UNSAFE_CATEGORIES = {"Cc", "Zl", "Zp"}

# Every option a refusal of `queue` may name.
QUEUE_OPTIONS = (
    "--title",
    "--reference",
    "--url",
    "--classification",
    "--contact",
    "--lift",
    "--lists",
    "--notice-at",
    "--notice",
    "--pdf",
    "--release",
    "--social",
)

# Headers embargo-bot writes, and those of the MIME structure under them.
EXPECTED_HEADERS = {
    "date",
    "message-id",
    "to",
    "from",
    "reply-to",
    "subject",
    "x-embargo-pack",
    "x-embargo-stage",
    "x-embargo-lift",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}

HOSTILE_TITLES = [
    "Strategy\r\nBcc: spy@evil.example",
    "Strategy\nBcc: spy@evil.example",
    "Strategy\rBcc: spy@evil.example",
    "Strategy\r\n\r\n<html>body injected</html>",
    "Strategy\x00NUL",
    "Strategy\u2028Bcc: spy@evil.example",
    "Strategy\u2029Bcc: spy@evil.example",
    "Strategy\x85Bcc: spy@evil.example",
    "Strategy\x0bBcc: spy@evil.example",
    "Strategy\x1b[2J",
    "=?utf-8?q?Strategy=0D=0ABcc=3A_spy=40evil.example?=",
    "Strategy: Bcc: spy@evil.example",
    "A" * 100_000,
    "B" * MAX_TITLE,
    "Ü" * MAX_TITLE,
    "Serious-Organised-Crime-Strategy-" * 6,
    "  \t Strategy \t ",
    "\u202eygetartS",
    "战略 🚨 Стратегия",
    "<script>alert(1)</script>",
    "{{ 7*7 }} {% include 'x' %}",
    "",
    " ",
]

TEMPLATE_SYNTAX = ["{{ 7*7 }}", '{% include "x" %}', "{{ config }}", "{{ ''.__class__ }}"]
HOSTILE_RELEASES = [
    "<script>alert(1)</script>",
    *TEMPLATE_SYNTAX,
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "![pixel](data:text/html,<script>alert(1)</script>)",
    "<style>body{display:none}</style>",
    "<!-- {{ 7*7 }} --> ]]> <![CDATA[ x ]]>",
    "</p></div></td></tr></table><script>alert(1)</script>",
    "&lt;script&gt; already escaped &amp;",
    "line one\u2028line two\u2029line three",
    "\ufeffByte order mark inside",
    "word " * 50_000,
]


# --- recipient lists --------------------------------------------------------------------

LIST_PATH = Path("lists/hostile.yaml")
DOMAINS = ["alpha.example", "beta.example", "Police.Scot.example", "bücher.example"]

control_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=["Cc", "Zl", "Zp", "Cf"]), min_size=1
)
huge_text = st.builds(
    lambda unit, times: unit * times, st.text(min_size=1, max_size=8), st.integers(500, 20_000)
)
hostile_scalar = st.one_of(
    st.text(),
    st.builds(lambda a, c, b: a + c + b, st.text(max_size=10), control_text, st.text(max_size=10)),
    st.sampled_from(HOSTILE_TITLES[:12]),
    huge_text,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.dates(),
)
nested_junk = st.recursive(
    hostile_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
local_part = st.one_of(
    st.from_regex(r"[a-z][a-z0-9.+_-]{0,15}", fullmatch=True),
    st.text(max_size=20),
    st.sampled_from(["a\r\nbcc", "x\u2028y", "ü", '"quoted local"', "a@b", "."]),
)
address = st.one_of(
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        local_part,
        st.sampled_from([*DOMAINS, "sub.alpha.example", "evil.example", "alpha.example.evil"]),
    ),
    st.emails(),
    hostile_scalar,
)
recipient_entry = st.one_of(
    st.fixed_dictionaries({"email": address}, optional={"name": hostile_scalar}),
    st.fixed_dictionaries({"email": address}, optional={"name": st.text(), "colour": nested_junk}),
    nested_junk,
)
list_document = st.fixed_dictionaries(
    {
        "name": st.one_of(st.text(min_size=1), hostile_scalar),
        "allowed_domains": st.one_of(
            st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3),
            st.lists(st.one_of(st.sampled_from(DOMAINS), hostile_scalar), max_size=3),
            nested_junk,
        ),
        "max_classification": st.one_of(
            st.sampled_from([c.value for c in Classification]), hostile_scalar
        ),
        "recipients": st.one_of(st.lists(recipient_entry, max_size=5), nested_junk),
    },
    optional={"description": hostile_scalar, "extra": nested_junk, "": hostile_scalar},
)
yaml_punctuation = st.lists(
    st.sampled_from([*":-[]{}#&*!|>'\"%@`,?\\ \n\t\r", "name", "email", "- ", "  "])
).map("".join)


def yaml_line_count(text: str) -> int:
    """Lines as YAML counts them: it also breaks lines at CR, NEL and U+2028/9."""
    return 1 + sum(text.count(ch) for ch in "\n\r\x85\u2028\u2029")


def assert_list_contract(text: str) -> RecipientList | None:
    result, problems = parse_list(LIST_PATH, text)
    assert (result is None) == bool(problems)
    for problem in problems:
        assert problem.message.strip(), problem
        shown = str(problem)
        if problem.line is None:
            assert shown.startswith(f"{LIST_PATH}: ")
        else:
            assert 1 <= problem.line <= yaml_line_count(text) + 1, problem
            assert shown.startswith(f"{LIST_PATH}:{problem.line}: ")
        # `lists check` prints one "file:line: message" per line, to grep.
        assert not any(ch in LINE_BREAKS for ch in shown), shown
    if result is not None:
        assert_safe_list(result)
    return result


def assert_safe_list(result: RecipientList) -> None:
    assert result.path == LIST_PATH and result.key == "hostile"
    assert result.allowed_domains
    assert all(domain == domain.lower() for domain in result.allowed_domains)
    names = [result.name, result.description or "", *(r.name or "" for r in result.recipients)]
    for name in names:
        assert not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in name), name
        assert name == name.strip()
    for recipient in result.recipients:
        assert recipient.list_key == "hostile"
        assert not any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in recipient.email)
        local, _, domain = recipient.email.rpartition("@")
        assert local and domain
        domain = domain.lower()
        assert any(domain == d or domain.endswith("." + d) for d in result.allowed_domains), (
            recipient.email,
            result.allowed_domains,
        )


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(), yaml_punctuation))
@example("")
@example("\x00")
@example("name: \"a\\r\\nBcc: x@y\"\nallowed_domains: [a.example]\n")
@example('"key\\nalpha.yaml:1: fake problem": 1\n')
@example("[" * 400 + "]" * 400)
def test_parse_list_never_raises_on_arbitrary_text(text: str) -> None:
    assert_list_contract(text)


@settings(max_examples=150, deadline=None)
@given(list_document)
def test_parse_list_accepts_only_safe_names_and_allowed_addresses(document: dict[str, Any]) -> None:
    assert_list_contract(yaml.safe_dump(document, allow_unicode=True))
    assert_list_contract(yaml.safe_dump(document, allow_unicode=False, default_style='"'))


def test_parse_list_still_accepts_a_plain_list() -> None:
    """The properties above are not vacuous: a good list comes back whole."""
    result = assert_list_contract(
        "name: Alpha\nallowed_domains: [alpha.example]\nmax_classification: OFFICIAL\n"
        "recipients:\n  - email: one@alpha.example\n    name: One\n"
    )
    assert result is not None and [r.email for r in result.recipients] == ["one@alpha.example"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"Alpha\\r\\nBcc: x@y"', "control character U+000D"),
        ('"Alpha\\u2028Bcc: x@y"', "control character U+2028"),
        ('"Alpha\\0"', "control character U+0000"),
        ('"Alpha\\x1b[2J"', "control character U+001B"),
    ],
)
def test_parse_list_refuses_control_characters_in_names(value: str, expected: str) -> None:
    text = (
        "name: Alpha\nallowed_domains: [alpha.example]\nmax_classification: OFFICIAL\n"
        f"recipients:\n  - email: one@alpha.example\n    name: {value}\n"
    )
    result, problems = parse_list(LIST_PATH, text)
    assert result is None
    assert [str(p) for p in problems] == [
        f"{LIST_PATH}:6: recipient name contains {expected}; it may go into email headers, "
        "so keep it on one line without control characters"
    ]


# --- times ------------------------------------------------------------------------------

offsets = st.sampled_from(["", "Z", "+00:00", "+01:00", "-01:00", "+14:00", "-12:00", "+05:30"])
iso_like = st.builds(
    lambda moment, sep, offset: moment.isoformat(sep=sep) + offset,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    st.sampled_from(["T", " "]),
    offsets,
)
time_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789-:T +Z.,W"),
    iso_like,
    st.builds(lambda a, b: a + b, iso_like, st.text(max_size=4)),
)


@settings(max_examples=300, deadline=None)
@given(time_text, st.sampled_from(ZONES))
@example("0001-01-01T00:00+01:00", LONDON)
@example("9999-12-31T23:59-01:00", LONDON)
@example("9999-12-31 23:59", ZoneInfo("America/New_York"))
@example("0001-01-01 00:00", ZoneInfo("Asia/Tokyo"))
@example("2030-03-31 01:30", LONDON)
@example("2030-10-27 01:30", LONDON)
def test_parse_when_gives_utc_or_a_clear_error(text: str, zone: ZoneInfo) -> None:
    try:
        parsed = parse_when(text, zone, field="--lift")
    except InputError as exc:
        assert str(exc).startswith("--lift: ")
        assert not any(ch in LINE_BREAKS for ch in str(exc))
    else:
        assert parsed.tzinfo is UTC


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.timezones(),
)
def test_parse_when_round_trips_iso_8601(moment: datetime, shown_in: Any) -> None:
    assert parse_when(moment.isoformat(), LONDON, field="--lift") == moment
    assert parse_when(moment.astimezone(shown_in).isoformat(), LONDON, field="--lift") == moment


# --- checking a queue request -----------------------------------------------------------

GOOD_REQUEST = QueueRequest(
    title="Serious Organised Crime Strategy",
    pdf=Path("strategy.pdf"),
    release=Path("release.md"),
    social=Path("social.txt"),
    url="https://www.gov.scot/isbn/9781802019445",
    lift="2022-02-23 11:00",
    lists="nca,copfs",
    notice_at="2022-02-22 09:00",
    classification="official-sensitive",
    reference="SG/2022/14",
    contact=None,
)
GOOD_FILES = InputFiles(pdf=GOOD_PDF, release=b"# Strategy\n\nIt is out.\n", social=b"Out! #SOC")

hostile_text = st.one_of(
    st.text(),
    st.sampled_from(HOSTILE_TITLES),
    st.builds(lambda a, c: a + c, st.text(max_size=20), control_text),
    huge_text,
)


def field_value(good: str | None, *extra: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(good), hostile_text, *extra)


request_fields = st.fixed_dictionaries(
    {
        "title": field_value(GOOD_REQUEST.title),
        "reference": field_value(GOOD_REQUEST.reference, st.none()),
        "url": field_value(
            GOOD_REQUEST.url,
            st.builds(lambda s: "https://" + s, st.text()),
            st.sampled_from(
                [
                    "javascript:alert(1)",
                    "http://insecure.example/",
                    "https://",
                    "https://[::1",
                    "https://x.example:0/",
                    "https://x.example:99999/",
                    "https://x.example/\r\nBcc: y@z",
                    "HTTPS://WWW.GOV.SCOT/",
                ]
            ),
        ),
        "lift": field_value(GOOD_REQUEST.lift, time_text),
        "notice_at": field_value(GOOD_REQUEST.notice_at, st.none(), st.just("now"), time_text),
        "lists": field_value(GOOD_REQUEST.lists, st.none(), st.just(",,, ,")),
        "classification": field_value(
            GOOD_REQUEST.classification, st.sampled_from([c.value for c in Classification])
        ),
        "contact": field_value(None, st.emails(), st.just("ü@example.org")),
    }
)
text_bytes = st.one_of(
    st.binary(),
    st.text().map(str.encode),
    st.builds(lambda b: codecs.BOM_UTF8 + b, st.binary()),
    st.sampled_from([r.encode() for r in HOSTILE_RELEASES]),
)
file_fields = st.fixed_dictionaries(
    {
        "pdf": st.one_of(
            st.just(GOOD_PDF),
            st.binary(),
            st.builds(lambda b: b"%PDF-" + b, st.binary()),
            st.builds(lambda b: b"%PDF-1.4\n" + b + b"\n%%EOF\n", st.binary()),
        ),
        "release": st.one_of(st.just(GOOD_FILES.release), text_bytes),
        "social": st.one_of(st.just(GOOD_FILES.social), st.none(), text_bytes),
    }
)


def problem_lines(error: InputError) -> list[str]:
    header, *lines = str(error).split("\n")
    assert header == "cannot queue this pack:"
    assert lines
    return lines


@settings(max_examples=300, deadline=None)
@given(request_fields, file_fields)
def test_check_request_accepts_safely_or_names_the_option(
    fields: dict[str, Any], files: dict[str, bytes | None]
) -> None:
    request = replace(GOOD_REQUEST, **fields)
    try:
        checked = check_request(
            request, InputFiles(**files), now=NOW, zone=LONDON, default_contact="ocu@example.org"
        )
    except InputError as exc:
        for line in problem_lines(exc):
            assert line.startswith("  --"), line
            assert line.strip().split(":")[0].split(" ")[0] in QUEUE_OPTIONS, line
            assert not any(unicodedata.category(ch) == "Cc" for ch in line), line
        return
    assert isinstance(checked, CheckedRequest)
    for value, limit in ((checked.title, MAX_TITLE), (checked.reference, MAX_REFERENCE)):
        if value is None:
            continue
        assert value and value == value.strip() and len(value) <= limit
        assert "\r" not in value and "\n" not in value
        assert not any(unicodedata.category(ch) == "Cc" for ch in value), value
    assert checked.url.lower().startswith("https://")
    assert not any(unicodedata.category(ch) == "Cc" or ch == " " for ch in checked.url)
    assert checked.lift_at.tzinfo is UTC and checked.lift_at > NOW
    assert all(NOW <= wave.at < checked.lift_at for wave in checked.waves)
    assert checked.pdf.startswith(b"%PDF-") and b"%%EOF" in checked.pdf[-2048:]
    for text in (checked.release, checked.social or ""):
        assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text)
    assert isinstance(checked.classification, Classification)


# --- through the command line -----------------------------------------------------------


@dataclass
class Cli:
    database: Path
    files: PackFiles
    work: Path
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def queue_args(self, **overrides: str) -> list[str]:
        options = {
            "--title": "Serious Organised Crime Strategy",
            "--pdf": str(self.files.pdf),
            "--release": str(self.files.release),
            "--social": str(self.files.social),
            "--url": LIVE_URL,
            "--lift": at(datetime.now(UTC) + timedelta(hours=1)),
            "--lists": "alpha,beta",
        }
        options.update(overrides)
        args = ["queue", "--json"]
        for option, value in options.items():
            args += [option, value]
        return args

    def queue(self, **overrides: str) -> tuple[int, str, str]:
        return self.run(*self.queue_args(**overrides))

    def dump(self) -> list[str]:
        return store_dump(self.database)

    def assert_refused(self, result: tuple[int, str, str], before: list[str]) -> str:
        """A clear error and nothing else; returns stderr."""
        code, out, err = result
        assert code != 0
        assert out == ""
        assert "Traceback" not in err
        assert err.startswith("embargo-bot: ") and err.endswith("\n")
        assert all(line.strip() for line in err.splitlines())
        # Values are echoed quoted: no raw control character reaches the terminal.
        assert not any(unicodedata.category(ch) == "Cc" for ch in err.replace("\n", "")), err
        assert self.dump() == before
        return err

    def preview(self, pack_id: str) -> list[EmailMessage]:
        out_dir = self.work / f"preview-{pack_id}"
        code, out, err = self.run("preview", pack_id, "--out", str(out_dir), "--json")
        assert code == 0, err
        written = json.loads(out)
        assert written
        return [assert_real_headers(Path(item["path"]).read_bytes()) for item in written]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lists_dir: Path,
    key: str,
    pack_files: PackFiles,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """The environment a user sets, and a store that already holds one good pack."""
    values = {
        "EMBARGO_BOT_DATABASE": str(tmp_path / "store.db"),
        "EMBARGO_BOT_RECIPIENTS_DIR": str(lists_dir),
        "EMBARGO_BOT_KEY": key,
        "EMBARGO_BOT_FROM": "Organised Crime Unit <ocu@example.org>",
        "EMBARGO_BOT_SMTP_HOST": "127.0.0.1",
        "EMBARGO_BOT_SMTP_SECURITY": "none",
        "EMBARGO_BOT_REQUIRE_CLEARANCE": "false",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "hostile"
    work.mkdir()
    cli = Cli(tmp_path / "store.db", pack_files, work, capsys)
    code, _, err = cli.queue()
    assert code == 0, err
    yield cli


HEADER_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")


def assert_real_headers(data: bytes) -> EmailMessage:
    """Every header line is one that embargo-bot meant to write, and nothing was injected."""
    head, blank, _ = data.partition(b"\r\n\r\n")
    assert blank, "no blank line ends the headers"
    names = []
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, line
        assert len(line) <= 998, len(line)
        assert all(byte < 0x80 for byte in line), line  # non-ASCII only as RFC 2047 words
        if line[:1] in (b" ", b"\t"):
            assert names, "a continuation line before any header"
            continue
        assert HEADER_FIELD.match(line), line
        names.append(line.split(b":", 1)[0].decode().lower())
    assert set(names) <= EXPECTED_HEADERS, names
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_all("Bcc") is None and message.get_all("Cc") is None
    for name in ("Subject", "From", "To", "Reply-To", "X-Embargo-Pack"):
        values = message.get_all(name)
        assert values is not None and len(values) == 1, (name, values)
        assert not any(ch in LINE_BREAKS for ch in str(values[0])), (name, values)
    assert len(message["To"].addresses) == 1
    return message


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)


# The templates' own tags, and what Markdown makes of an official's text.
SAFE_TAGS = {
    *("html", "head", "meta", "title", "body", "table", "tr", "td", "div", "span"),
    *("h1", "h2", "h3", "h4", "h5", "h6", "p", "strong", "em", "a", "br", "hr", "img"),
    *("ul", "ol", "li", "code", "pre", "blockquote", "s"),
}


def parts(message: EmailMessage, content_type: str) -> list[str]:
    found = []
    for part in message.walk():
        if part.get_content_type() == content_type and isinstance(part, EmailMessage):
            content = part.get_content()
            assert isinstance(content, str)
            found.append(content)
    return found


def assert_html_is_inert(html: str) -> None:
    markup = _Markup()
    markup.feed(html)
    markup.close()
    assert set(markup.tags) <= SAFE_TAGS, set(markup.tags) - SAFE_TAGS
    for name, value in markup.attributes:
        assert not name.startswith("on"), (name, value)
        if name in ("href", "src") and value:
            scheme = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            assert not scheme.startswith(("javascript:", "vbscript:", "data:text")), value


def assert_release_safe(messages: list[EmailMessage], release: str) -> None:
    notices = [m for m in messages if m["X-Embargo-Stage"] == "notice"]
    assert notices
    for message in messages:
        for html in parts(message, "text/html"):
            assert_html_is_inert(html)
    for message in notices:
        (html,) = parts(message, "text/html")
        (text,) = parts(message, "text/plain")
        assert "<script" not in html.lower()
        if "<script>" in release:
            assert "&lt;script&gt;" in html
        for syntax in TEMPLATE_SYNTAX:
            if syntax in release:
                assert syntax in text  # shown as written, never run
                assert syntax.replace('"', "&quot;").replace("'", "&#39;") in html
        if "{{ 7*7 }}" in release and "49" not in release:
            assert "49" not in text


release_text = st.one_of(
    st.sampled_from(HOSTILE_RELEASES),
    st.builds(
        lambda before, hostile, after: before + hostile + after,
        st.text(max_size=30),
        st.sampled_from(HOSTILE_RELEASES[:12]),
        st.text(max_size=30),
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]) | st.just("\n")),
)
title_text = st.one_of(st.sampled_from(HOSTILE_TITLES), st.text(max_size=250))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=title_text, release=release_text)
def test_queue_with_hostile_title_and_release_is_refused_or_sent_safely(
    cli: Cli, title: str, release: str
) -> None:
    release_file = cli.work / "release.md"
    release_file.write_text(release, encoding="utf-8")
    before = cli.dump()
    code, out, err = cli.queue(**{"--title": title, "--release": str(release_file)})
    if code != 0:
        err = cli.assert_refused((code, out, err), before)
        assert "cannot queue this pack:" in err
        if any(ch in LINE_BREAKS for ch in title):
            assert "--title" in err
        return
    assert "Traceback" not in err
    pack = json.loads(out)
    assert pack["title"] == title.strip()
    messages = cli.preview(pack["id"])
    for message in messages:
        subject = str(message["Subject"])
        assert " ".join(title.split()) in subject
    assert_release_safe(messages, release.replace("\r\n", "\n"))


HOSTILE_OPTIONS = {
    "--reference": [*HOSTILE_TITLES, "ISBN\r\nBcc: spy@evil.example", "R" * MAX_REFERENCE],
    "--contact": [
        "ocu@example.org\r\nBcc: spy@evil.example",
        "ocu@example.org, spy@evil.example",
        "Spy <spy@evil.example>",
        "ü@example.org",
        "ocu@example.org\u2028",
        "x" * 10_000 + "@example.org",
        "",
    ],
    "--url": [
        "https://x.example/\r\nBcc: spy@evil.example",
        'https://x.example/"><script>alert(1)</script>',
        "javascript:alert(1)//https://x.example",
        "https://x.example/\u2028",
        "https://" + "x" * 100_000 + ".example/",
    ],
    "--lists": ["alpha\r\nBcc: spy@evil.example", "alpha,\x1b[2J", "../../etc/passwd", ",,,"],
    "--classification": ["OFFICIAL\r\nBcc: x@y", "TOP SECRET", "official-sensitive\x00"],
    "--lift": ["9999-12-31T23:59-01:00", "0001-01-01T00:00+01:00", "\x00", "2030-03-31 01:30"],
    "--notice-at": ["now\r\n", "9999-12-31T23:59:59-01:00", "yesterday"],
}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(sorted(HOSTILE_OPTIONS)).flatmap(
        lambda option: st.tuples(
            st.just(option), st.one_of(st.sampled_from(HOSTILE_OPTIONS[option]), hostile_text)
        )
    )
)
def test_queue_with_any_hostile_option_is_refused_or_sent_safely(
    cli: Cli, option_value: tuple[str, str]
) -> None:
    option, value = option_value
    before = cli.dump()
    code, out, err = cli.queue(**{option: value})
    if code != 0:
        cli.assert_refused((code, out, err), before)
        return
    pack = json.loads(out)
    for message in cli.preview(pack["id"]):
        assert str(message["Reply-To"]).count("@") == 1
        for html in parts(message, "text/html"):
            assert_html_is_inert(html)


# --- files that are not what they say ---------------------------------------------------


def invalid_utf8_line(data: bytes) -> int:
    """The line of the first byte that is not UTF-8, counting from the file's first byte."""
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data[: len(data) - len(body) + exc.start].count(b"\n") + 1
    raise AssertionError("the data is valid UTF-8")


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


not_utf8 = st.builds(
    lambda bom, lines, junk: bom + lines.encode() + junk,
    st.sampled_from([b"", codecs.BOM_UTF8]),
    st.text(alphabet="abc \n", max_size=40),
    st.binary(min_size=1, max_size=40).filter(lambda b: not is_utf8(b)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=not_utf8, option=st.sampled_from(["--release", "--social"]))
@example(data=codecs.BOM_UTF8 + b"line one\nCaf\xe9 on line two\n", option="--release")
def test_a_text_file_that_is_not_utf8_is_refused_naming_its_line(
    cli: Cli, data: bytes, option: str
) -> None:
    path = cli.work / ("release.md" if option == "--release" else "social.txt")
    path.write_bytes(data)
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{option: str(path)}), before)
    assert f"{option} {path}:{invalid_utf8_line(data)}: not UTF-8 text" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<!DOCTYPE html><html><body>not a pdf</body></html>\n%%EOF", "not a PDF"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 64 + b"%%EOF", "not a PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32, "not a PDF"),
        (b"", "the file is empty"),
        (b"%PDF-1.7\n1 0 obj << >> endobj\n", "cut short"),
        (b" %PDF-1.4\n%%EOF\n", "not a PDF"),
        (b"%PDF-1.4\n%%EOF\n" + b"\x00" * 4096, "cut short"),
    ],
    ids=["html", "zip", "png", "empty", "no-eof", "leading-space", "eof-buried"],
)
def test_a_pdf_that_is_something_else_is_refused(cli: Cli, content: bytes, expected: str) -> None:
    fake = cli.work / "strategy.pdf"
    fake.write_bytes(content)
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--pdf": str(fake)}), before)
    assert f"--pdf {fake}: {expected}" in err


def padded_pdf(size: int) -> bytes:
    """A PDF of exactly ``size`` bytes: the sample with a comment line after its header."""
    header, rest = GOOD_PDF.split(b"\n", 1)
    padding = size - len(GOOD_PDF) - 2
    assert padding >= 0
    return header + b"\n%" + b"x" * padding + b"\n" + rest


@pytest.mark.parametrize("limit_env", ["25", None])
def test_a_50mb_pdf_is_refused_before_it_is_read(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, limit_env: str | None
) -> None:
    if limit_env is None:
        monkeypatch.delenv("EMBARGO_BOT_MAX_PDF_MB", raising=False)  # the default is 25 MB
    else:
        monkeypatch.setenv("EMBARGO_BOT_MAX_PDF_MB", limit_env)
    big = cli.work / "big.pdf"
    with big.open("wb") as handle:
        handle.write(b"%PDF-1.4\n")
        handle.truncate(50_000_000)  # sparse: nothing is written, and nothing need be read
    read: list[Path] = []
    read_bytes = Path.read_bytes

    def recording_read_bytes(path: Path) -> bytes:
        read.append(path)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", recording_read_bytes)
    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--pdf": str(big)}), before)
    assert f"--pdf {big}: 50.0 MB is over the limit of 25 MB (EMBARGO_BOT_MAX_PDF_MB)" in err
    assert big not in read


def test_a_pdf_limit_of_its_own_is_kept_both_ways(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBARGO_BOT_MAX_PDF_MB", "0.05")
    fits, too_big = cli.work / "fits.pdf", cli.work / "too-big.pdf"
    fits.write_bytes(padded_pdf(49_000))
    too_big.write_bytes(padded_pdf(51_000))

    before = cli.dump()
    err = cli.assert_refused(cli.queue(**{"--pdf": str(too_big)}), before)
    assert "over the limit of 0.05 MB (EMBARGO_BOT_MAX_PDF_MB)" in err

    code, out, err = cli.queue(**{"--pdf": str(fits)})
    assert code == 0, err
    pack = json.loads(out)
    assert pack["pdf_name"] == "fits.pdf"
    assert cli.dump() != before
    (notice, *_) = (m for m in cli.preview(pack["id"]) if m["X-Embargo-Stage"] == "notice")
    attachments = [p for p in notice.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert [a.get_content() for a in attachments] == [fits.read_bytes()]
