"""Text that reaches an email header or a person: the one check for unsafe characters.

Two dangers. Control characters and Unicode line breaks end a header early (header
injection) or confuse terminals and mail programs. Bidirectional embeddings, overrides,
isolates and marks make text *read* differently from what it is: ``strategy\\u202efdp.exe``
shows as "strategyexe.pdf" (Trojan Source, CVE-2021-42574); so, less often, do the
deprecated formatting characters U+206A-U+206F and the interlinear annotation characters
U+FFF9-U+FFFB, which no title or name needs. All are refused wherever text
reaches a partner: titles, list and display names, references, notes, reasons, file
names, the live URL, the release and the social post.

Zero-width characters (U+200B-U+200D, U+2060, U+FEFF) are *not* refused here. They cannot
reorder or hide visible characters, and several are needed: the zero-width non-joiner in
Persian and Indic scripts, the joiner in emoji sequences, the zero-width space as a line
break hint in Thai. What they can do, make an empty-looking title, is caught by
``has_visible_text``; where a value must match exactly (the live URL) its own check refuses
anything outside a URL's characters.

An RFC 2047 encoded word in a header value is refused too: mail programs decode it, and
Python before 3.11.10 and 3.12.5 wrote a decoded CR LF out raw (CPython gh-121650,
CVE-2024-6923). Titles, names and file names are plain text here, so an encoded word in
one is never legitimate.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")

_READS_DIFFERENTLY = "which can make text read differently from what it is"
_LINE_BREAK = "which mail programs treat as a line break"

# The bidirectional formatting characters of Unicode's UAX #9, with the words an official
# will recognise. The marks (U+200E, U+200F, U+061C) cannot reverse letters, but they do
# reorder digits and punctuation around them ("10-11" can show as "11-10"), so a date or a
# file extension is not safe with them either.
_BIDI: dict[str, str] = {
    "\u061c": "an Arabic letter mark",
    "\u200e": "a left-to-right mark",
    "\u200f": "a right-to-left mark",
    "\u202a": "a left-to-right embedding",
    "\u202b": "a right-to-left embedding",
    "\u202c": "a pop-directional-formatting character",
    "\u202d": "a left-to-right override",
    "\u202e": "a right-to-left override",
    "\u2066": "a left-to-right isolate",
    "\u2067": "a right-to-left isolate",
    "\u2068": "a first-strong isolate",
    "\u2069": "a pop-directional-isolate character",
}

_C0_NAMES: dict[str, str] = {
    "\x00": " (a null character)",
    "\t": " (a tab)",
    "\n": " (a line break)",
    "\r": " (a carriage return)",
    "\x1b": " (an escape character)",
}

# Characters of category L, N, P or S that still draw nothing: Hangul fillers and the
# blank Braille pattern, known tricks for an "empty" name in chat and mail programs.
_BLANK_GRAPHICS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


@dataclass(frozen=True)
class UnsafeCharacter:
    """The first unsafe character found in a text, and where (1-based line and column)."""

    character: str
    line: int
    column: int
    words: str  # e.g. "a right-to-left override (U+202E), which can make text read ..."
    # or "control character U+000D (a carriage return)"

    @property
    def code(self) -> str:
        return f"U+{ord(self.character):04X}"

    def describe(self) -> str:
        """The words for an error line, after the field's name: "contains ...; remove it"."""
        return f"contains {self.words}; {_fix(self.character)}"


def _fix(ch: str) -> str:
    if ch in "\n\r\x85\u2028\u2029":
        return "keep it to one line"
    return "remove it"


def _words(ch: str) -> str | None:
    """What ``ch`` is in words, if it is unsafe; None if it is fine."""
    code = ord(ch)
    tag = f"U+{code:04X}"
    if ch in _BIDI:
        return f"{_BIDI[ch]} ({tag}), {_READS_DIFFERENTLY}"
    # The wording "control character U+XXXX" is the one the checks this replaces used.
    if code < 0x20:
        return f"control character {tag}{_C0_NAMES.get(ch, '')}"
    if code == 0x7F:
        return f"control character {tag} (delete)"
    if code == 0x85:
        return f"control character {tag} (next line, {_LINE_BREAK})"
    if 0x80 <= code <= 0x9F:
        return f"control character {tag} (a C1 control)"
    if ch == "\u2028":
        return f"control character {tag} (a line separator, {_LINE_BREAK})"
    if ch == "\u2029":
        return f"control character {tag} (a paragraph separator, {_LINE_BREAK})"
    if 0x206A <= code <= 0x206F:
        # Deprecated since Unicode 3.0; they change how digits and Arabic letters are drawn.
        return f"a deprecated formatting character ({tag}), {_READS_DIFFERENTLY}"
    if 0xFFF9 <= code <= 0xFFFB:
        return f"an interlinear annotation character ({tag}), which some programs hide text with"
    if 0xD800 <= code <= 0xDFFF:
        # What Python makes of bytes that are not UTF-8 on the command line
        # (surrogateescape); encoding it later for a header would fail.
        return f"a byte that is not UTF-8 text ({tag})"
    return None


def first_unsafe(text: str, *, multiline: bool = False) -> UnsafeCharacter | None:
    """The first unsafe character in ``text``, or None.

    ``multiline`` allows line feeds and tabs, for text of several lines (the release, the
    social post, a note or a reason); a carriage return alone is still refused.
    """
    line, column = 1, 0
    for ch in text:
        column += 1
        if multiline and ch in "\n\t":
            if ch == "\n":
                line, column = line + 1, 0
            continue
        words = _words(ch)
        if words is not None:
            return UnsafeCharacter(character=ch, line=line, column=column, words=words)
    return None


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why ``text`` may not reach a person ("contains ...; remove it"), or None if it may."""
    found = first_unsafe(text, multiline=multiline)
    return None if found is None else found.describe()


def header_problem(value: str) -> str | None:
    """Why ``value`` may not go into an email header, or None if it may.

    One line, no unsafe character, and no encoded word.
    """
    problem = text_problem(value)
    if problem is not None:
        return problem
    if ENCODED_WORD.search(value):
        return (
            "contains '=?...?=' encoded-word syntax, which mail programs decode; write it plainly"
        )
    return None


def has_visible_text(text: str) -> bool:
    """Whether ``text`` draws anything: a letter, digit, punctuation mark or symbol.

    Spaces, format characters (zero-width spaces, joiners, marks), lone combining marks
    and blank fillers do not count, so a title of five zero-width spaces has none.
    """
    return any(unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANK_GRAPHICS for ch in text)
