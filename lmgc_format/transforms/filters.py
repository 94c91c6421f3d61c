"""Zero-sum filters: exact linear constraints of backpropagation, used like PNG's filters.

Backpropagation leaves some gradients with sums that are exactly zero in real
arithmetic (docs/FORMAT.md, "Filters"):

* a softmax cross-entropy head: each example's logit gradients sum to zero over
  the classes, so the head's weight gradient sums to zero down its first axis
  (every column) and its bias gradient sums to zero;
* a residual stream read only through LayerNorms (ViT, GPT-2, BERT): the
  gradient into a LayerNorm has zero mean over the features, so every layer
  that writes the stream (output projections, MLP outputs) has a weight and
  bias gradient that sum to zero down the first axis, and position tables and
  class tokens sum to zero along their last axis.

In floating point those sums are zero up to the rounding of the values, so one
element per line along the axis is almost known once the others are: the
filter stores it as its distance, in representable values, from minus the sum
of the others. The distance is a small integer, stored zigzagged in the
element's place (a few low bits, the rest zero), which the coder then codes
like any value. One line per column fixes one value in every ``shape[0]``
(classes, model width): a large share of a small model's head, a small one of
a big model's.

Two kinds, each a view of the tensor as a grid of ``rows x cols`` elements in
file order:

* ``sum-first-axis-v1``: grid ``(shape[0], rest)``; the last row is predicted,
  element ``j`` from the binary64 sum of column ``j`` over the rows above;
* ``sum-last-axis-v1``: grid ``(rest, shape[-1])``; the last element of every
  row is predicted from the binary64 sum of the row's other elements.

The procedure is exact and shared by encoder and decoder: a sum starts at
+0.0 and adds the elements' values in file order in binary64 (round to
nearest, even); the prediction is ``-sum`` rounded to the tensor's dtype
(bfloat16: to float32, then to bfloat16, both to nearest even), or the value
with all bits zero when the sum is not finite. The distance is taken between
the two values' positions in the total order of bit patterns (``ordered``),
modulo 2^bits, so every bit pattern (NaN, -0.0, infinities) survives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lmgc_format.errors import FormatError
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.tensors.serialize import group_size
from lmgc_format.tensors.source import LM_DTYPES, SourceLayout, TensorEntry

FIRST_AXIS = "sum-first-axis-v1"
LAST_AXIS = "sum-last-axis-v1"
KINDS = (FIRST_AXIS, LAST_AXIS)

# A filter is kept when its stored distances need at most this share of the bits the
# elements had (mean bit length of the zigzagged distances <= a quarter of the element
# size). A coded distance costs its bit length plus several bits (its top byte is zero
# where the tensor's are not); half the size kept bfloat16 filters that cost bytes
# (docs/EXPERIMENTS.md, "Zero-sum filters").
KEEP_SHARE = 0.25
# Elements read at a time while choosing filters (bounded memory on big tensors).
SCAN_ELEMENTS = 1 << 20


def _linesums():  # type: ignore[no-untyped-def]
    """The compiled sums, imported when a filter first runs: importing numba costs ~0.2 s, which commands
    that never sum a line (inspect, or decoding an archive without filters) need not pay."""
    from lmgc_format.transforms import linesums

    return linesums


@dataclass(frozen=True)
class TensorFilter:
    tensor: int  # index into SourceLayout.tensors
    kind: str  # FIRST_AXIS | LAST_AXIS


def parse_pairs(obj: object) -> tuple[tuple[int, str], ...]:
    """The header's ``filters`` value as ``(tensor index, kind)`` pairs (its shape only: the
    reader checks them against the tensor table with :func:`check_filters`)."""
    if not isinstance(obj, list) or not all(
        isinstance(f, list) and len(f) == 2 and type(f[0]) is int and isinstance(f[1], str) for f in obj
    ):
        raise FormatError("header.filters: every entry must be [tensor index, kind]")
    return tuple((f[0], f[1]) for f in obj)


def check_filters(
    pairs: Sequence[tuple[int, str]], layout: SourceLayout, bytes_per_group: int
) -> tuple[TensorFilter, ...]:
    """The header's filters, checked against the tensor table (FormatError if one does not fit)."""
    out: list[TensorFilter] = []
    for tensor, kind in pairs:
        f = TensorFilter(tensor, kind)
        if f.kind not in KINDS:
            raise FormatError(f"header.filters: unknown filter {f.kind!r} (a newer lmgc wrote this archive)")
        if not 0 <= f.tensor < len(layout.tensors) or (out and f.tensor <= out[-1].tensor):
            raise FormatError("header.filters: tensor indices must be in range and increasing")
        if not filterable(layout.tensors[f.tensor], f.kind, bytes_per_group):
            raise FormatError(f"header.filters: tensor {layout.tensors[f.tensor].name!r} cannot carry {f.kind}")
        out.append(f)
    return tuple(out)


def grid(t: TensorEntry, kind: str) -> tuple[int, int]:
    """The tensor as rows x cols in file order, for ``kind``."""
    n = math.prod(t.shape)
    if kind == FIRST_AXIS:
        rows = t.shape[0] if t.shape else 1
    else:
        rows = n // t.shape[-1] if t.shape and t.shape[-1] else 0
    return rows, (n // rows if rows else 0)


def predicted_groups(t: TensorEntry, kind: str) -> tuple[int, int]:
    """``(start, every)``: the predicted elements are ``start``, ``start + every``, ... (every 0: all
    from ``start`` on), as element indices in file order (``Window.pred_start`` / ``pred_every``)."""
    rows, cols = grid(t, kind)
    return ((rows - 1) * cols, 0) if kind == FIRST_AXIS else (cols - 1, cols)


def _ranks(e0: int, e1: int, start: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Which element indices in ``[e0, e1)`` are predicted, and each one's rank among the predicted
    (computed from the arithmetic progression, not by testing every index)."""
    step = every or 1
    first = start if e0 <= start else start + -(-(e0 - start) // step) * step
    places = np.arange(first, max(first, e1), step, dtype=np.int64)
    return places, (places - start) // step


def filterable(t: TensorEntry, kind: str, bytes_per_group: int) -> bool:
    """Floating point, at least two elements on each predicted line, and one element per
    LM group (so every chunk holds whole elements, and every stored distance is a group)."""
    if t.dtype not in LM_DTYPES or t.nbytes == 0:
        return False
    if group_size(bytes_per_group, t.item_size) != t.item_size:
        return False
    rows, cols = grid(t, kind)
    return rows >= 2 if kind == FIRST_AXIS else cols >= 2


class _Bits:
    """One dtype's element words: their values in binary64, and predictions from sums."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype
        self.size = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}[dtype]
        self.uint = np.dtype(f"<u{self.size}")
        self.nbits = 8 * self.size
        self.sign = self.uint.type(1 << (self.nbits - 1))

    def words(self, raw: bytes | memoryview) -> np.ndarray:
        return np.frombuffer(raw, dtype=self.uint)

    def values(self, words: np.ndarray) -> np.ndarray:
        if self.dtype == "BF16":
            return (words.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
        float_type = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}[self.dtype]
        with np.errstate(invalid="ignore"):  # signalling NaNs (random bytes) widen to NaN: not finite either way
            return words.view(float_type).astype(np.float64)

    def predict(self, sums: np.ndarray) -> np.ndarray:
        """Words of ``-sums`` rounded to the dtype; zero where a sum is not finite."""
        neg = np.where(np.isfinite(sums), -sums, 0.0)
        with np.errstate(over="ignore"):
            if self.dtype == "F64":
                return neg.astype("<f8").view(self.uint)
            if self.dtype == "F16":
                return neg.astype("<f2").view(self.uint)
            f32 = neg.astype("<f4").view(np.uint32)
            if self.dtype == "F32":
                return f32
        wide = f32.astype(np.uint64)  # bfloat16: round the float32 bits to nearest, even
        return ((wide + 0x7FFF + ((wide >> 16) & 1)) >> 16).astype(self.uint)

    def ordered(self, w: np.ndarray) -> np.ndarray:
        """A bijection of bit patterns onto integers that follows the values' order."""
        return np.where(w & self.sign, ~w, w | self.sign)

    def unordered(self, o: np.ndarray) -> np.ndarray:
        return np.where(o & self.sign, o ^ self.sign, ~o)

    def distance(self, actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """Zigzagged (actual - predicted) in the total order, modulo 2^bits."""
        d = self.ordered(actual) - self.ordered(predicted)
        return np.where(d & self.sign, ~(d << self.uint.type(1)), d << self.uint.type(1))

    def restore(self, stored: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        half = stored >> self.uint.type(1)
        d = np.where(stored & self.uint.type(1), ~half, half)
        return self.unordered(self.ordered(predicted) + d)


class LineSums:
    """One filtered tensor's running sums, fed its elements in file order, in pieces of any
    size: the same sums come out however the tensor is cut (the procedure in the module
    docstring), so the encoder's one pass and the decoder's chunk-by-chunk passes agree."""

    def __init__(self, t: TensorEntry, kind: str) -> None:
        self.kind = kind
        self.bits = _Bits(t.dtype)
        self.rows, self.cols = grid(t, kind)
        self.total = self.rows * self.cols
        self.pos = 0  # elements fed so far
        self.acc = np.zeros(self.cols if kind == FIRST_AXIS else 1, dtype=np.float64)

    def feed(self, words: np.ndarray, forward: bool) -> np.ndarray:
        """The next elements, as found: originals (``forward``: they come back with the
        predicted places replaced by distances) or stored words (they come back restored)."""
        if self.pos + len(words) > self.total:
            raise FormatError("a filtered tensor was fed more elements than it holds")
        out = words.copy()
        if self.kind == FIRST_AXIS:
            self._first(out, forward)
        else:
            self._last(out, forward)
        self.pos += len(words)
        return out

    def _convert(self, stored: np.ndarray, predicted: np.ndarray, forward: bool) -> np.ndarray:
        if forward:
            return self.bits.distance(stored, predicted)
        return self.bits.restore(stored, predicted)

    def _first(self, out: np.ndarray, forward: bool) -> None:
        cols, start = self.cols, self.pos
        last_row = (self.rows - 1) * cols
        known = max(0, min(len(out), last_row - start))  # elements above the last row
        if known:
            self._add_columns(start, self.bits.values(out[:known]))
        if known < len(out):
            j0 = start + known - last_row
            j1 = j0 + len(out) - known
            out[known:] = self._convert(out[known:], self.bits.predict(self.acc[j0:j1]), forward)

    def _add_columns(self, start: int, vals: np.ndarray) -> None:
        """acc[column] += value, element by element in file order (compiled: linesums.py)."""
        _linesums().add_columns(self.acc, vals, start % self.cols)

    def _last(self, out: np.ndarray, forward: bool) -> None:
        cols, start, i = self.cols, self.pos, 0
        while i < len(out):
            j = (start + i) % cols
            if j == 0 and len(out) - i >= cols:  # whole rows at once
                full = (len(out) - i) // cols
                block = out[i : i + full * cols].reshape(full, cols)
                sums = _linesums().row_sums(self.bits.values(block[:, :-1]))
                block[:, -1] = self._convert(block[:, -1], self.bits.predict(sums), forward)
                i += full * cols
                continue
            n = min(len(out) - i, cols - 1 - j)  # the row's known elements in this piece
            if n:
                _linesums().add_columns(self.acc, self.bits.values(out[i : i + n]), 0)
                i += n
            if i < len(out):  # the row's last element
                out[i : i + 1] = self._convert(out[i : i + 1], self.bits.predict(self.acc), forward)
                self.acc[0] = 0.0
                i += 1


def mark_plan(plan: Sequence[ChunkPlan], layout: SourceLayout, filters: Sequence[TensorFilter]) -> list[ChunkPlan]:
    """``plan`` with the windows of filtered tensors marked (``Window.pred_start`` / ``pred_every``),
    so that the top-byte model can tell stored distances from values (topbyte.py)."""
    kinds = {f.tensor: f.kind for f in filters}
    if not kinds:
        return list(plan)
    out = []
    for chunk in plan:
        windows = []
        for w in chunk.windows:
            if w.tensor in kinds:
                start, every = predicted_groups(layout.tensors[w.tensor], kinds[w.tensor])
                w = replace(w, pred_start=start, pred_every=every)
            windows.append(w)
        out.append(replace(chunk, windows=tuple(windows)))
    return out


def choose_filters(
    layout: SourceLayout, read: Callable[[int, int], bytes], bytes_per_group: int
) -> tuple[tuple[TensorFilter, ...], dict[int, np.ndarray]]:
    """Which tensors to filter, and their stored words at the predicted places
    (tensor index -> words, in order), by trying both kinds on every float tensor.
    ``read(offset, size)`` reads the data section."""
    chosen: list[TensorFilter] = []
    words: dict[int, np.ndarray] = {}
    for ti, t in enumerate(layout.tensors):
        # A 1-D tensor's last-axis grid is its first-axis grid: try it once.
        kinds = [k for k in KINDS if filterable(t, k, bytes_per_group) and (k == FIRST_AXIS or len(t.shape) >= 2)]
        best: tuple[int, str, np.ndarray] | None = None
        for kind, (stored, original) in _predicted_words(t, kinds, read).items():
            bits = sum(int(w).bit_length() for w in stored.tolist())
            budget = KEEP_SHARE * len(stored) * 8 * t.item_size
            saved = len(stored) * 8 * t.item_size - bits
            # Mostly exact zeros (a top-k gradient written dense): its lines sum to zero only because most
            # are empty, and a distance would replace the few values that are not: no filter.
            if np.count_nonzero(original) * 2 < len(original):
                continue
            if bits <= budget and (best is None or saved > best[0]):
                best = (saved, kind, stored)
        if best is not None:
            chosen.append(TensorFilter(ti, best[1]))
            words[ti] = best[2]
    return tuple(chosen), words


def _predicted_words(
    t: TensorEntry, kinds: Sequence[str], read: Callable[[int, int], bytes]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each kind's stored words at its predicted places, and the words there before filtering, from one
    read of the tensor in pieces of SCAN_ELEMENTS (LineSums gives the same sums however it is cut)."""
    sums = {kind: LineSums(t, kind) for kind in kinds}
    places = {kind: predicted_groups(t, kind) for kind in kinds}
    out: dict[str, list[np.ndarray]] = {kind: [] for kind in kinds}
    before: dict[str, list[np.ndarray]] = {kind: [] for kind in kinds}
    total = math.prod(t.shape)
    for e in range(0, total if kinds else 0, SCAN_ELEMENTS):
        n = min(SCAN_ELEMENTS, total - e)
        raw = read(t.begin + e * t.item_size, n * t.item_size)
        for kind, line in sums.items():
            words = line.bits.words(raw)
            at, _ = _ranks(e, e + n, *places[kind])
            before[kind].append(words[at - e].copy())
            fed = line.feed(words, True)
            out[kind].append(fed[at - e])
    return {kind: (np.concatenate(out[kind]), np.concatenate(before[kind])) for kind in kinds}


class ForwardFilter:
    """The encoder's side: a data-section range with the chosen tensors' predicted places
    replaced by their stored words. Stateless per call, so chunks may be read in any order."""

    def __init__(self, layout: SourceLayout, filters: Sequence[TensorFilter], words: dict[int, np.ndarray]) -> None:
        self.layout = layout
        self.filters = tuple(filters)
        self.words = words

    def apply(self, begin: int, raw: bytes) -> bytes:
        if not self.filters:
            return raw
        out: bytearray | None = None
        end = begin + len(raw)
        for f in self.filters:
            t = self.layout.tensors[f.tensor]
            if t.end <= begin or t.begin >= end:
                continue
            size = t.item_size
            e0 = (max(begin, t.begin) - t.begin) // size
            e1 = (min(end, t.end) - t.begin) // size
            places, ranks = _ranks(e0, e1, *predicted_groups(t, f.kind))
            if len(places) == 0:
                continue
            if out is None:
                out = bytearray(raw)
            stored = self.words[f.tensor][ranks].astype(_Bits(t.dtype).uint)
            view = np.frombuffer(out, dtype=np.uint8)
            for k in range(size):  # byte k of every predicted element
                view[t.begin - begin + places * size + k] = (stored >> (8 * k)).astype(np.uint8)
        return bytes(out) if out is not None else raw


class InverseFilter:
    """The decoder's side: fed every chunk's stored bytes in file order, gives back the originals."""

    def __init__(self, layout: SourceLayout, filters: Sequence[TensorFilter]) -> None:
        self.layout = layout
        self.filters = tuple(filters)
        self.sums = {f.tensor: LineSums(layout.tensors[f.tensor], f.kind) for f in self.filters}

    def feed(self, begin: int, data: bytes) -> bytes:
        if not self.filters:
            return data
        out: bytearray | None = None
        end = begin + len(data)
        for f in self.filters:
            t = self.layout.tensors[f.tensor]
            lo, hi = max(begin, t.begin), min(end, t.end)
            if lo >= hi:
                continue
            sums = self.sums[f.tensor]
            if (lo - t.begin) // t.item_size != sums.pos or (hi - lo) % t.item_size:
                raise FormatError(f"filtered tensor {t.name!r} was not decoded in whole elements, in order")
            if out is None:
                out = bytearray(data)
            restored = sums.feed(sums.bits.words(data[lo - begin : hi - begin]), False)
            out[lo - begin : hi - begin] = restored.tobytes()
        return bytes(out) if out is not None else data


def restore_tensor(t: TensorEntry, kind: str, stored: bytes) -> bytes:
    """One whole filtered tensor's original bytes (salvage decodes tensor by tensor)."""
    sums = LineSums(t, kind)
    return sums.feed(sums.bits.words(stored), False).tobytes()
