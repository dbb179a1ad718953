"""The release: no images, no plain-http links; the '#' placeholder is fine."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embargo_bot.messages.release_checks import release_problems

PATH = Path("release.md")


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("# Title\n\n![](https://tracker.example/pixel.gif?id=partner)\n", 3, "contains an image"),
        ('Text ![logo](https://cdn.example/logo.png "Logo") text\n', 1, "contains an image"),
        ("![x](data:image/png;base64,iVBORw0KGgo=)\n", 1, "(data:image/png;base64"),
        ("One\n\n![alt][pixel]\n\n[pixel]: https://tracker.example/p.gif\n", 3, "an image"),
        ("One\n\n![pixel]\n\n[pixel]: https://tracker.example/p.gif\n", 3, "an image"),
        ("[![badge](https://t.example/b.svg)](https://www.gov.example/)\n", 1, "an image"),
        ("* item\n* ![](https://t.example/p.gif)\n", 2, "an image"),
        ("> quote\n> ![](https://t.example/p.gif)\n", 2, "an image"),
        ("See [the data](http://stats.example/table).\n", 1, "plain http; use https"),
        ("See [the data](HTTP://stats.example/table).\n", 1, "use https"),
        ("See <http://stats.example/table>.\n", 1, "use https"),
        ("See [the data][d].\n\n[d]: http://stats.example/table\n", 1, "use https"),
        ("Para one\nsee http://stats.example/table today.\n", 2, "mail programs make it a link"),
    ],
)
def test_refused(source: str, line: int, words: str) -> None:
    problems, _ = release_problems(source, PATH)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"--release release.md:{line}: ")
    assert words in problems[0]


@pytest.mark.parametrize(
    "source",
    [
        "# Strategy\n\n[Read the strategy](#) from 11:00.\n",
        "[Read the strategy]( # ) and [again][live].\n\n[live]: #\n",
        "See [the data](https://stats.example/table) and <https://stats.example/>.\n",
        "Write to [the press office](mailto:press@gov.example).\n",
        'Raw <img src="https://tracker.example/p.gif"> is only text: HTML is off.\n',
        "`http://example.invalid/` in code is shown, not linked.\n",
        "```\nhttp://stats.example/\n```\n",
        "An exclamation! [then a link](https://www.gov.example/).\n",
        "Text about https://www.gov.example/ only.\n",
    ],
)
def test_accepted(source: str) -> None:
    assert release_problems(source, PATH) == ([], [])


@pytest.mark.parametrize("target", ["#summary", "annex.html", "/publications/annex"])
def test_links_that_go_nowhere_in_an_email_are_warnings(target: str) -> None:
    problems, warnings = release_problems(f"Intro\n\nSee [the annex]({target}).\n", PATH)
    assert problems == []
    assert len(warnings) == 1
    assert warnings[0].startswith("--release release.md:3: ")
    assert "'#' for the live link" in warnings[0]


def test_every_problem_is_reported_with_its_line() -> None:
    source = "![](https://a.example/1.gif)\n\n[x](http://b.example/)\n\n![](https://c.example/)\n"
    problems, _ = release_problems(source, PATH)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "--release release.md:1",
        "--release release.md:3",
        "--release release.md:5",
    ]


@given(st.text(max_size=300))
def test_any_text_is_read_without_error(source: str) -> None:
    problems, warnings = release_problems(source, PATH)
    assert all(p.startswith("--release release.md:") for p in problems + warnings)


def test_the_social_post_can_be_checked_under_its_own_option() -> None:
    problems, _ = release_problems("Out now: http://www.gov.example/", Path("post.txt"), "--social")
    assert problems[0].startswith("--social post.txt:1: ")
