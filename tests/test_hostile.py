"""Hostile input: random and malicious values for the list parser, the time parser and
every ``queue`` field.

Each must get a clear error or a safe result: never a traceback, never a changed
store, never a header line that was not written as a header, never markup or
template syntax from an official's text that a mail client would run.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import GOOD_FILES, GOOD_REQUEST, PDF, Cli
from email_validator import validate_email
from hypothesis import (
    HealthCheck,
    Phase,
    currently_in_test_context,
    event,
    example,
    given,
    settings,
)
from hypothesis import strategies as st

from embargo_bot.domain.classification import Classification
from embargo_bot.domain.errors import InputError
from embargo_bot.domain.times import parse_when
from embargo_bot.lists.parse import RecipientList, parse_list
from embargo_bot.officials.intake import (
    MAX_REFERENCE,
    MAX_TITLE,
    CheckedRequest,
    InputFiles,
    QueueRequest,
    check_request,
)

LONDON = ZoneInfo("Europe/London")
ZONES = [LONDON, ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")]
NOW = datetime(2022, 2, 21, 9, 0, tzinfo=UTC)
GOOD_PDF = PDF

# Characters that could end or split an email header line, or a line of output.
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


# The headers of each MIME part under them: the text, the HTML, the PDF, the calendar entry.

# An RFC 2047 encoded word that decodes to CR LF and a header. Python's email package
# decodes such words in a header value it is given and, before 3.11.10 / 3.12.5
# (CPython gh-121650, CVE-2024-6923), writes the CR LF out raw: a value with no control
# characters can still inject a header.
ENCODED_BCC = "=?utf-8?q?Strategy=0D=0ABcc=3A_spy=40evil.example?="

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
    ENCODED_BCC,
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

# Template syntax that Markdown leaves as it is, so it must reach the HTML as written.
TEMPLATE_SYNTAX = ["{{ 7*7 }}", '{% include "x" %}', "{{ config }}", "{{ self }}"]
HOSTILE_RELEASES = [
    "<script>alert(1)</script>",
    *TEMPLATE_SYNTAX,
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for x in range(10**9) %}{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "${7*7} #{7*7} <%= 7*7 %>",
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
    lambda unit, times: unit * times, st.text(min_size=1, max_size=8), st.integers(200, 2_000)
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
junk_document = st.fixed_dictionaries(
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
# Often printable (so that some lists pass), sometimes a hostile value that must not.
printable_name = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"]),
    max_size=40,
)
display_name = st.one_of(
    printable_name,
    printable_name,
    printable_name,
    st.sampled_from(HOSTILE_TITLES[:12]),
    st.text(max_size=40),
)


@st.composite
def plausible_document(draw: st.DrawFn) -> dict[str, Any]:
    """A list that is nearly right, so that some of them pass and get checked."""
    domains = draw(st.lists(st.sampled_from(DOMAINS), min_size=1, max_size=3, unique=True))
    # Mostly allowed domains, sometimes a subdomain, now and then one that is not allowed.
    where = st.sampled_from([*domains, *domains, f"mail.{domains[0]}", "evil.example"])
    simple = st.from_regex(r"[a-z][a-z0-9_-]{0,15}", fullmatch=True)
    local = st.one_of(simple, simple, simple, local_part)
    recipients = draw(
        st.lists(
            st.fixed_dictionaries(
                {"email": st.builds("{}@{}".format, local, where)},
                optional={"name": display_name},
            ),
            min_size=1,
            max_size=4,
        )
    )
    document = {
        "name": "Partners " + draw(display_name),
        "allowed_domains": domains,
        "max_classification": draw(st.sampled_from([c.value for c in Classification])),
        "recipients": recipients,
    }
    if draw(st.booleans()):
        document["description"] = draw(display_name)
    return document


list_document = st.one_of(plausible_document(), junk_document)
yaml_punctuation = st.lists(
    st.sampled_from([*":-[]{}#&*!|>'\"%@`,?\\ \n\t\r", "name", "email", "- ", "  "])
).map("".join)


def outcome(name: str) -> None:
    """Counted in hypothesis' statistics, to show that both outcomes are exercised."""
    if currently_in_test_context():
        event(name)


def is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in UNSAFE_CATEGORIES


def yaml_line_count(text: str) -> int:
    """Lines as YAML counts them: it also breaks lines at CR, NEL and U+2028/9."""
    return 1 + sum(text.count(ch) for ch in "\n\r\x85\u2028\u2029")


def assert_list_contract(text: str, *, one_line: bool = True) -> RecipientList | None:
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
        # `lists check` prints one "file:line: message" per line, to grep: values are
        # echoed quoted, so no raw line break or control character reaches the terminal.
        if one_line:
            assert not any(is_unsafe(ch) and ch != "\t" for ch in shown), shown
    outcome("refused" if result is None else "accepted")
    if result is not None:
        assert_safe_list(result)
    return result


def assert_safe_list(result: RecipientList) -> None:
    assert result.path == LIST_PATH and result.key == "hostile"
    assert result.allowed_domains
    assert all(domain == domain.lower() for domain in result.allowed_domains)
    names = [result.name, result.description or "", *(r.name or "" for r in result.recipients)]
    for name in names:
        assert not any(is_unsafe(ch) for ch in name), name
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
@example('name: "a\\r\\nBcc: x@y"\nallowed_domains: [a.example]\n')
def test_parse_list_never_raises_on_arbitrary_text(text: str) -> None:
    assert_list_contract(text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,
        "{a: " * 1000 + "}" * 1000,
        "- " * 1000 + "x\n",
        "".join("  " * depth + "-\n" for depth in range(1000)),
    ],
    ids=["flow-lists", "flow-mappings", "block-lists", "indented-lists"],
)
def test_parse_list_reports_deeply_nested_junk_as_a_problem(text: str) -> None:
    """A 2 KB file of brackets is a bad list, not a crash of `lists check` or `queue`."""
    result, problems = parse_list(LIST_PATH, text)
    assert result is None and problems
    assert_list_contract(text)


@pytest.mark.parametrize(
    "text",
    [
        '"key\\nalpha.yaml:1: fake problem": 1\n',
        '"key\\r\\nalpha.yaml:1: fake problem": 1\n',
        '"key\\x1b[2J": 1\n',
        '"key\\u2028": 1\n',
        'name: Alpha\nrecipients:\n  - email: a@alpha.example\n    "x\\ny": 1\n',
    ],
    ids=["lf", "crlf", "escape", "line-separator", "recipient-key"],
)
def test_list_problems_stay_one_line_whatever_the_file_holds(text: str) -> None:
    """`lists check` prints one "file:line: message" per line; a key must not forge more."""
    result, problems = parse_list(LIST_PATH, text)
    assert result is None and problems
    assert_list_contract(text)


@settings(max_examples=80, deadline=None)
@given(list_document)
def test_parse_list_accepts_only_safe_names_and_allowed_addresses(document: dict[str, Any]) -> None:
    # Problem lines that echo a hostile key are test_list_problems_stay_one_line_...'s business:
    # here, whatever the values, a list that comes back must be safe to send to.
    for text in (
        yaml.safe_dump(document, allow_unicode=True),
        yaml.safe_dump(document, allow_unicode=False, default_style='"'),
    ):
        assert_list_contract(text, one_line=False)


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
    assert [p.line for p in problems] == [6]
    assert "recipient name" in problems[0].message and expected in problems[0].message


# --- times ------------------------------------------------------------------------------


def naive(year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    """A bound for hypothesis' datetimes(), which takes them without a zone."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC).replace(tzinfo=None)


offsets = st.sampled_from(["", "Z", "+00:00", "+01:00", "-01:00", "+14:00", "-12:00", "+05:30"])
iso_like = st.builds(
    lambda moment, sep, offset: moment.isoformat(sep=sep) + offset,
    st.datetimes(min_value=naive(1), max_value=naive(9999, 12, 31, 23, 59)),
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
@example("2030-03-31 01:30", LONDON)
@example("2030-10-27 01:30", LONDON)
@example("\x00", LONDON)
def test_parse_when_gives_utc_or_a_clear_error(text: str, zone: ZoneInfo) -> None:
    assert_utc_or_clear_error(text, zone)


def assert_utc_or_clear_error(text: str, zone: ZoneInfo) -> None:
    try:
        parsed = parse_when(text, zone, field="--lift")
    except InputError as exc:
        assert str(exc).startswith("--lift: ")
        assert not any(is_unsafe(ch) for ch in str(exc))
    else:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("0001-01-01T00:00+01:00", LONDON),
        ("9999-12-31T23:59-01:00", LONDON),
        ("9999-12-31 23:59", ZoneInfo("America/New_York")),
        ("0001-01-01 00:00", ZoneInfo("Asia/Tokyo")),
    ],
)
def test_parse_when_refuses_a_time_past_the_end_of_the_calendar(text: str, zone: ZoneInfo) -> None:
    """Valid ISO 8601 whose UTC moment is before year 1 or after year 9999."""
    assert_utc_or_clear_error(text, zone)


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(
        min_value=naive(1970),
        max_value=naive(2200),
        timezones=st.just(UTC),
    ),
    st.timezones(),
)
def test_parse_when_round_trips_iso_8601(moment: datetime, shown_in: Any) -> None:
    assert parse_when(moment.isoformat(), LONDON, field="--lift") == moment
    assert parse_when(moment.astimezone(shown_in).isoformat(), LONDON, field="--lift") == moment


# --- checking a queue request -----------------------------------------------------------


hostile_text = st.one_of(
    st.text(),
    st.sampled_from(HOSTILE_TITLES),
    st.builds(lambda a, c: a + c, st.text(max_size=20), control_text),
    huge_text,
)


# What each field may be fed, beside its good value.
HOSTILE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "title": hostile_text,
    "reference": st.one_of(hostile_text, st.none()),
    "url": st.one_of(
        hostile_text,
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
    "lift": st.one_of(hostile_text, time_text),
    "notice_at": st.one_of(hostile_text, st.none(), st.just("now"), time_text),
    "lists": st.one_of(hostile_text, st.none(), st.just(",,, ,")),
    "classification": st.one_of(
        hostile_text, st.sampled_from([c.value.lower() for c in Classification])
    ),
    "contact": st.one_of(hostile_text, st.emails(), st.just("ü@example.org")),
}
text_bytes = st.one_of(
    st.binary(),
    st.text().map(str.encode),
    st.builds(lambda b: codecs.BOM_UTF8 + b, st.binary()),
    st.sampled_from([r.encode() for r in HOSTILE_RELEASES]),
)
HOSTILE_FILES: dict[str, st.SearchStrategy[bytes | None]] = {
    "pdf": st.one_of(
        st.binary(),
        st.builds(lambda b: b"%PDF-" + b, st.binary()),
        st.builds(lambda b: b"%PDF-1.4\n" + b + b"\n%%EOF\n", st.binary()),
    ),
    "release": text_bytes,
    "social": st.one_of(text_bytes, st.none()),
}


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[QueueRequest, InputFiles]:
    """The good request with a few of its fields and files replaced by hostile ones."""
    fields = draw(st.sets(st.sampled_from(sorted(HOSTILE_FIELDS)), max_size=2))
    files = draw(st.sets(st.sampled_from(sorted(HOSTILE_FILES)), max_size=1))
    request = replace(GOOD_REQUEST, **{name: draw(HOSTILE_FIELDS[name]) for name in fields})
    return request, replace(GOOD_FILES, **{name: draw(HOSTILE_FILES[name]) for name in files})


def problem_lines(error: InputError) -> list[str]:
    header, *lines = str(error).split("\n")
    assert header == "cannot queue this pack:"
    assert lines
    return lines


@settings(max_examples=300, deadline=None)
@given(hostile_request())
def test_check_request_accepts_safely_or_names_the_option(
    request_and_files: tuple[QueueRequest, InputFiles],
) -> None:
    request, files = request_and_files
    try:
        checked = check_request(
            request, files, now=NOW, zone=LONDON, default_contact="ocu@example.org"
        )
    except InputError as exc:
        outcome("refused")
        for line in problem_lines(exc):
            assert line.startswith("  --"), line
            assert line.strip().split(":")[0].split(" ")[0] in QUEUE_OPTIONS, line
            assert not any(unicodedata.category(ch) == "Cc" for ch in line), line
        return
    outcome("accepted")
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


def through_the_cli(max_examples: int) -> settings:
    """Hypothesis settings for tests that run the command line and a store per example.

    A failing example is reported as found, not shrunk: each shrink step would be
    another command and store, and the explicit examples already give the short case.
    """
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )


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
        (html,) = (part.replace("\r\n", "\n") for part in parts(message, "text/html"))
        (text,) = (part.replace("\r\n", "\n") for part in parts(message, "text/plain"))
        assert "<script" not in html.lower()
        if "<script>" in release:
            assert "&lt;script&gt;" in html
        # The official's words as written, never run as a template: "{{ 7*7 }}" stays
        # itself and is not "49" (a byte order mark is only the file's encoding).
        assert release.removeprefix("\ufeff") in text
        paragraphs = release.split("\n\n")
        for syntax in TEMPLATE_SYNTAX:
            if syntax in paragraphs:  # alone, so Markdown has nothing to format in it
                assert syntax in unescape(html)


printable_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]) | st.just("\n")
)
release_text = st.one_of(
    st.sampled_from(HOSTILE_RELEASES),
    st.builds(
        lambda before, hostile, after: before + hostile + after,
        printable_text,
        st.sampled_from(HOSTILE_RELEASES[:-1]),
        printable_text,
    ),
    printable_text,
    st.text(),
)
title_text = st.one_of(
    st.sampled_from(HOSTILE_TITLES),
    printable_text,
    st.text(max_size=250),
)


@through_the_cli(max_examples=25)
@given(title=title_text, release=release_text)
@example(title="Strategy\r\nBcc: spy@evil.example", release="<script>alert(1)</script>")
@example(title=ENCODED_BCC, release="{{ 7*7 }}")
@example(title="Strategy\u2028Bcc: spy@evil.example", release="<script>alert(1)</script>")
@example(title="Strategy\u2029Bcc: spy@evil.example", release="{{ 7*7 }}")
@example(title="Strategy\x00NUL", release="{{ config }}")
@example(title="A" * 100_000, release='{% include "x" %}')
@example(title="B" * MAX_TITLE, release=" ".join(HOSTILE_RELEASES[:-1]))
@example(title="Strategy", release="\n\n".join(HOSTILE_RELEASES))
def test_queue_with_hostile_title_and_release_is_refused_or_sent_safely(
    cli: Cli, title: str, release: str
) -> None:
    # The social post goes into the same emails, autoescaped rather than through Markdown.
    release_file, social_file = cli.work / "release.md", cli.work / "social.txt"
    release_file.write_text(release, encoding="utf-8")
    social_file.write_text(release, encoding="utf-8")
    before = cli.dump()
    code, out, err = cli.queue(
        **{"--title": title, "--release": str(release_file), "--social": str(social_file)}
    )
    if code != 0:
        outcome("refused")
        err = cli.assert_refused((code, out, err), before)
        assert "cannot queue this pack:" in err
        if any(unicodedata.category(ch) == "Cc" for ch in title.strip()):
            assert "--title" in err
        return
    outcome("queued")
    assert "Traceback" not in err
    pack = json.loads(out)
    assert pack["title"] == title.strip()
    messages = cli.preview(pack["id"])
    for message in messages:
        subject = str(message["Subject"])
        assert " ".join(title.split()) in subject
    assert_release_safe(messages, release.replace("\r\n", "\n"))


HOSTILE_OPTIONS = {
    "--reference": [
        "ISBN\r\nBcc: spy@evil.example",
        "ISBN\x00",
        "ISBN\u2028Bcc: spy@evil.example",
        ENCODED_BCC,
        "<script>alert(1)</script> {{ 7*7 }}",
        "R" * MAX_REFERENCE,
        "R" * 100_000,
        " ",
    ],
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


def assert_queued_safely_or_refused(cli: Cli, option: str, value: str) -> None:
    before = cli.dump()
    code, out, err = cli.queue(**{option: value})
    if code != 0:
        outcome("refused")
        cli.assert_refused((code, out, err), before)
        return
    outcome("queued")
    assert "Traceback" not in err
    pack = json.loads(out)
    for message in cli.preview(pack["id"]):
        assert str(message["Reply-To"]).count("@") == 1
        for html in parts(message, "text/html"):
            assert_html_is_inert(html)


@pytest.mark.parametrize(
    ("option", "value"),
    [(option, value) for option, values in HOSTILE_OPTIONS.items() for value in values],
)
def test_queue_with_a_known_hostile_value_is_refused_or_sent_safely(
    cli: Cli, option: str, value: str
) -> None:
    assert_queued_safely_or_refused(cli, option, value)


@through_the_cli(max_examples=30)
@given(option=st.sampled_from(sorted(HOSTILE_OPTIONS)), value=hostile_text)
def test_queue_with_any_hostile_option_is_refused_or_sent_safely(
    cli: Cli, option: str, value: str
) -> None:
    assert_queued_safely_or_refused(cli, option, value)


@pytest.mark.parametrize("where", ["title", "pdf file name", "recipient name"])
def test_an_encoded_word_cannot_smuggle_in_a_header(cli: Cli, lists_dir: Path, where: str) -> None:
    """Each place a typed or listed value reaches a header, fed an encoded CR LF."""
    overrides = {"--title": ENCODED_BCC} if where == "title" else {}
    if where == "pdf file name":
        renamed = cli.work / f"{ENCODED_BCC}.pdf"
        renamed.write_bytes(cli.files.pdf_bytes)
        overrides["--pdf"] = str(renamed)
    if where == "recipient name":
        (lists_dir / "gamma.yaml").write_text(
            "name: Gamma\nallowed_domains: [gamma.example]\nmax_classification: OFFICIAL\n"
            f"recipients:\n  - email: one@gamma.example\n    name: '{ENCODED_BCC}'\n",
            encoding="utf-8",
        )
        overrides.update({"--lists": "gamma", "--classification": "OFFICIAL"})
    before = cli.dump()
    code, out, err = cli.queue(**overrides)
    if code != 0:
        cli.assert_refused((code, out, err), before)
        return
    assert cli.preview(json.loads(out)["id"])  # each message's headers checked as it is read


@pytest.mark.parametrize(
    "text",
    ["- " * 1000 + "x\n", '"colour\\nbeta.yaml:1: forged problem": blue\n'],
    ids=["deeply-nested", "key-with-line-break"],
)
def test_lists_check_reports_a_hostile_list_file_one_line_per_problem(
    cli: Cli, lists_dir: Path, text: str
) -> None:
    (lists_dir / "hostile.yaml").write_text(text, encoding="utf-8")
    code, out, err = cli.run("lists", "check")
    assert code != 0 and "Traceback" not in out + err
    summary, *problems = err.splitlines()
    assert summary.startswith("embargo-bot: ") and problems
    assert all(line.startswith(f"{lists_dir / 'hostile.yaml'}:") for line in problems), problems


@pytest.mark.parametrize(
    ("email_address", "name"),
    [
        ("one@gamma.example", "Zoë Brontë-Ångström 战略"),
        ("one@bücher.example", "Bücher"),
        ("one@gamma.example", "N" * 2000),
        ("one@gamma.example", 'Quote " and \\ backslash, comma; <angle> (paren)'),
    ],
    ids=["unicode-name", "unicode-domain", "long-name", "specials"],
)
def test_a_listed_recipient_in_any_script_gets_a_well_formed_to_header(
    cli: Cli, lists_dir: Path, email_address: str, name: str
) -> None:
    domain = email_address.split("@")[1]
    document = {
        "name": "Gamma",
        "allowed_domains": [domain],
        "max_classification": "OFFICIAL",
        "recipients": [{"email": email_address, "name": name}],
    }
    (lists_dir / "gamma.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    before = cli.dump()
    code, out, err = cli.queue(**{"--lists": "gamma", "--classification": "OFFICIAL"})
    if code != 0:
        cli.assert_refused((code, out, err), before)
        return
    # An international domain goes out in its ASCII (IDNA) form unless the relay says SMTPUTF8.
    ascii_address = validate_email(email_address, check_deliverability=False).ascii_email
    for message in cli.preview(json.loads(out)["id"]):
        (to,) = message["To"].addresses
        assert to.addr_spec in (email_address, ascii_address)
        assert to.display_name in ("", name)  # a name too long for one line is left out


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
    lambda bom, lines, bad, rest: bom + lines.encode() + bad + rest,
    st.sampled_from([b"", codecs.BOM_UTF8]),
    st.text(alphabet="abc \n\u00e9", max_size=40),
    st.sampled_from([b"\x80", b"\xff", b"\xe9 ", b"\xc3(", b"\xed\xa0\x80", b"\xf8\x88"]),
    st.binary(max_size=20),
).filter(lambda data: not is_utf8(data.removeprefix(codecs.BOM_UTF8)))


@through_the_cli(max_examples=25)
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
        (b"%PDF-1.7\n1 0 obj << >> endobj\n", "the PDF is cut short"),
        (b" %PDF-1.4\n%%EOF\n", "not a PDF"),
        (b"%PDF-1.4\n%%EOF\n" + b"\x00" * 4096, "the PDF is cut short"),
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
    """A valid PDF of exactly ``size`` bytes: the sample, a comment line before ``startxref``.

    There, the padding moves no object, so the cross-reference table stays right.
    """
    body, tail = GOOD_PDF.rsplit(b"startxref", 1)
    padding = size - len(GOOD_PDF) - 2
    assert padding >= 0
    return body + b"%" + b"x" * padding + b"\n" + b"startxref" + tail


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
    attachments = [
        p for p in notice.iter_attachments() if p.get_content_type() == "application/pdf"
    ]
    assert [a.get_content() for a in attachments] == [fits.read_bytes()]
