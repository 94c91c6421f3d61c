"""A rich progress bar fed by the core's events (bytes/s, ETA, tokens/s)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from lmgc_format import events as ev

from .fmt import shown


class EventProgress:
    """Context manager whose :meth:`__call__` is an ``EventSink``."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("{task.fields[tok_s]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=quiet,
        )
        self.task: TaskID | None = None
        self.started = time.monotonic()

    def __enter__(self) -> EventProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.__exit__(t, e, tb)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self.started = time.monotonic()
            self.task = self.progress.add_task(event.operation, total=event.total_bytes, tok_s="")
        elif isinstance(event, ev.Progress) and self.task is not None:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            rate = f"{event.tokens / elapsed:,.0f} tok/s" if event.tokens else ""
            self.progress.update(self.task, completed=event.done_bytes, tok_s=rate)
        elif isinstance(event, ev.Notice) and not self.quiet:
            self.progress.console.print(f"[yellow]note:[/] {shown(event.message)}", soft_wrap=True, highlight=False)
