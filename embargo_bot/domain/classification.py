"""UK Government Security Classification markings that embargo-bot handles."""

from __future__ import annotations

from enum import StrEnum


class Classification(StrEnum):
    """A marking, ordered from least to most sensitive.

    SECRET and above never travel over ordinary email, so they are not offered.
    """

    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL-SENSITIVE"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def admits(self, marking: Classification) -> bool:
        """Whether a list cleared to ``self`` may receive material marked ``marking``."""
        return marking.rank <= self.rank


_RANK = {Classification.OFFICIAL: 0, Classification.OFFICIAL_SENSITIVE: 1}
