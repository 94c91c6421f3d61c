"""Typed progress events: the only thing the core tells its callers while it works.

The CLI's progress bar and the Textual app consume the same stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Started:
    operation: str  # "encode" | "decode" | "verify"
    source: str
    total_bytes: int  # bytes of tensor data that will be processed


@dataclass(frozen=True)
class Progress:
    operation: str
    done_bytes: int
    total_bytes: int
    tokens: int  # LM tokens processed so far in this operation


@dataclass(frozen=True)
class ChunkDone:
    index: int
    codec: str
    data_offset: int
    data_length: int
    payload_length: int
    # coded bits attributed to each tensor in this chunk (name -> (bytes, bits))
    tensors: tuple[tuple[str, int, float], ...]


@dataclass(frozen=True)
class Notice:
    """Something the user should know that does not stop the work (e.g. runtime differs)."""

    message: str


@dataclass(frozen=True)
class Finished:
    operation: str
    source_size: int
    archive_size: int
    sha256: str
    seconds: float
    tokens: int


Event = Started | Progress | ChunkDone | Notice | Finished
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """Default sink: drop every event."""
