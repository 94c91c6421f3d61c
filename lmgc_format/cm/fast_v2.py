"""``cm-fast-v2``: the fast level's chunk codec since format 1.8 (chunk codec 9): context mixing where it
wins, static rANS tables below.

An fp32 gradient's context-mixing model earns its bits in a value's top byte and the next byte's first two
bits (a float's sign, exponent and first mantissa bit); below them it codes within 0.04 bits of a byte's
order-0 entropy (measured on the SmolLM2 gradient: 7.85 / 8.02 / 7.85 bits a byte for ranks 1-3 against
7.97 / 8.00 / 7.89 order-0), at two thirds of its time. So the kernel (kernel.py, cm-fast-v1's, told by
the window table's column 14) codes those ten bits of every value (fp64: thirteen, through its first
mantissa bit; ``SECOND_BITS``), and each bit plane under them is coded as quick-v1 codes a plane
(planes.py): under static tables per chunk, alone or under the value's exponent (8 or 24 bins), or stored.
Twice as fast on fp32 at the same size (0.9998x on a 120 MB gradient); bf16 (ten of its sixteen bits stay
with the model) gains a quarter. fp16 values stay with the model whole: their mantissas (subnormal, often,
in a gradient) follow their neighbours, which planes do not see (+1 to 3 % measured on the corpus).

Payload: the kernel's stream length (LEB128 varint) and stream (lpaq's 4-byte flush at its end), then for
each run of one dtype (tensors/plan.py's dtype_runs), the planes under the model's bits, most significant
first: the second byte's bits below them (fp32, bf16: a 6-bit plane; fp64: 3 bits), then each byte below
as an 8-bit plane (fp16: none). A run's
``top`` exponent (for the exponent contexts) is not stored: both sides take it from the decoded top bits.
docs/FORMAT.md "How a fast-level chunk is coded (`cm-fast-v2`, ...)" specifies it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm import planes, varint
from lmgc_format.cm import rans_kernel as rk
from lmgc_format.cm.quick_fields import FIELDS
from lmgc_format.container.constants import FAST2_PROCEDURE
from lmgc_format.errors import CorruptChunkError
from lmgc_format.tensors.plan import ChunkPlan, Window, dtype_runs
from lmgc_format.tensors.source import SourceLayout

NAME = FAST2_PROCEDURE
# The second byte's bits the model codes, by dtype: through the mantissa's first bit (fp32 and bf16: the
# exponent's last bit and it; fp64: the exponent's last four and it); fp16: all 8, and no planes.
SECOND_BITS = {"F32": 2, "BF16": 2, "F64": 5, "F16": 8}
KINDS = (rk.KIND_ORDER0, rk.KIND_EXPONENT, rk.KIND_WIDE)  # what a plane may be coded under (or stored)
CODED_SHARE = 1.0  # a plane is stored only where coding would not make it smaller: size first at this level
_MAX_STREAM_BYTES = 5


def encode_chunk(chunk: ChunkPlan, layout: SourceLayout, data: bytes) -> tuple[bytes, list[float]] | None:
    """The chunk's payload and the bits each window took (its model bits, and its share of its run's
    planes), or None where the codec does not take the chunk (values cut) or would not make it smaller."""
    runs = dtype_runs(chunk, layout)
    if runs is None or not chunk.lm:
        return None
    buf = np.frombuffer(data, dtype=np.uint8).copy()
    out = np.empty(len(data) + 64, dtype=np.uint8)
    sizes, second = _kernel_args(layout, chunk)
    n, ends = cm_codec.run_kernel(False, buf, out, chunk.windows, chunk.begin, sizes, second_bits=second)
    if n < 0:
        return None
    ends[-1] = n  # the flush belongs to the last window
    bits = [float(b) for b in np.diff(ends, prepend=0) * 8]
    parts = [varint.write(n), out[:n].tobytes()]
    size = len(parts[0]) + n
    for dtype, lo, hi in runs:
        coded = b"".join(_encode_run(data[lo:hi], dtype))
        _share(bits, chunk.windows, chunk.begin + lo, chunk.begin + hi, len(coded) * 8)
        parts.append(coded)
        size += len(coded)
    if size > len(data):
        return None
    return b"".join(parts), bits


def decode_chunk(chunk: ChunkPlan, layout: SourceLayout, payload: bytes, modes: list[int] | None = None) -> bytes:
    """Inverse of :func:`encode_chunk`; CorruptChunkError for any payload it could not have written. Each
    plane's mode is appended to ``modes`` when given (what the tests look at)."""
    runs = dtype_runs(chunk, layout)
    if runs is None or not chunk.lm:  # the reader refuses such an index (container/reader.py)
        raise CorruptChunkError(f"{NAME} chunk outside whole float values")
    length, pos = varint.read(payload, 0, _MAX_STREAM_BYTES, f"{NAME} stream length runs past its limit")
    if pos + length > len(payload):
        raise CorruptChunkError(f"{NAME} stream of {length} bytes runs past its payload")
    buf = np.zeros(chunk.nbytes, dtype=np.uint8)
    stream = np.frombuffer(payload, dtype=np.uint8, count=length, offset=pos).copy()
    sizes, second = _kernel_args(layout, chunk)
    used, _ = cm_codec.run_kernel(True, buf, stream, chunk.windows, chunk.begin, sizes, second_bits=second)
    if used != length:  # a valid stream is read to its last byte, no further
        raise CorruptChunkError(f"{NAME} stream of {length} bytes decoded as {used}")
    pos += length
    for dtype, lo, hi in runs:
        pos = _decode_run(payload, pos, dtype, buf[lo:hi], modes)
    if pos != len(payload):
        raise CorruptChunkError(f"{NAME} payload has {len(payload) - pos} bytes after its last plane")
    return buf.tobytes()


def _kernel_args(layout: SourceLayout, chunk: ChunkPlan) -> tuple[list[int], list[int]]:
    """run_kernel's item sizes and each window's second bits (the kernel's parameters are cm-fast-v1's)."""
    tensors = layout.tensors
    second = [SECOND_BITS[tensors[w.tensor].dtype] for w in chunk.windows]
    return [t.item_size for t in tensors], second


def _exponents(vals: np.ndarray, dtype: str) -> tuple[np.ndarray, int]:
    """Each value's exponent field as quick-v1 cuts it (its top 8 bits for fp64), all within the bits
    the model codes, and the run's ``top`` (planes.top_of)."""
    _, shift, width, _ = FIELDS[dtype]
    field0 = ((vals >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.uint8)
    return field0, planes.top_of(field0, width)


def _planes(dtype: str) -> list[tuple[int, int]]:
    """(byte in the little-endian value, width) of each plane under the model's bits, most significant first."""
    size, second = FIELDS[dtype][0], SECOND_BITS[dtype]
    top = [(size - 2, 8 - second)] if second < 8 else []
    return top + [(size - 1 - k, 8) for k in range(2, size)]


def _encode_run(data: bytes, dtype: str) -> list[bytes]:
    size = FIELDS[dtype][0]
    cells = np.frombuffer(data, dtype=np.uint8).reshape(-1, size)
    field0, top = _exponents(np.frombuffer(data, dtype=f"<u{size}").astype(np.uint64), dtype)
    known: dict[int, np.ndarray] = {}
    out: list[bytes] = []
    for byte, width in _planes(dtype):
        sym = np.ascontiguousarray(cells[:, byte] & ((1 << width) - 1))
        out += planes.encode_plane(sym, width, KINDS, field0, top, known, CODED_SHARE)
    return out


def _decode_run(payload: bytes, pos: int, dtype: str, buf: np.ndarray, modes: list[int] | None) -> int:
    """The planes of one run into ``buf`` (its bytes, the model's bits already there): where they end."""
    size = FIELDS[dtype][0]
    cells = buf.reshape(-1, size)
    field0, top = _exponents(buf.view(f"<u{size}").astype(np.uint64), dtype)
    sym = np.empty(cells.shape[0], dtype=np.uint8)
    for p, (byte, width) in enumerate(_planes(dtype)):
        pos = planes.decode_plane(payload, pos, width, KINDS, field0, top, sym, f"{NAME} plane {p}", modes)
        cells[:, byte] |= sym
    return pos


def _share(bits: list[float], windows: Sequence[Window], lo: int, hi: int, total: int) -> None:
    """Add a run's plane bits to its windows (those in [lo, hi) of the file), by their share of its bytes."""
    for i, w in enumerate(windows):
        if lo <= w.begin and w.end <= hi:
            bits[i] += total * (w.end - w.begin) / (hi - lo)
