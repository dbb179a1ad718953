"""The Markdown release: nothing that fetches from the internet, no plain-http links.

An image in the release is fetched when a partner opens the email:
``![](https://tracker.example/pixel.gif?id=partner)`` tells a third party which partner
read the embargoed pack and when, and a ``data:`` image can carry anything. So images are
refused, whichever way they are written (inline, reference-style); raw HTML, the other
way to write one, is already off in the ``js-default`` preset the release is rendered
with. A plain ``http://`` link can be read and changed on the way, so it is refused too,
also when written bare: partners' mail programs turn a bare URL into a link.

A link whose target is exactly ``#`` is the live-link placeholder (``[Read the
strategy](#)``, issue 12) and is fine. Other targets a partner cannot follow from an
email (``#summary``, ``annex.html``) are warnings.

The release is parsed with markdown-it-py, as it is rendered, rather than searched with
patterns, so what is checked is what partners get.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

PLACEHOLDER = "#"
_MARKDOWN = MarkdownIt("js-default")
_BARE_HTTP = re.compile(r"(?i)(?<![a-z0-9+.\-])http://[^\s<>\"'`]*")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*:", re.IGNORECASE)


def _inline_tokens(tokens: list[Token]) -> Iterator[tuple[Token, list[int] | None]]:
    """Every inline token, with the line range of the block it is in (0-based, end excl.)."""
    for block in tokens:
        for child in block.children or ():
            yield child, block.map


def _line_of(lines: list[str], block_map: list[int] | None, needle: str) -> int:
    """The 1-based line of ``needle`` in its block (the block's first line if not found)."""
    if block_map is None:
        return 1
    start, end = block_map
    for number in range(start, min(end, len(lines))):
        if needle and needle in lines[number]:
            return number + 1
    return start + 1


def release_problems(
    source: str, path: Path, option: str = "--release"
) -> tuple[list[str], list[str]]:
    """(problems, warnings) for the release's Markdown, each line ``--release PATH:LINE: ...``.

    ``option`` names the file in the lines, so the social post can be checked the same way.

    Problems refuse the pack: an image, an ``http://`` link or bare URL. Warnings are
    shown and the release is sent: a relative link or an in-page anchor other than the
    ``#`` placeholder, which goes nowhere in an email.
    """
    lines = source.splitlines()
    problems: list[str] = []
    warnings: list[str] = []

    def where(block_map: list[int] | None, needle: str) -> str:
        return f"{option} {path}:{_line_of(lines, block_map, needle)}"

    in_link = 0  # a link's own text is not linked again by mail programs
    for token, block_map in _inline_tokens(_MARKDOWN.parse(source)):
        if token.type == "link_close":
            in_link -= 1
        elif token.type == "image":
            src = str(token.attrGet("src") or "")
            shown = src if len(src) <= 80 else src[:77] + "..."
            problems.append(
                f"{where(block_map, src[:40])}: contains an image ({shown}); an image is "
                "fetched when a partner opens the email, which tells its site who read the "
                "embargoed pack and when. Remove it, or put the picture in the PDF"
            )
        elif token.type == "link_open":
            in_link += 1
            href = str(token.attrGet("href") or "").strip()
            if href.lower().startswith("http://"):
                problems.append(
                    f"{where(block_map, href[7:40])}: links to {href}, which is plain http; "
                    "use https"
                )
            elif href != PLACEHOLDER and not _SCHEME.match(href):
                warnings.append(
                    f"{where(block_map, href)}: the link target {href!r} goes nowhere in an "
                    f"email; write a full https:// address, or '{PLACEHOLDER}' for the live link"
                )
        elif token.type == "text" and not in_link:
            for match in _BARE_HTTP.finditer(token.content):
                url = match.group(0)
                problems.append(
                    f"{where(block_map, url)}: contains {url}, which is plain http "
                    "(mail programs make it a link); use https"
                )
    return problems, warnings
