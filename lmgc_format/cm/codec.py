"""``cm-fast-v1``: a chunk of float windows coded by the compiled context-mixing kernel, no LM.

What the kernel needs of a chunk is where every window sits: its tensor, its
first value's index there, the matrix row length (the plan's ``row``), where
in the chunk the tensor starts (so a value can look one row up without
leaving the chunk) and where the row vector (the bias) lies, if the chunk holds
it. :func:`window_table` derives that from the plan, which both sides
rebuild from the header, so nothing of it is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from lmgc_format.cm import fixed
from lmgc_format.container.constants import FAST_CODER, FAST_PROCEDURE
from lmgc_format.errors import CorruptChunkError
from lmgc_format.tensors.plan import Window

NAME = FAST_PROCEDURE
# count limit, initial mixer weight (Q16), mixer rate, APM rate, APM share (of 4): see kernel.P_*.
PARAMS = (255, 10000, 24, 7, 3)
_NO_REF = -(1 << 62)
# What the header's ``coder`` says of a fast-level archive (for people; the codec id pins the procedure).
CODER = FAST_CODER


def window_table(windows: Sequence[Window], chunk_begin: int, item_sizes: Sequence[int]) -> np.ndarray:
    """int64 (n, 13): begin, end (in the chunk), group, first, row, tensor, tensor start in the chunk,
    row vector: offset of its value 0 (or _NO_REF), end, value size, filter start, filter step,
    row vector start."""
    table = np.zeros((len(windows), 13), dtype=np.int64)
    starts: dict[int, int] = {}  # tensor -> where its bytes begin in the chunk
    origin: dict[int, list[int]] = {}  # tensor -> [offset of its value 0 (may precede the chunk), end, size]
    for w in windows:
        lo = w.begin - chunk_begin
        if w.tensor not in origin:
            starts[w.tensor] = lo
            origin[w.tensor] = [lo - w.first * w.group, 0, w.group]
        origin[w.tensor][1] = w.end - chunk_begin
    for n, w in enumerate(windows):
        ref = origin.get(w.ref) if w.ref >= 0 else None
        table[n] = (
            w.begin - chunk_begin,
            w.end - chunk_begin,
            w.group,
            w.first,
            w.row,
            w.tensor,
            starts[w.tensor],
            ref[0] if ref else _NO_REF,
            ref[1] if ref else 0,
            ref[2] if ref else item_sizes[w.tensor],
            w.pred_start,
            w.pred_every,
            starts[w.ref] if ref else 0,
        )
    return table


def _kernel():  # type: ignore[no-untyped-def]
    from lmgc_format.cm.kernel import run  # numba compiles on first import (cached on disk)

    return run


_CLOSED = np.zeros(0, dtype=np.int64)  # the kernel's ``state`` for a stream of its own: flushed
_NO_COSTS = np.zeros(0, dtype=np.int64)  # the kernel's ``costs`` when nobody asks where the bits went


def run_kernel(decode: bool, buf: np.ndarray, payload: np.ndarray, windows: Sequence[Window], chunk_begin: int,
         item_sizes: Sequence[int], params: Sequence[int] = PARAMS, state: np.ndarray = _CLOSED,
         costs: np.ndarray = _NO_COSTS, second_bits: Sequence[int] = ()) -> tuple[int, np.ndarray]:  # fmt: skip
    """The kernel over one chunk: the payload bytes written (encode) or read (decode), and the payload
    length at the end of each window. ``state``: kernel.run's (3 cells leave the coder open).
    ``second_bits`` (cm-fast-v2): per window, the second byte's bits the model codes (kernel.py)."""
    squash, stretch, rate = fixed.tables()
    table = window_table(windows, chunk_begin, item_sizes)
    if second_bits:
        table = np.hstack([table, np.array(second_bits, dtype=np.int64).reshape(-1, 1)])
    ends = np.zeros(len(windows), dtype=np.int64)
    params_array = np.array(params, dtype=np.int64)
    n = _kernel()(decode, buf, payload, table, squash, stretch, rate, params_array, ends, state, costs, _cost_table())
    return int(n), ends


def encode(
    windows: Sequence[Window], chunk_begin: int, data: bytes, item_sizes: Sequence[int]
) -> tuple[bytes, list[float]] | None:
    """The chunk's ``cm-fast-v1`` payload and the bits each window took (payload bytes written while
    it was coded, x 8), or None when the payload would be larger than the data."""
    buf = np.frombuffer(data, dtype=np.uint8).copy()  # one compiled signature: writable arrays
    out = np.empty(len(data) + 64, dtype=np.uint8)
    n, ends = run_kernel(False, buf, out, windows, chunk_begin, item_sizes)
    if n < 0 or n > len(data):
        return None
    ends[-1] = n  # the flush belongs to the last window
    bits = np.diff(ends, prepend=0) * 8
    return out[:n].tobytes(), [float(b) for b in bits]


def decode(
    windows: Sequence[Window], chunk_begin: int, payload: bytes, nbytes: int, item_sizes: Sequence[int]
) -> bytes:
    """Inverse of :func:`encode`: the chunk's ``nbytes`` bytes."""
    buf = np.zeros(nbytes, dtype=np.uint8)
    coded = np.frombuffer(payload, dtype=np.uint8).copy()
    used, _ = run_kernel(True, buf, coded, windows, chunk_begin, item_sizes)
    if used != len(payload):  # a valid stream is read to its last byte, no further
        raise CorruptChunkError(f"{NAME} payload of {len(payload)} bytes decoded as {used}")
    return buf.tobytes()


def encode_open(
    windows: Sequence[Window], chunk_begin: int, data: bytes, item_sizes: Sequence[int], params: Sequence[int]
) -> tuple[bytes, list[float], int, int]:
    """Code ``data`` with the kernel and leave its coder open (``cm-int-v2``: the digits follow in the same
    stream, cm/binary.py): the bytes written so far, the bits each window took, and the coder's x1, x2."""
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    out = np.empty(12 * len(data) + 64, dtype=np.uint8)  # a decision costs at most 11 bits (p >= 32 / 2**16)
    state = np.zeros(3, dtype=np.int64)
    n, ends = run_kernel(False, buf, out, windows, chunk_begin, item_sizes, params, state)
    bits = np.diff(ends, prepend=0) * 8
    return out[:n].tobytes(), [float(b) for b in bits], int(state[0]), int(state[1])


def decode_open(
    windows: Sequence[Window], chunk_begin: int, payload: bytes, nbytes: int, item_sizes: Sequence[int],
    params: Sequence[int],
) -> tuple[bytes, int, tuple[int, int, int]]:  # fmt: skip
    """Inverse of :func:`encode_open` over a whole stream (``payload``): the ``nbytes`` bytes, the payload
    bytes read so far and the open coder (x1, x2, x) for cm/binary.py's decoder."""
    buf = np.zeros(nbytes, dtype=np.uint8)
    coded = np.frombuffer(payload, dtype=np.uint8).copy()
    state = np.zeros(3, dtype=np.int64)
    pos, _ = run_kernel(True, buf, coded, windows, chunk_begin, item_sizes, params, state)
    return buf.tobytes(), pos, (int(state[0]), int(state[1]), int(state[2]))


@functools.cache
def _cost_table() -> np.ndarray:
    """-log2(i / 4096) in Q16 for i in 0..4095 (0 as if 1/8192): the cost of a bit coded with 12-bit
    probability i, for reports only (floats are fine here: nothing is coded with it)."""
    i = np.arange(4096, dtype=np.float64)
    i[0] = 0.5
    table = np.rint(-np.log2(i / 4096) * 65536).astype(np.int64)
    table.setflags(write=False)
    return table


def byte_rank_bits(windows: Sequence[Window], chunk_begin: int, data: bytes, item_sizes: Sequence[int]) -> np.ndarray:
    """The ideal bits ``cm-fast-v1`` spends on the chunk's bytes of each rank in their value (float64 (10,):
    0 is the top byte, sign and exponent; 7 the eighth byte and below), then apart the top byte's first bit
    (8: the sign) and the second byte's first (9: a float's exponent's last bit): where the bits go."""
    from lmgc_format.cm.kernel import REPORT_CELLS

    buf = np.frombuffer(data, dtype=np.uint8).copy()
    out = np.empty(12 * len(data) + 64, dtype=np.uint8)
    costs = np.zeros(REPORT_CELLS, dtype=np.int64)
    run_kernel(False, buf, out, windows, chunk_begin, item_sizes, costs=costs)
    return costs / 65536.0
