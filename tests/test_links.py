"""The live link is found however it is written: normal forms of RFC 3986 section 6."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from embargo_bot.messages.links import (
    comparison_key,
    find_live_link,
    normalise_url,
    urls_in_html,
    urls_in_markdown,
)

LIVE = "https://www.gov.example/isbn/probe"


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("https://www.gov.example/isbn/%70robe", "https://www.gov.example/isbn/probe"),
        ("https://www.gov.example/isbn/./probe", "https://www.gov.example/isbn/probe"),
        ("https://www.gov.example/a/b/../../isbn/probe", "https://www.gov.example/isbn/probe"),
        ("https://www.gov.example:443/isbn/probe", "https://www.gov.example/isbn/probe"),
        ("http://www.gov.example:80/", "http://www.gov.example/"),
        ("https://www.gov.example:8443/", "https://www.gov.example:8443/"),
        ("https://www.gov.example./isbn/probe", "https://www.gov.example/isbn/probe"),
        ("HTTPS://WWW.GOV.EXAMPLE/isbn/probe", "https://www.gov.example/isbn/probe"),
        ("https://www.gov.example", "https://www.gov.example/"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
        ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
        ("https://ｗｗｗ．gov。example/", "https://www.gov.example/"),  # noqa: RUF001
        ("https://%77ww.gov.example/", "https://www.gov.example/"),
        ("https://www.gov.example/a%2fb%7e%41", "https://www.gov.example/a%2Fb~A"),
        ("https://www.gov.example/%2e/probe", "https://www.gov.example/probe"),
        ("https://www.gov.example/a b", "https://www.gov.example/a%20b"),
        ("https://www.gov.example/prøbe", "https://www.gov.example/pr%C3%B8be"),
        ("https://www.gov.example/?q=%7a#Top", "https://www.gov.example/?q=z#Top"),
        ("https:\\\\www.gov.example\\isbn\\probe", "https://www.gov.example/isbn/probe"),
        ("https:www.gov.example/isbn/probe", "https://www.gov.example/isbn/probe"),
        ("  https://www.gov.example/isbn/pro\nbe ", "https://www.gov.example/isbn/probe"),
        ("//www.gov.example/x", "https://www.gov.example/x"),
        ("https://user:pass@www.gov.example/", "https://user:pass@www.gov.example/"),
        ("https://[::1]:443/x", "https://[::1]/x"),
    ],
)
def test_normal_forms(written: str, normal: str) -> None:
    assert normalise_url(written) == normal


@pytest.mark.parametrize(
    "url", ["mailto:press@gov.example", "ftp://gov.example/", "#", "/relative/path", "https://"]
)
def test_not_a_web_address(url: str) -> None:
    assert normalise_url(url) is None


@pytest.mark.parametrize(
    "written",
    [
        "https://www.gov.example/isbn/%70robe",  # the case
        "https://www.gov.example/isbn/./probe",
        "https://www.gov.example/isbn/x/../probe",
        "https://www.gov.example/isbn/%2e/probe",
        "https://www.gov.example:443/isbn/probe",
        "https://www.gov.example./isbn/probe",
        "HTTPS://WWW.GOV.EXAMPLE/ISBN/PROBE",
        "http://www.gov.example/isbn/probe",
        "https://gov.example/isbn/probe",
        "https://www.gov.example/isbn/probe/",
        "https://www.gov.example//isbn//probe",
        "https://www.gov.example/isbn/probe?utm_source=partner",
        "https://www.gov.example/isbn/probe#summary",
        "https://someone@www.gov.example/isbn/probe",
        "https:\\\\www.gov.example\\isbn\\probe",
        "https://%77ww.gov.example/isbn/probe",
    ],
)
@pytest.mark.parametrize(
    "template",
    [
        "Read it at [the strategy]({url}) from 11:00.",  # Markdown link
        "Read it: <{url}>",  # Markdown autolink
        "Read [the strategy][s].\n\n[s]: {url}\n",  # reference-style
        'Read <a href="{url}">the strategy</a>.',  # rendered HTML
        "<img src='{url}'>",
        "Read it at {url} from 11:00.",  # plain text
        "(see {url})",
    ],
)
def test_every_trick_in_every_kind_of_text_is_found(written: str, template: str) -> None:
    text = template.format(url=written)
    assert find_live_link(text, LIVE) is not None, text


@pytest.mark.parametrize(
    "text",
    [
        "Read it at www.gov.example/isbn/probe from 11:00.",
        "Read it at Gov.Example/isbn/probe.",
        "Read it at ｗｗｗ．gov．example/isbn/probe.",  # noqa: RUF001
        '<a href="https://www.gov.example/isbn/&#112;robe">x</a>',
        "<p>https://www.gov.example/isbn/&#x70;robe</p>",
        '<a href="https&#58;//www.gov.example/isbn/probe">x</a>',
        "[x](https://www.gov.example/isbn/&#112;robe)",
        "Read it at https://www.gov.example/isbn/pro\u200bbe today.",
        "Read it at https://www.gov\u00ad.example/isbn/probe today.",
        "Read it at www.gov\u200d.example/isbn/probe today.",
        "Read it at https://www.gov.example/isbn/**p**robe today.",  # Markdown emphasis
        "Read it at `https://www.gov.example/isbn/probe` today.",
        "Read it at https://www.gov.example/isbn/<b>p</b>robe today.",  # HTML tags
        "```\nhttps://www.gov.example/isbn/probe\n```\n",
    ],
)
def test_without_a_scheme_with_entities_or_invisible_characters(text: str) -> None:
    assert find_live_link(text, LIVE) is not None


def test_a_unicode_host_matches_its_punycode_both_ways() -> None:
    assert find_live_link("[x](https://bücher.example/a)", "https://xn--bcher-kva.example/a")
    assert find_live_link("[x](https://xn--bcher-kva.example/a)", "https://bücher.example/a")
    assert find_live_link("at bücher.example/a today", "https://xn--bcher-kva.example/a")


@pytest.mark.parametrize(
    "text",
    [
        "Background at [the 2024 strategy](https://www.gov.example/isbn/older).",
        "See https://www.gov.example/isbn/ for the series.",
        "[x](https://www.gov.example.evil.example/isbn/probe)",
        "[x](https://evilgov.example/isbn/probe)",
        "[The live link](#) at 11:00.",
        "Contact press@gov.example for questions.",
        "No links at all.",
    ],
)
def test_other_links_are_not_the_live_link(text: str) -> None:
    assert find_live_link(text, LIVE) is None


def test_the_link_is_returned_as_written_for_the_error_line() -> None:
    text = "x [y](https://WWW.gov.example/isbn/%70robe) z"
    assert find_live_link(text, LIVE) == "https://WWW.gov.example/isbn/%70robe"


def test_the_rendered_release_is_checked_like_its_source() -> None:
    source = "Read [the strategy](https://www.gov.example/isbn/%70robe)."
    rendered = MarkdownIt("js-default").render(source)
    assert "%70robe" in rendered
    assert find_live_link(rendered, LIVE) is not None


def test_html_attributes_of_any_tag() -> None:
    markup = '<form action="https://a.example/"><img srcset="https://b.example/1x.png 1x"></form>'
    found = urls_in_html(markup)
    assert "https://a.example/" in found
    assert "https://b.example/1x.png" in found


def test_markdown_targets_of_links_images_and_references() -> None:
    source = "[a](https://a.example) ![b](https://b.example/p.gif) [c][r] <https://d.example>\n\n"
    source += "[r]: https://c.example\n"
    found = set(urls_in_markdown(source))
    assert {"https://a.example", "https://b.example/p.gif", "https://c.example"} <= found
    assert "https://d.example" in found


def test_a_live_url_with_a_trailing_slash_matches_one_without() -> None:
    assert find_live_link(
        "[x](https://www.gov.example/strategy)", "https://www.gov.example/strategy/"
    )


_PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=1, max_size=12)


@given(st.lists(_PATH, min_size=1, max_size=5), st.data())
def test_escaping_any_unreserved_character_leads_to_the_same_page(
    segments: list[str], data: st.DataObject
) -> None:
    segments = [s for s in segments if s not in (".", "..")] or ["x"]
    live = "https://www.gov.example/" + "/".join(segments)
    escaped = "/".join(
        "".join(f"%{ord(ch):02x}" if data.draw(st.booleans()) else ch for ch in segment)
        for segment in segments
    )
    assert comparison_key("https://www.gov.example/" + escaped) == comparison_key(live)
    assert find_live_link(f"see [it](https://WWW.gov.example./{escaped})", live) is not None


@given(st.text(max_size=200))
def test_any_text_is_read_without_error(text: str) -> None:
    find_live_link(text, LIVE)
