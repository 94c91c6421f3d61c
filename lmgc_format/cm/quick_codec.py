"""``quick-v1``: the quick level's chunk codec (chunk codec 8, format 1.7): a chunk's values split into
fields, each field coded by rANS with static tables (rans_kernel.py), at hundreds of MB/s.

Where a gradient's bits are: in a float's exponent, which its neighbours predict (an fp32 gradient's two low
mantissa bytes are noise, the third nearly so; BENCHMARKS.md "Corpus"). So each value (little-endian, of the
chunk's one dtype) is cut into *planes*:

* plane 0, the exponent (its top 8 bits for fp64), coded under the mean of the four exponents before it
  (``KIND_HISTORY``) or alone;
* then the sign followed by the mantissa, 8 bits at a time from the top (the last piece narrower where the
  bits run out: fp16 ends in 3), each coded under its value's exponent (``KIND_EXPONENT``: zeros and tiny
  values have other mantissas), alone, or stored as it is.

An integer chunk's planes are its bytes from the most significant, each coded alone or stored. The encoder
measures each plane's cost under each choice from its histograms (tables included) and keeps the cheapest;
nothing is guessed that the decoder must repeat.

Payload: a version byte (1), then for each run of one dtype (tensors/plan.py's dtype_runs) its ``top``
exponent (the largest plane-0 symbol below all ones) as a LEB128 varint and per plane a mode byte (0, 1, 2:
coded, under that context kind; 3: stored) followed by the tables (rans_kernel.write_table), the lengths in
16-bit words of the plane's two halves' streams (varints) and their words (little-endian), or by the
plane's bytes as they are. The plan gives the dtypes and the number of values (docs/FORMAT.md "How a
quick-level chunk is coded").
"""

from __future__ import annotations

import numpy as np

from lmgc_format.cm import planes, varint
from lmgc_format.cm import rans_kernel as rk
from lmgc_format.cm.quick_fields import FIELDS, join, planes_of, split, values
from lmgc_format.container.constants import QUICK_PROCEDURE
from lmgc_format.errors import CorruptChunkError
from lmgc_format.tensors.plan import ChunkPlan, dtype_runs
from lmgc_format.tensors.source import SourceLayout

NAME = QUICK_PROCEDURE
VERSION = 1
STORED = planes.STORED
# An 8-bit plane is coded when that saves at least 2 % of its bytes: below, decoding it costs more time than
# the bytes are worth at this level (an fp32 gradient's lowest byte: 7.94 bits, BENCHMARKS.md "Corpus").
CODED_SHARE = 0.98
bit_cost = planes.bit_cost
table_digest = planes.table_digest


def encode_chunk(chunk: ChunkPlan, layout: SourceLayout, data: bytes) -> bytes | None:
    """The chunk's payload (each run of one dtype in turn: tensors/plan.py's dtype_runs), or None where the
    codec does not take the chunk (a gap, values cut)."""
    runs = dtype_runs(chunk, layout)
    return _encode_runs(data, runs) if runs is not None else None


def decode_chunk(chunk: ChunkPlan, layout: SourceLayout, payload: bytes, modes: list[int] | None = None) -> bytes:
    runs = dtype_runs(chunk, layout)
    if runs is None:  # the reader refuses such an index (container/reader.py)
        raise CorruptChunkError(f"{NAME} chunk outside whole numeric values")
    return _decode_runs(payload, runs, modes)


def encode(data: bytes, dtype: str) -> bytes:
    """The payload of a chunk of one run: ``data``, whole values of ``dtype``."""
    return _encode_runs(data, [(dtype, 0, len(data))])


def decode(payload: bytes, dtype: str, nbytes: int) -> bytes:
    """Inverse of :func:`encode`: the ``nbytes`` bytes of ``dtype`` values; CorruptChunkError for any payload
    :func:`encode` could not have written."""
    return _decode_runs(payload, [(dtype, 0, nbytes)], None)


def _encode_runs(data: bytes, runs: list[tuple[str, int, int]]) -> bytes:
    return bytes([VERSION]) + b"".join(encode_run(data[lo:hi], dtype) for dtype, lo, hi in runs)


def _decode_runs(payload: bytes, runs: list[tuple[str, int, int]], modes: list[int] | None) -> bytes:
    data = _version(payload)
    pos = 1
    parts = []
    for dtype, lo, hi in runs:
        part, pos = decode_run(payload, pos, dtype, hi - lo, modes)
        parts.append(part)
    if pos != len(data):
        raise CorruptChunkError(f"{NAME} payload has {len(data) - pos} bytes after its last plane")
    return b"".join(parts)


def _version(payload: bytes) -> np.ndarray:
    data = np.frombuffer(payload, dtype=np.uint8)
    if not len(data) or data[0] != VERSION:
        raise CorruptChunkError(f"{NAME} payload of an unknown version")
    return data


def _kinds(plane: int, is_float: bool) -> tuple[int, ...]:
    if not is_float:
        return (rk.KIND_ORDER0,)
    return (rk.KIND_ORDER0, rk.KIND_HISTORY if plane == 0 else rk.KIND_EXPONENT)


def encode_run(data: bytes, dtype: str) -> bytes:
    """One run's part of a payload: ``data``, whole values of ``dtype``, as its ``top`` and planes."""
    size, shift, width, is_float = FIELDS[dtype]
    widths = planes_of(dtype)
    vals = values(data, size)
    n = len(vals)
    cut = np.empty((len(widths), n), dtype=np.uint8)
    split(vals, size, shift, width, is_float, cut)
    top = planes.top_of(cut[0], width) if is_float else 0
    out = [varint.write(top)]
    known: dict[int, np.ndarray] = {}
    for p, w in enumerate(widths):
        out += planes.encode_plane(cut[p], w, _kinds(p, is_float), cut[0], top, known, CODED_SHARE)
    return b"".join(out)


def decode_run(payload: bytes, pos: int, dtype: str, nbytes: int, modes: list[int] | None = None) -> tuple[bytes, int]:
    """Inverse of :func:`encode_run` from ``payload[pos:]``: the run's ``nbytes`` bytes and where it ends;
    each plane's mode appended to ``modes`` when given (what inspect and the tests look at)."""
    size, shift, width, is_float = FIELDS[dtype]
    widths = planes_of(dtype)
    n = nbytes // size
    top, pos = varint.read(payload, pos, 2, f"{NAME} top exponent runs past its limit")
    if top >= 1 << width or (top and not is_float):
        raise CorruptChunkError(f"{NAME} top exponent {top} is out of range")
    cut = np.empty((len(widths), n), dtype=np.uint8)
    for p, w in enumerate(widths):
        what = f"{NAME} plane {p}"
        pos = planes.decode_plane(payload, pos, w, _kinds(p, is_float), cut[0], top, cut[p], what, modes)
    vals = np.empty(n, dtype=f"u{size}")
    join(cut, size, shift, is_float, vals)
    return vals.astype(f"<u{size}", copy=False).tobytes(), pos
