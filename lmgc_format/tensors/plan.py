"""How a safetensors data section is cut into windows and chunks.

A pure function of the tensor table and the header's window layout, so the
encoder and the decoder derive the same plan. Rules:

* every byte of the data section belongs to exactly one chunk, in file order
  (gaps between tensors included), so decoding gives the file back whole;
* floating-point tensors are cut into windows of ``window_bytes`` (rounded
  down to whole groups); a window never crosses a tensor boundary;
* up to ``batch`` consecutive windows form one LM chunk: they run in lockstep
  as one batch and share one range coder;
* everything else (integer tensors, gaps) is cut into "plain" chunks of at
  most ``plain_chunk_bytes`` and stored raw or zstd-compressed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lmgc_format.tensors.serialize import group_size
from lmgc_format.tensors.source import INT_DTYPES, LM_DTYPES, SourceLayout, TensorEntry

PLAIN_CHUNK_BYTES = 1 << 20


class TooManyChunks(ValueError):
    """The plan grew past the ``max_chunks`` its caller allowed."""


@dataclass(frozen=True)
class Window:
    tensor: int  # index into SourceLayout.tensors
    begin: int  # offsets inside the data section
    end: int
    group: int  # bytes per hex group in this window
    # Where the window sits in its tensor, for models that look one row up (topbyte.py, ``cm-top-v3`` and later):
    first: int = 0  # index of the window's first group within its tensor
    row: int = 0  # groups per step along the tensor's first axis; 0 when there is no such grid
    ref: int = -1  # a vector with one value per row (a bias, most often) earlier in the file; -1: none
    # Groups a zero-sum filter stored as distances (filters.py, marked by filters.mark_plan): those with
    # index >= pred_start and, when pred_every, (index - pred_start) % pred_every == 0. -1: none.
    pred_start: int = -1
    pred_every: int = 0

    def predicted(self, index: int) -> bool:
        """Whether group ``index`` of the tensor holds a filter's stored distance."""
        if self.pred_start < 0 or index < self.pred_start:
            return False
        return not self.pred_every or (index - self.pred_start) % self.pred_every == 0

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


def _row_groups(shape: tuple[int, ...], item_size: int, group: int) -> int:
    """Groups from one index of the first axis to the next; 0 for tensors of fewer than two axes."""
    if len(shape) < 2:
        return 0
    row_bytes = item_size * math.prod(shape[1:])
    return row_bytes // group if row_bytes % group == 0 else 0


@dataclass(frozen=True)
class ChunkPlan:
    index: int
    lm: bool
    begin: int
    end: int
    windows: tuple[Window, ...]  # empty for plain chunks
    tensor: int  # for plain chunks: the tensor index, or -1 for a gap

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


def value_size(chunk: ChunkPlan, layout: SourceLayout) -> int:
    """The value size the shuffle codecs use for a chunk: its tensors' dtype size when they
    all share one, else 1 (no shuffle). Derived from the plan, so it is never stored."""
    if chunk.lm:
        sizes = {layout.tensors[w.tensor].item_size for w in chunk.windows}
    else:
        sizes = {layout.tensors[chunk.tensor].item_size} if chunk.tensor >= 0 else {1}
    return sizes.pop() if len(sizes) == 1 else 1


def int_tensor(chunk: ChunkPlan, layout: SourceLayout) -> TensorEntry | None:
    """The integer tensor a plain chunk lies in (what cm-ints-v1 codes), or None, also when the chunk does not
    hold whole values (a ``plain_chunk_bytes`` that is not a multiple of the value size cuts them)."""
    if chunk.lm or chunk.tensor < 0:
        return None
    t = layout.tensors[chunk.tensor]
    whole = (chunk.begin - t.begin) % t.item_size == 0 and chunk.nbytes % t.item_size == 0
    return t if t.dtype in INT_DTYPES and whole else None


def dtype_runs(chunk: ChunkPlan, layout: SourceLayout) -> list[tuple[str, int, int]] | None:
    """A chunk as runs of whole values of one numeric dtype (what quick-v1 codes: dtype, begin and end in
    the chunk), consecutive windows of one dtype in one run; None for a gap or a plain chunk that cuts
    values or lies in a tensor of no numeric dtype."""
    if not chunk.lm:
        t = int_tensor(chunk, layout)
        return [(t.dtype, 0, chunk.nbytes)] if t is not None else None
    runs: list[tuple[str, int, int]] = []
    for w in chunk.windows:
        t = layout.tensors[w.tensor]
        if w.nbytes % t.item_size:
            return None
        lo, hi = w.begin - chunk.begin, w.end - chunk.begin
        if runs and runs[-1][0] == t.dtype and runs[-1][2] == lo:
            runs[-1] = (t.dtype, runs[-1][1], hi)
        else:
            runs.append((t.dtype, lo, hi))
    return runs


def plan_chunks(
    layout: SourceLayout,
    window_bytes: int,
    batch: int,
    bytes_per_group: int,
    plain_chunk_bytes: int = PLAIN_CHUNK_BYTES,
    rows: Mapping[int, int] | None = None,
    max_chunks: int | None = None,
) -> list[ChunkPlan]:
    """``rows``: row lengths (groups) of flat tensors, tensor index -> row (rows.py; header ``rows``).
    ``max_chunks``: stop with :class:`TooManyChunks` as soon as the plan grows past it (a reader knows
    how many chunks the archive holds: a crafted header must not make it build billions first)."""

    def add(chunk: ChunkPlan) -> None:
        chunks.append(chunk)
        if max_chunks is not None and len(chunks) > max_chunks:
            raise TooManyChunks(f"the window layout implies more than {max_chunks:,} chunks")

    if window_bytes < 1 or batch < 1 or plain_chunk_bytes < 1:
        raise ValueError("window_bytes, batch and plain_chunk_bytes must be positive")
    chunks: list[ChunkPlan] = []
    pending: list[Window] = []

    def flush() -> None:
        if pending:
            add(ChunkPlan(len(chunks), True, pending[0].begin, pending[-1].end, tuple(pending), -1))
            pending.clear()

    def plain(begin: int, end: int, tensor: int) -> None:
        flush()
        for start in range(begin, end, plain_chunk_bytes):
            add(ChunkPlan(len(chunks), False, start, min(end, start + plain_chunk_bytes), (), tensor))

    pos = 0
    vectors: dict[int, int] = {}  # length -> the latest 1-D tensor of that length with one value per group
    for ti, t in enumerate(layout.tensors):
        if t.begin > pos:
            plain(pos, t.begin, -1)
        if t.nbytes == 0:
            pass
        elif t.dtype in LM_DTYPES:
            group = group_size(bytes_per_group, t.item_size)
            step = max(group, window_bytes // group * group)
            row = _row_groups(t.shape, t.item_size, group)
            ref = vectors.get(t.shape[0], -1) if row else -1
            if rows and ti in rows:  # a flat tensor's inferred rows: no bias vector goes with them
                row, ref = rows[ti], -1
            for start in range(t.begin, t.end, step):
                pending.append(Window(ti, start, min(t.end, start + step), group, (start - t.begin) // group, row, ref))
                if len(pending) == batch:
                    flush()
            if len(t.shape) == 1 and group == t.item_size:
                vectors[t.shape[0]] = ti
        else:
            plain(t.begin, t.end, ti)
        pos = max(pos, t.end)
    if layout.data_size > pos:
        plain(pos, layout.data_size, -1)
    flush()
    return chunks
