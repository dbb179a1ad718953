"""Rows that are never cut: a table when the terminal is wide enough, else one block per row.

Ids, list names, addresses and times are what people copy and type, so they
are always shown whole. Only free text (titles, details, replies) may wrap.
When the whole-shown columns do not fit side by side, each row becomes a block
of "label  value" lines instead of a table squeezed until it cuts words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

# The narrowest a wrapping column is planned at; longer words fold rather than vanish.
_WRAPPED_MINIMUM = 12


@dataclass(frozen=True)
class Field:
    header: str
    wraps: bool = False  # free text, which may wrap; every other field is shown whole


class Records:
    """A titled set of rows that lays itself out for the width it is printed at."""

    def __init__(self, title: str, fields: Sequence[Field]) -> None:
        self.title = title
        self.fields = tuple(fields)
        self.rows: list[tuple[str | Text, ...]] = []

    def add_row(self, *cells: str | Text) -> None:
        if len(cells) != len(self.fields):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.fields)} fields")
        self.rows.append(cells)

    def table(self) -> Table:
        table = Table(title=self.title, title_justify="left")
        for spec in self.fields:
            if spec.wraps:
                table.add_column(spec.header, overflow="fold")
            else:
                table.add_column(spec.header, no_wrap=True)
        for row in self.rows:
            table.add_row(*row)
        return table

    def blocks(self) -> Group:
        """One block per row: its first field as a heading, then the others, labelled."""
        parts: list[RenderableType] = [Text(self.title, style="italic")]
        for row in self.rows:
            facts = Table.grid(padding=(0, 2))
            facts.add_column(style="bold", no_wrap=True)
            facts.add_column(overflow="fold")
            for spec, cell in zip(self.fields[1:], row[1:], strict=True):
                if _plain(cell):
                    facts.add_row(f"  {spec.header}", cell)
            heading = row[0] if isinstance(row[0], Text) else Text(row[0], style="bold")
            parts.extend([Text(""), heading, facts])
        return Group(*parts)

    def width_needed(self) -> int:
        """The narrowest the table can be with every whole-shown field whole."""
        total = len(self.fields) + 1  # the borders between and around the columns
        for index, spec in enumerate(self.fields):
            cells = [spec.header, *(_plain(row[index]) for row in self.rows)]
            if spec.wraps:
                words = [cell_len(word) for cell in cells for word in cell.split()]
                widest = min(max(words, default=1), _WRAPPED_MINIMUM)
            else:
                widest = max(cell_len(line) for cell in cells for line in cell.splitlines() or [""])
            total += widest + 2  # a space of padding either side
        return total

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        yield self.table() if self.width_needed() <= options.max_width else self.blocks()


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell
