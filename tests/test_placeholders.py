"""The live-link placeholder `[text](#)`: never a link in the notice, the URL in the live email."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from embargo_bot.messages.placeholders import Placeholders, lift_note, line_with_live_url

LIVE_URL = "https://www.gov.example/isbn/9781802019445"
AT = "11:00 GMT"
NOTE = "(link at 11:00 GMT)"

RELEASE = """\
# New strategy to tackle serious organised crime

The Home Office today published the strategy. [Read the strategy](#).

> Partners said: "[See the full text
> here](#)".

See the [annex](#annex) and `[not a link](#)`.
"""

placeholders = Placeholders()


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ("", 0),
        ("[Read the strategy](#)", 1),
        ("[a](#) and [b](<#>) and [c](# 'title')", 3),
        ("[anchor](#section) [empty]() [site](https://x.example/#)", 0),
        ("`[code](#)`\n\n    [indented](#)\n\n```\n[fenced](#)\n```\n", 0),
        ("![image](#)", 0),
        ("[by reference][r]\n\n[r]: #\n", 1),
        (r"\[escaped](#)", 0),
        ("| a | b |\n|---|---|\n| [x](#) | [x](#) |\n", 2),
        (RELEASE, 2),
    ],
)
def test_count(source: str, count: int) -> None:
    assert placeholders.count(source) == count


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("[Read the strategy](#).", f"Read the strategy {NOTE}."),
        ("Go: [**Read** it](#)!", f"Go: **Read** it {NOTE}!"),
        ("[a](#) [b](<#>) [c](# 'title')", f"a {NOTE} b {NOTE} c {NOTE}"),
        ("Empty [](#) one", f"Empty {NOTE} one"),
        ("`[x](#)` then [x](#)", f"`[x](#)` then x {NOTE}"),
        ("- one [a](#)\n  two [b](#)\n", f"- one a {NOTE}\n  two b {NOTE}\n"),
        ("> [Read\n> it](#) now", f"> Read\n> it {NOTE} now"),
        ("| [x](#) | [x](#) |\n|---|---|\n", f"| x {NOTE} | x {NOTE} |\n|---|---|\n"),
        ("[anchor](#top) stays", "[anchor](#top) stays"),
        ("| `[x](#)` | [x](#) |\n|---|---|\n", f"| `[x](#)` | x {NOTE} |\n|---|---|\n"),
        ("a\r\n[b](#)\u2028[c](#)\r\n", f"a\r\nb {NOTE}\u2028c {NOTE}\r\n"),
        ("| a |\n|---|\n| [x\\|y](#) |\n", f"| a |\n|---|\n| x\\|y {NOTE} |\n"),
        ("1. x\n\n   > [q\n   > w](#)\n", f"1. x\n\n   > q\n   > w {NOTE}\n"),
        ("Intro\n\t- tab [t](#)", f"Intro\n\t- tab t {NOTE}"),
        ("\t[code](#)", "\t[code](#)"),
        ("- a\n\n\t[t](#) tab-indented in the item", f"- a\n\n\tt {NOTE} tab-indented in the item"),
    ],
)
def test_notice_text_keeps_the_source_and_says_when_the_link_comes(source: str, text: str) -> None:
    assert placeholders.notice_text(source, AT) == text


def test_notice_html_has_no_placeholder_links() -> None:
    html = placeholders.notice_html(RELEASE, AT)
    assert 'href="#"' not in html
    assert f"Read the strategy {NOTE}." in html
    assert f"here {NOTE}" in html
    assert '<a href="#annex">annex</a>' in html
    assert "<code>[not a link](#)</code>" in html


def test_notice_html_keeps_the_text_formatting_of_a_placeholder() -> None:
    html = placeholders.notice_html('[**Read** the *strategy*](# "title")', AT)
    assert html == f"<p><strong>Read</strong> the <em>strategy</em> {NOTE}</p>\n"


def test_without_placeholders_the_html_is_what_the_project_renders() -> None:
    """As markdown-it renders it, but for headings, which sit below the email's own."""
    project = MarkdownIt("js-default")
    for source in (RELEASE.replace("](#)", "](#x)"), "Plain *text* <b>raw</b> & more\n"):
        expected = re.sub(
            r"<(/?)h([1-6])>", lambda m: f"<{m[1]}h{min(6, int(m[2]) + 2)}>", project.render(source)
        )
        assert placeholders.notice_html(source, AT) == expected
        assert placeholders.live_html(source, LIVE_URL) == expected


def test_the_lift_time_is_given_in_words() -> None:
    assert lift_note("11:00 BST") == "(link at 11:00 BST)"
    assert placeholders.notice_text("[x](#)", "09:30:15 GMT") == "x (link at 09:30:15 GMT)"


def test_live_html_links_every_placeholder_to_the_live_url() -> None:
    html = placeholders.live_html(RELEASE, LIVE_URL)
    assert html.count(f'href="{LIVE_URL}"') == 2
    assert 'href="#"' not in html
    assert '<a href="#annex">annex</a>' in html


def test_live_html_escapes_and_encodes_the_url() -> None:
    html = placeholders.live_html("[x](#)", "https://www.gov.example/a?b=1&c=é")
    assert html == '<p><a href="https://www.gov.example/a?b=1&amp;c=%C3%A9">x</a></p>\n'


def test_an_empty_placeholder_shows_the_address_in_the_live_email() -> None:
    assert (
        placeholders.live_html("[](#)", LIVE_URL) == f'<p><a href="{LIVE_URL}">{LIVE_URL}</a></p>\n'
    )
    assert placeholders.live_text("See [](#)", LIVE_URL) == f"See {LIVE_URL}"


def test_live_text_is_ready_to_paste() -> None:
    text = placeholders.live_text(RELEASE, LIVE_URL)
    assert "[Read the strategy]" not in text
    assert f"Read the strategy ({LIVE_URL})." in text
    assert f"> here ({LIVE_URL})" in text
    assert "[annex](#annex)" in text
    assert "`[not a link](#)`" in text
    assert placeholders.count(text) == 0


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "www.gov.example/x", "https://", 'https://x.example/"><b>']
)
def test_only_a_web_address_can_fill_a_placeholder(url: str) -> None:
    with pytest.raises(ValueError, match="not a web address"):
        placeholders.live_html("[x](#)", url)
    with pytest.raises(ValueError, match="not a web address"):
        placeholders.live_text("[x](#)", url)


MARKDOWNISH = st.text(alphabet="[]()#<>`*_!\\|-> \n\r\u2028\x0c\tab:", max_size=60)


@settings(max_examples=300, deadline=None)
@given(source=MARKDOWNISH)
def test_no_placeholder_survives_and_the_notice_never_links(source: str) -> None:
    notice_text = placeholders.notice_text(source, AT)
    live_text = placeholders.live_text(source, LIVE_URL)
    assert placeholders.count(notice_text) == 0
    assert placeholders.count(live_text) == 0
    assert 'href="#"' not in placeholders.notice_html(source, AT)
    assert 'href="#"' not in placeholders.live_html(source, LIVE_URL)
    if placeholders.count(source) == 0:
        assert notice_text == source == live_text


@settings(max_examples=200, deadline=None)
@given(source=MARKDOWNISH)
def test_the_notice_never_contains_the_live_url(source: str) -> None:
    assert "gov.example" not in placeholders.notice_html(source + "[x](#)", AT)
    assert "gov.example" not in placeholders.notice_text(source + "[x](#)", AT)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("[Read](#)\n", None),
        ("One\nSee https://www.gov.example/isbn/9781802019445 now\n", 2),
        ("[x](HTTP://WWW.GOV.EXAMPLE/isbn/9781802019445/)", 1),
        ("a\n\nwww.gov.example/isbn/9781802019445", 3),
        ("https://www.gov.example/isbn/other", None),
    ],
)
def test_a_release_that_spells_out_the_live_url_is_found(source: str, line: int | None) -> None:
    assert line_with_live_url(source, LIVE_URL) == line
