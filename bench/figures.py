"""What a benchmark part measured, and the table that prints it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured number; ``target`` and ``met`` only where the issue sets a target."""

    part: str
    name: str
    value: float
    unit: str
    decimals: int = 0
    target: str = ""
    met: bool | None = None
    note: str = ""  # why a verdict is what it is, when the number alone does not say

    @property
    def shown(self) -> str:
        return f"{self.value:,.{self.decimals}f} {self.unit}".strip()

    @property
    def verdict(self) -> str:
        if self.met is None:
            return ""
        return "PASS" if self.met else "FAIL"


def table(figures: Sequence[Figure]) -> str:
    headings = ("part", "figure", "value", "target", "", "")
    rows = [(f.part, f.name, f.shown, f.target, f.verdict, f.note) for f in figures]
    widths = [max(len(row[i]) for row in [headings, *rows]) for i in range(len(headings))]
    lines = []
    for number, row in enumerate([headings, *rows]):
        cells = [
            cell.rjust(width) if column == 2 else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
