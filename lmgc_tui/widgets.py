"""Small widgets the panes share."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from .layers import LayerBoard


class BitsChart(Static):
    """Horizontal bars: bits per byte of every tensor coded so far (8 = incompressible)."""

    DEFAULT_CSS = """
    BitsChart { padding: 0 1; }
    """

    def show(self, board: LayerBoard | None) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, max_width=18, overflow="ellipsis")
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        width = max(8, self.size.width - 28)
        if board is not None:
            for row in board.rows.values():
                bpb = row.bits_per_byte
                if bpb is None:
                    bar = Text("·" * 3, style="dim")
                    value = Text("-", style="dim")
                else:
                    filled = min(width, round(width * bpb / 8))
                    style = "green" if bpb < 4 else "yellow" if bpb < 6 else "red"
                    bar = Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")
                    value = Text(f"{bpb:.2f}")
                table.add_row(row.name, bar, value)
        self.update(table)
