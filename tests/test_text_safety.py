"""The one check for unsafe characters: each class refused, each legitimate script kept."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embargo_bot.domain.text_safety import (
    first_unsafe,
    has_visible_text,
    header_problem,
    text_problem,
)

UNSAFE = [
    # (character, words expected in the error line)
    ("\x00", "control character U+0000 (a null character)"),
    ("\x07", "control character U+0007"),
    ("\x1b", "control character U+001B (an escape character)"),
    ("\r", "control character U+000D (a carriage return)"),
    ("\x7f", "control character U+007F (delete)"),
    ("\x80", "control character U+0080 (a C1 control)"),
    ("\x85", "control character U+0085 (next line, which mail programs treat as a line break)"),
    ("\x9b", "control character U+009B (a C1 control)"),
    ("\x9f", "control character U+009F (a C1 control)"),
    ("\u2028", "control character U+2028 (a line separator"),
    ("\u2029", "control character U+2029 (a paragraph separator"),
    ("\u202a", "a left-to-right embedding (U+202A)"),
    ("\u202b", "a right-to-left embedding (U+202B)"),
    ("\u202c", "a pop-directional-formatting character (U+202C)"),
    ("\u202d", "a left-to-right override (U+202D)"),
    (
        "\u202e",
        "a right-to-left override (U+202E), which can make text read differently from what it is",
    ),
    ("\u2066", "a left-to-right isolate (U+2066)"),
    ("\u2067", "a right-to-left isolate (U+2067)"),
    ("\u2068", "a first-strong isolate (U+2068)"),
    ("\u2069", "a pop-directional-isolate character (U+2069)"),
    ("\u200e", "a left-to-right mark (U+200E)"),
    ("\u200f", "a right-to-left mark (U+200F)"),
    ("\u061c", "an Arabic letter mark (U+061C)"),
    ("\u206a", "a deprecated formatting character (U+206A)"),
    ("\u206e", "a deprecated formatting character (U+206E)"),
    ("\ufff9", "an interlinear annotation character (U+FFF9)"),
    ("\ufffb", "an interlinear annotation character (U+FFFB)"),
    ("\udc80", "a byte that is not UTF-8 text (U+DC80)"),
]


@pytest.mark.parametrize(("character", "words"), UNSAFE)
@pytest.mark.parametrize("multiline", [False, True])
def test_each_class_is_refused_in_one_line_and_in_many(
    character: str, words: str, multiline: bool
) -> None:
    problem = text_problem(f"Strategy{character}fdp.exe", multiline=multiline)
    assert problem is not None
    assert problem.startswith(f"contains {words}")


@pytest.mark.parametrize("character", ["\n", "\t"])
def test_line_feed_and_tab_only_in_multiline_text(character: str) -> None:
    assert text_problem(f"one{character}two", multiline=True) is None
    problem = text_problem(f"one{character}two")
    assert problem is not None
    assert "U+000" in problem


def test_a_line_break_says_keep_it_to_one_line() -> None:
    assert (
        text_problem("one\ntwo")
        == "contains control character U+000A (a line break); keep it to one line"
    )
    assert text_problem("a\u2028b") is not None
    assert str(text_problem("a\u2028b")).endswith("keep it to one line")
    assert str(text_problem("a\u202eb")).endswith("; remove it")


def test_the_first_is_found_with_its_line_and_column() -> None:
    found = first_unsafe("Title\nsecond l\u202eine\x07", multiline=True)
    assert found is not None
    assert (found.character, found.code, found.line, found.column) == ("\u202e", "U+202E", 2, 9)


@pytest.mark.parametrize(
    "text",
    [
        "Scotland's Strategy 2026–2031: “Better Lives”",  # noqa: RUF001
        "Heddlu Gogledd Cymru / North Wales Police",
        "ملخص الاستراتيجية",  # Arabic, right to left without any control
        "תקציר",  # Hebrew
        "می\u200cخواهم",  # noqa: RUF001 - Persian needs the zero-width non-joiner
        "👩\u200d👩\u200d👧",  # an emoji family needs the zero-width joiner
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland's flag
        "café naïve Ångström",
        "non\u00a0breaking",
    ],
)
def test_legitimate_text_in_any_script_is_kept(text: str) -> None:
    assert text_problem(text) is None
    assert header_problem(text) is None
    assert has_visible_text(text)


@pytest.mark.parametrize(
    "value",
    ["=?utf-8?q?Hello=0D=0ABcc:_x@evil.example?=", "Title =?UTF-8?B?SGVsbG8=?= more"],
)
def test_headers_refuse_encoded_words(value: str) -> None:
    assert "encoded-word" in str(header_problem(value))
    assert text_problem(value) is None


def test_headers_refuse_unsafe_characters_first() -> None:
    assert header_problem("Title\r\nBcc: x@evil.example") == (
        "contains control character U+000D (a carriage return); keep it to one line"
    )
    assert header_problem("Title\tTwo") == "contains control character U+0009 (a tab); remove it"


@pytest.mark.parametrize(
    "title",
    [
        "",
        "\u200b" * 5,
        " \u200b\u200c\u200d\u2060\ufeff ",
        "\u3164\u3164",  # Hangul filler
        "\u2800",  # blank Braille pattern
        "\u0301\u0301",  # combining marks with nothing to sit on
        "\u00ad",  # soft hyphen
        "\u00a0\u2003\u3000",
        "\ufe0f",
    ],
)
def test_a_title_must_have_visible_text(title: str) -> None:
    assert not has_visible_text(title)


@pytest.mark.parametrize("title", ["A", "1", "—", "£", "\u200bA\u200b", "é"])
def test_one_visible_character_is_enough(title: str) -> None:
    assert has_visible_text(title)


@given(st.text())
def test_no_unsafe_character_ever_passes(text: str) -> None:
    found = first_unsafe(text)
    dangerous = [
        ch
        for ch in text
        if unicodedata.category(ch) in {"Cc", "Zl", "Zp", "Cs"}
        or unicodedata.bidirectional(ch) in {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI"}
        or unicodedata.bidirectional(ch) in {"FSI", "PDI"}
        or ch in "\u200e\u200f\u061c"
        or "\u206a" <= ch <= "\u206f"
        or "\ufff9" <= ch <= "\ufffb"
    ]
    if dangerous:
        assert found is not None
        assert found.character == dangerous[0]
    else:
        assert found is None


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "S", "Zs"])))
def test_printable_text_is_always_accepted(text: str) -> None:
    assert text_problem(text) is None
