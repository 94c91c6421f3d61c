"""Small widgets the panes share."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Checkbox, ProgressBar, Static

from lmgc_format import events as ev

from .fmt import plain, progress_line
from .layers import LayerBoard


class JobProgress(Horizontal):
    """One line: a progress bar and "done / total  rate  tok/s  ETA", fed by the core's events.

    ``prefix`` names the children (``PREFIX-bar``, ``PREFIX-stats``) so each pane's are distinct.
    """

    DEFAULT_CSS = """
    JobProgress { height: 1; }
    JobProgress > ProgressBar { width: 40%; }
    JobProgress > Static { width: 1fr; padding: 0 1; }
    """

    def __init__(self, prefix: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.prefix = prefix
        self.started_at = time.monotonic()

    def compose(self) -> ComposeResult:
        # total=1, not None: an unknown total animates, and nothing runs yet
        yield ProgressBar(total=1, id=f"{self.prefix}-bar", show_eta=False)
        yield Static("", id=f"{self.prefix}-stats")

    def waiting(self, text: str) -> None:
        """Before the work starts (a model loading, say): an empty bar and what is happening."""
        self.query_one(ProgressBar).update(total=1, progress=0)
        self.query_one(Static).update(Text(text))

    def stopped(self, text: str = "") -> None:
        """The work ended without finishing: no rate, no ETA left on screen."""
        self.query_one(Static).update(Text(text))

    def begin(self, total_bytes: int) -> None:
        """A new operation started (its rate and ETA are measured from now)."""
        self.started_at = time.monotonic()
        self.query_one(ProgressBar).update(total=max(total_bytes, 1), progress=0)

    def show(self, event: ev.Progress, label: str = "") -> None:
        self.query_one(ProgressBar).update(total=max(event.total_bytes, 1), progress=event.done_bytes)
        line = progress_line(event.done_bytes, event.total_bytes, event.tokens, time.monotonic() - self.started_at)
        self.query_one(Static).update(Text(f"{label} {line}" if label else line))


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
                table.add_row(plain(row.name), bar, value)
        self.update(table)


class TickBox(Checkbox):
    """A checkbox whose two states differ in shape, not only in colour: ✔ when on, blank when off (a
    monochrome terminal, or a colour-blind user, sees the difference)."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # Textual reads the class name
        return "✔" if self.value else " "
