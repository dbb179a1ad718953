"""The live-link placeholder in a release or social post: a Markdown link whose target is `#`.

Officials draft `[Read the strategy](#)` where the live URL will go. Only a target of exactly
`#` is a placeholder (`#section` is an anchor, left alone), however the link is written:
inline, `<#>`, with a title, or by reference to `[ref]: #`.

- In the notice a placeholder is never a link: its text, then "(link at 11:00 GMT)". The
  notice functions take no URL, so the live URL cannot reach a notice through them.
- In the live email every placeholder points at the live URL: a real link in the HTML, and
  `text (https://...)` in the plain text, the form partners can paste anywhere (a social post,
  a CMS without Markdown) and that still reads well where links are not clickable.

The plain-text forms rewrite the Markdown source in place, keeping the rest of the official's
text byte for byte; the positions come from markdown-it's own parse, so a `[x](#)` inside a
code span or code block is not touched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline.link import link as _markdown_it_link
from markdown_it.token import Token

PLACEHOLDER_TARGET = "#"
_SPANS = "embargo_bot_placeholder_spans"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


@dataclass(frozen=True)
class _InlineSpan:
    """A placeholder's place in one inline token's text (markdown-it's `state.src`)."""

    src: str
    start: int
    end: int
    label_start: int
    label_end: int


@dataclass(frozen=True)
class _SourceSpan:
    start: int
    end: int
    label: str


def _recording_link(state: StateInline, silent: bool) -> bool:
    """markdown-it's own link rule, noting where each placeholder sits in the inline text."""
    start = state.pos
    first_new = len(state.tokens)
    if not _markdown_it_link(state, silent):
        return False
    spans = state.env.get(_SPANS)
    if silent or spans is None:
        return True
    opened = next((t for t in state.tokens[first_new:] if t.type == "link_open"), None)
    if opened is not None and opened.attrGet("href") == PLACEHOLDER_TARGET:
        # Found again rather than kept: the link rule does not expose it. parseLinkLabel
        # puts state.pos back where it was.
        label_end = state.md.helpers.parseLinkLabel(state, start, True)
        spans.append(_InlineSpan(state.src, start, state.pos, start + 1, label_end))
    return True


def lift_note(lift_time_words: str) -> str:
    """'(link at 11:00 GMT)'."""
    return f"(link at {lift_time_words})"


def line_with_live_url(source: str, url: str) -> int | None:
    """The first line (from 1) of `source` that spells out the live URL, else None.

    For intake: a release that names the URL itself would carry it into the notice, so
    it is refused with its line, and the official writes `[text](#)` instead. Scheme,
    case and a trailing slash do not matter.
    """
    bare = urlsplit(url.strip())
    wanted = (bare.netloc + bare.path).rstrip("/").casefold()
    if not wanted:
        return None
    for number, line in enumerate(_LINE.findall(source), start=1):
        if wanted in line.casefold():
            return number
    return None


def _check_live_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.netloc or re.search(r"[\s<>\"]", url):
        raise ValueError(f"not a web address for a live link: {url!r}")
    return url


class Placeholders:
    """Finds and fills live-link placeholders, rendering as the project renders releases.

    Build one and reuse it: it owns a `MarkdownIt("js-default")` (no raw HTML passes), whose
    link rule is wrapped only to note positions; what it renders is unchanged.
    """

    def __init__(self) -> None:
        self._markdown = MarkdownIt("js-default")
        self._markdown.inline.ruler.at("link", _recording_link)

    def count(self, source: str) -> int:
        return sum(1 for _ in self._placeholder_opens(self._markdown.parse(source, {})))

    def notice_html(self, source: str, lift_time_words: str) -> str:
        """HTML for the notice: each placeholder is its text and "(link at ...)", no link."""
        tokens = _demote_headings(self._markdown.parse(source, {}))
        note = lift_note(lift_time_words)
        for block in tokens:
            if block.type == "inline" and block.children:
                block.children = list(_unlink_placeholders(block.children, note))
        return str(self._markdown.renderer.render(tokens, self._markdown.options, {}))

    def notice_text(self, source: str, lift_time_words: str) -> str:
        """The Markdown source with each placeholder as `text (link at ...)`."""
        note = lift_note(lift_time_words)
        return self._rewrite(source, lambda label: f"{label} {note}" if label.strip() else note)

    def live_html(self, source: str, url: str) -> str:
        """HTML for the live email: every placeholder links to `url`."""
        href = self._markdown.normalizeLink(_check_live_url(url))
        tokens = _demote_headings(self._markdown.parse(source, {}))
        for block in tokens:
            if block.type == "inline" and block.children:
                block.children = list(_fill_placeholders(block.children, href, url))
        return str(self._markdown.renderer.render(tokens, self._markdown.options, {}))

    def live_text(self, source: str, url: str) -> str:
        """The Markdown source with each placeholder as `text (https://...)`."""
        _check_live_url(url)
        return self._rewrite(source, lambda label: f"{label} ({url})" if label.strip() else url)

    def _placeholder_opens(self, tokens: list[Token]) -> Iterator[Token]:
        for block in tokens:
            for token in block.children or ():
                if token.type == "link_open" and token.attrGet("href") == PLACEHOLDER_TARGET:
                    yield token

    def _rewrite(self, source: str, replacement: Callable[[str], str]) -> str:
        env: dict[str, Any] = {_SPANS: []}
        tokens = self._markdown.parse(source, env)
        spans: list[_InlineSpan] = env[_SPANS]
        # Lines as markdown-it counts them: only CR, LF and CRLF end one.
        lines = [line for line in _LINE.findall(source) if line]
        line_starts = [0]
        for line in lines:
            line_starts.append(line_starts[-1] + len(line))
        found: list[_SourceSpan] = []
        cursor = 0
        for block in tokens:
            if block.type != "inline" or block.map is None:
                continue
            offsets = _line_offsets(block.content, block.map[0], lines, line_starts, cursor)
            for span in (span for span in spans if span.src is block.content):
                located = _locate(span, offsets, source, cursor)
                if located is not None:
                    found.append(located)
                    cursor = located.end
            if offsets:
                # Past this block's text, so that the next cell of a table row is looked
                # for after it: `| `[x](#)` | [x](#) |` must not match inside the code.
                last_line = block.content.rsplit("\n", 1)[-1]
                cursor = max(cursor, offsets[-1][1] + len(last_line))
        pieces: list[str] = []
        done = 0
        for place in found:
            pieces.extend((source[done : place.start], replacement(place.label)))
            done = place.end
        pieces.append(source[done:])
        return "".join(pieces)


def _demote_headings(tokens: list[Token]) -> list[Token]:
    """The release's own headings below the email's: its title is h1, its sections h2."""
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + 2)}"
    return tokens


def _unlink_placeholders(children: list[Token], note: str) -> Iterator[Token]:
    # Links cannot nest in CommonMark, but a placeholder's text can hold emphasis or code.
    open_links: list[bool] = []
    labelled = False
    for token in children:
        if token.type == "link_open":
            placeholder = token.attrGet("href") == PLACEHOLDER_TARGET
            open_links.append(placeholder)
            if placeholder:
                labelled = False
                continue
        elif token.type == "link_close" and open_links:
            if open_links.pop():
                yield Token("text", "", 0, content=f" {note}" if labelled else note)
                continue
        elif open_links and open_links[-1] and (token.type != "text" or token.content.strip()):
            labelled = True
        yield token


def _fill_placeholders(children: list[Token], href: str, url: str) -> Iterator[Token]:
    just_opened = False
    for token in children:
        if token.type == "link_close" and just_opened:
            # `[](#)` would be an invisible link: show the address itself.
            yield Token("text", "", 0, content=url)
        just_opened = token.type == "link_open" and token.attrGet("href") == PLACEHOLDER_TARGET
        if just_opened:
            token.attrSet("href", href)
        yield token


def _line_offsets(
    content: str, first_line: int, lines: list[str], line_starts: list[int], cursor: int
) -> list[tuple[int, int]] | None:
    """For each line of an inline token's text: (its start in the text, its start in source).

    markdown-it builds the text from consecutive source lines with their indentation and
    container markers (`>`, list bullets, table pipes) cut off, so each text line is found
    on its source line, at or after where the previous placeholder ended.
    """
    result: list[tuple[int, int]] = []
    text_start = 0
    for index, text_line in enumerate(content.split("\n")):
        line_number = first_line + index
        if line_number >= len(lines):
            return None
        line_start = line_starts[line_number]
        begin = max(0, cursor - line_start)
        column = lines[line_number].find(text_line, begin)
        if column < 0:
            return None
        result.append((text_start, line_start + column))
        text_start += len(text_line) + 1
    return result


def _locate(
    span: _InlineSpan, offsets: list[tuple[int, int]] | None, source: str, cursor: int
) -> _SourceSpan | None:
    if offsets is not None:

        def to_source(position: int) -> int:
            text_start, source_start = next(
                (pair for pair in reversed(offsets) if pair[0] <= position), offsets[0]
            )
            return source_start + position - text_start

        start, end = to_source(span.start), to_source(span.end)
        label = source[to_source(span.label_start) : to_source(span.label_end)]
        return _SourceSpan(start, end, label)
    # Lines markdown-it reshaped (tabs expanded, escapes in table cells): find the raw text,
    # letting a line break stand for a break plus any container prefix.
    raw = span.src[span.start : span.end]
    label_raw = span.src[span.label_start : span.label_end]
    pattern = _loose(raw)
    match = re.compile(pattern).search(source, cursor)
    if match is None:
        return None
    label_match = re.match(r"\[(" + _loose(label_raw) + r")\]", match.group(0))
    label = label_match.group(1) if label_match else label_raw
    return _SourceSpan(match.start(), match.end(), label)


def _loose(raw: str) -> str:
    """A pattern for `raw` as written in the source: a line break may carry a container
    prefix, and a table cell's `|` was written `\\|`."""
    lines = (re.escape(part).replace(r"\|", r"\\?\|") for part in raw.split("\n"))
    return r"\n[ \t>]*".join(lines)
