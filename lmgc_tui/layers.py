"""Per-layer (per-tensor) statistics folded from the core's events; no UI code.

The app's live table and bar chart are views of a :class:`LayerBoard`; keeping the
bookkeeping here lets it be tested without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmgc_format import events as ev
from lmgc_format.tensors.source import TensorEntry


@dataclass
class LayerRow:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    begin: int
    end: int
    done_bytes: int = 0
    bits: float = 0.0
    status: str = "pending"  # pending | coding | done | cancelled | failed

    @property
    def bits_per_byte(self) -> float | None:
        return self.bits / self.done_bytes if self.done_bytes else None

    @property
    def percent(self) -> float | None:
        bpb = self.bits_per_byte
        return None if bpb is None else 100.0 * bpb / 8.0


class LayerBoard:
    """Tensors of one file and what coding them has cost so far."""

    def __init__(self, tensors: tuple[TensorEntry, ...]) -> None:
        self.rows: dict[str, LayerRow] = {
            t.name: LayerRow(t.name, t.dtype, t.shape, t.nbytes, t.begin, t.end) for t in tensors
        }
        self.done_bytes = 0
        self.total_bytes = sum(t.nbytes for t in tensors)
        self.tokens = 0

    def apply(self, event: ev.Event) -> set[str]:
        """Fold one event in; return the names of the rows that changed."""
        changed: set[str] = set()
        if isinstance(event, ev.Progress):
            self.done_bytes, self.tokens = event.done_bytes, event.tokens
            for row in self.rows.values():
                # the tensor under the coding position is the one being worked on
                if row.status == "pending" and row.begin <= event.done_bytes < row.end:
                    row.status = "coding"
                    changed.add(row.name)
        elif isinstance(event, ev.ChunkDone):
            for name, nbytes, bits in event.tensors:
                hit = self.rows.get(name)
                if hit is None:  # bytes outside every tensor
                    continue
                hit.done_bytes += nbytes
                hit.bits += bits
                hit.status = "done" if hit.done_bytes >= hit.nbytes else "coding"
                changed.add(name)
        return changed

    def stop(self, status: str) -> set[str]:
        """The job ended early: rows still "coding" say so instead (``status``: "cancelled", "failed")."""
        changed = {row.name for row in self.rows.values() if row.status == "coding"}
        for name in changed:
            self.rows[name].status = status
        return changed

    def totals(self) -> tuple[int, float]:
        """Bytes coded so far (in tensors) and the bits they cost."""
        rows = self.rows.values()
        return sum(r.done_bytes for r in rows), sum(r.bits for r in rows)
