"""What may go into an email header: one line, and no encoded words.

A value with a line break would end the header early (header injection). So
would an RFC 2047 encoded word that decodes to one: Python before 3.11.10
and 3.12.5 writes such a decoded CR LF out raw (CPython gh-121650,
CVE-2024-6923). Titles, names and file names are plain text here, so an
encoded word in one is never legitimate: it is refused.
"""

from __future__ import annotations

import re
import unicodedata

ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
# Cc: ASCII control characters (CR, LF, NUL, TAB, ESC...); Zl, Zp: Unicode line breaks.
_BREAKING = {"Cc", "Zl", "Zp"}


def header_problem(value: str) -> str | None:
    """Why ``value`` may not go into a header, or None if it may."""
    bad = next((ch for ch in value if unicodedata.category(ch) in _BREAKING), None)
    if bad is not None:
        return f"contains control character U+{ord(bad):04X}; keep it to one line"
    if ENCODED_WORD.search(value):
        return (
            "contains '=?...?=' encoded-word syntax, which mail programs decode; write it plainly"
        )
    return None
