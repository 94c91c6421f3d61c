"""Long work for the app: the core's calls run in thread workers and talk back through
an :class:`EventBuffer` (drained a few times a second by the UI) and one final message.

Nothing here touches a widget from the worker thread: the buffer is a plain lock-guarded
list and the outcome is posted as a Textual message, which is thread-safe.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from lmgc_format import events as ev
from lmgc_format.errors import CancelledError, LmgcError


class EventBuffer:
    """An ``EventSink`` that can be called from any thread and drained by the UI.

    Progress events are coalesced (only the latest matters), so a fast producer cannot
    flood the event loop; every other event is kept in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[ev.Event] = []

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            if isinstance(event, ev.Progress) and self._events and isinstance(self._events[-1], ev.Progress):
                self._events[-1] = event
            else:
                self._events.append(event)

    def drain(self) -> list[ev.Event]:
        with self._lock:
            out, self._events = self._events, []
        return out


@dataclass(frozen=True)
class Outcome:
    """How one job ended: ``result`` on success, else ``error`` (one line) and its kind."""

    operation: str  # "encode" | "verify"
    target: Path | None
    result: Any = None
    error: str | None = None
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


class JobDone(Message):
    """Posted by a worker when its job ends, whatever the outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


def run_job(operation: str, target: Path | None, call: Any) -> Outcome:
    """Run ``call()`` and turn its result or error into an :class:`Outcome` (never raises)."""
    start = time.monotonic()
    try:
        result = call()
    except CancelledError:
        return Outcome(operation, target, cancelled=True, seconds=time.monotonic() - start)
    except LmgcError as exc:
        return Outcome(operation, target, error=str(exc), seconds=time.monotonic() - start)
    except Exception as exc:  # a bug, not a user error: still show it instead of killing the app
        return Outcome(operation, target, error=f"unexpected error: {exc!r}", seconds=time.monotonic() - start)
    return Outcome(operation, target, result=result, seconds=time.monotonic() - start)
