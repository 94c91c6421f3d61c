"""``cm-ints-v1``: a chunk of an integer tensor (or a mostly-zero float chunk) coded by the compiled decision
model (ints_kernel.py; packed bits: bits_kernel.py).

Quantized gradients (int8 with a scale per row, QSGD levels), index arrays and packed bytes arrive as
integer tensors. The chunk's values are read little-endian as int64 (uint64 as its two's-complement
int64, so every dtype maps one to one) and coded one value at a time; the tensor's shape gives the
row length (``prod(shape[1:])``) and where the chunk starts in it gives the first value's column, so
nothing of that is stored. The payload's first byte says how the values were transformed:

* ``0`` values as they are;
* ``1`` gaps: a 1-D tensor whose chunk is sorted (non-decreasing) codes the first value and then each
  value minus the one before (sorted top-k indices become small gaps). The encoder takes it only when
  every gap is below 2**62; the decoder adds the gaps back up in int64, exactly.
* ``2`` bits (uint8 and int8 only): packed bits, such as signSGD's ``np.packbits`` of the signs, one
  decision a bit (``bits_kernel.run_bits``); a LEB128 varint follows, the row length in bits that the
  encoder chose (0: none), before the stream.
* ``3`` floats as integers (a float chunk of the plan, mostly exact zeros: a top-k gradient written
  dense, an embedding's untouched rows): each window's values read as signed integers of their size (a
  float's bits: sign, then exponent and mantissa as the magnitude), coded window by window with its
  tensor's grid, each window's stream after a LEB128 varint of its length.

The rest is the kernel's stream (lpaq's 4-byte flush at its end). A chunk whose payload would not be
smaller than its bytes is not coded this way (the encoder keeps another codec).
"""

from __future__ import annotations

import math

import numpy as np

from lmgc_format.cm import fixed, varint
from lmgc_format.errors import CorruptChunkError
from lmgc_format.tensors.plan import ChunkPlan, Window, int_tensor
from lmgc_format.tensors.source import SourceLayout

NAME = "cm-ints-v1"
# count limit, initial mixer weight (Q16), mixer rate, APM rate, APM share (of 4): see ints_kernel.P_*.
PARAMS = (255, 14000, 20, 7, 2)
# Little-endian numpy types of the integer dtypes the codec takes, and whether their values are signed
# (uint64 is read as int64: the same 64 bits, one to one).
DTYPES: dict[str, tuple[str, bool]] = {
    "I8": ("i1", True),
    "U8": ("u1", False),
    "I16": ("<i2", True),
    "U16": ("<u2", False),
    "I32": ("<i4", True),
    "U32": ("<u4", False),
    "I64": ("<i8", True),
    "U64": ("<i8", True),
    "BOOL": ("u1", False),
}
MODE_VALUES, MODE_GAPS, MODE_BITS, MODE_FLOATS = 0, 1, 2, 3
_FLOAT_INTS = {8: "I64", 4: "I32", 2: "I16"}  # a float window's values as the signed integers of their size
SPARSE_SHARE = 0.5  # a float chunk is tried as integers when at least this share of its values is zero
BIT_DTYPES = ("U8", "I8")
_SAMPLE_BYTES = 8192  # what a row length is tried on
_MAX_BIT_ROW = 1 << 20
_GAP_LIMIT = 1 << 62
MAX_ROW = 1 << 20  # a tensor with longer rows is coded without a grid (the kernel keeps three counts a column)


def _kernel():  # type: ignore[no-untyped-def]
    from lmgc_format.cm.ints_kernel import run  # numba compiles on first import (cached on disk)

    return run


def grid(shape: tuple[int, ...], first: int) -> tuple[int, int]:
    """(values per row, column of value ``first``) of a tensor: rows along the first axis; (0, 0) for
    fewer than two axes or rows longer than MAX_ROW."""
    row = math.prod(shape[1:]) if len(shape) >= 2 else 0
    if row > MAX_ROW:
        row = 0
    return row, (first % row if row else 0)


def _values(data: bytes, dtype: str) -> tuple[np.ndarray, bool]:
    np_type, signed = DTYPES[dtype]
    return np.frombuffer(data, dtype=np_type).astype(np.int64), signed


def _run(decode: bool, vals: np.ndarray, payload: np.ndarray, row: int, col: int, signed: bool) -> int:
    squash, stretch, rate = fixed.tables()
    params = np.array(PARAMS, dtype=np.int64)
    return int(_kernel()(decode, vals, payload, row, col, signed, squash, stretch, rate, params))


def _run_bits(decode: bool, buf: np.ndarray, payload: np.ndarray, row: int) -> int:
    from lmgc_format.cm.bits_kernel import run_bits

    squash, stretch, rate = fixed.tables()
    params = np.array(PARAMS, dtype=np.int64)
    return int(run_bits(decode, buf, payload, row, squash, stretch, rate, params))


def _periods(x: np.ndarray) -> list[int]:
    """Lags of 8 or more where ``x`` (+-1 values about their mean) agrees most with itself: the shortest
    within 10 % of the best (a period repeats at its multiples), then the best."""
    n = len(x)
    x = x - x.mean()
    spec = np.fft.rfft(x, 2 * n)
    corr = np.fft.irfft(spec * np.conj(spec))[: n // 2]
    if corr[0] <= 0:
        return []
    corr = corr / np.arange(n, n - len(corr), -1) / (corr[0] / n)  # agreement per pair compared, 1 at lag 0
    corr[:8] = 0
    top = float(corr.max())
    if top <= 0.05:
        return []
    return [int(np.flatnonzero(corr >= 0.9 * top)[0]), int(corr.argmax())]


def bit_rows(data: bytes) -> list[int]:
    """Row lengths (in bits) worth trying for packed bits, found on the first 2**18 bits by FFT (the
    encoder's choice, recorded in the payload, so the float arithmetic here changes no decoded bit): where
    the bits repeat (rows alike), and where their changes ``b[p] * b[p - 1]`` repeat (the signs of a rank-one
    matrix, a row sign times a column sign: every row flips the same columns whatever its own sign)."""
    bits = np.unpackbits(np.frombuffer(data[: 1 << 15], dtype=np.uint8)).astype(np.float64) * 2 - 1
    if len(bits) < 64:
        return []
    found = _periods(bits[1:] * bits[:-1]) + _periods(bits)
    return list(dict.fromkeys(found))[:3]


def encode_bits(data: bytes) -> bytes | None:
    """Packed bits (mode 2) with the best of the candidate row lengths, chosen on the first 8 KB."""
    sample = np.frombuffer(data[:_SAMPLE_BYTES], dtype=np.uint8).copy()
    out = np.empty(len(data) + 64, dtype=np.uint8)
    best_row, best_size = 0, -1
    for row in [0, *bit_rows(data)]:
        size = _run_bits(False, sample.copy(), out, row)
        if size >= 0 and (best_size < 0 or size < best_size):
            best_row, best_size = row, size
    n = _run_bits(False, np.frombuffer(data, dtype=np.uint8).copy(), out, best_row)
    head = bytes([MODE_BITS]) + varint.write(best_row)
    if n < 0 or n + len(head) >= len(data):
        return None
    return head + out[:n].tobytes()


def encode(data: bytes, dtype: str, shape: tuple[int, ...], first: int) -> bytes | None:
    """The ``cm-ints-v1`` payload of a chunk of ``dtype`` values starting at value ``first`` of a tensor of
    ``shape``, or None when it would not be smaller than the data."""
    vals, signed = _values(data, dtype)
    row, col = grid(shape, first)
    mode = MODE_VALUES
    if row == 0 and len(vals) >= 2:
        gaps = np.diff(vals)  # int64: no wrap while both ends are below 2**62 in magnitude
        small = bool(np.all(np.abs(vals) < _GAP_LIMIT))
        if small and bool(np.all(gaps >= 0)):
            vals = np.concatenate([vals[:1], gaps])
            mode = MODE_GAPS
    out = np.empty(len(data) + 64, dtype=np.uint8)
    n = _run(False, np.ascontiguousarray(vals), out, row, col, signed or mode == MODE_GAPS)
    coded = bytes([mode]) + out[:n].tobytes() if 0 <= n < len(data) - 1 else None
    # Packed bits come as uint8; an int8 tensor is tried as bits only when its values did not code well.
    if dtype == "U8" or (dtype in BIT_DTYPES and (coded is None or len(coded) > 0.8 * len(data))):
        packed = encode_bits(data)
        if packed is not None and (coded is None or len(packed) < len(coded)):
            return packed
    return coded


def encode_chunk(chunk: ChunkPlan, layout: SourceLayout, data: bytes, any_floats: bool = False) -> bytes | None:
    """:func:`encode` of a plain chunk of the file when it lies in an integer tensor, :func:`encode_floats`
    of a float chunk (``any_floats``: also one that is not mostly zeros); None when neither applies or wins."""
    if chunk.lm:
        return encode_floats(chunk, layout, data, any_floats)
    t = int_tensor(chunk, layout)
    if t is None:
        return None
    return encode(data, t.dtype, t.shape, (chunk.begin - t.begin) // t.item_size)


def _float_windows(chunk: ChunkPlan, layout: SourceLayout) -> list[tuple[Window, str, tuple[int, ...]]] | None:
    """Each window of a float chunk with the integer dtype of its values and its tensor's shape, or None when
    a window's groups are not whole values."""
    out = []
    for w in chunk.windows:
        t = layout.tensors[w.tensor]
        if w.group != t.item_size or t.item_size not in _FLOAT_INTS:
            return None
        out.append((w, _FLOAT_INTS[t.item_size], t.shape))
    return out


def encode_floats(chunk: ChunkPlan, layout: SourceLayout, data: bytes, any_floats: bool = False) -> bytes | None:
    """Mode 3: a float chunk that is mostly exact zeros (``any_floats``: any float chunk, such as the
    differences from a reference, transforms/reference.py), its values as integers; None otherwise, or when
    it would not be smaller than the data."""
    windows = _float_windows(chunk, layout)
    if not chunk.lm or windows is None or not data:
        return None
    size = layout.tensors[chunk.windows[0].tensor].item_size
    if len(data) % size:
        return None
    values = np.frombuffer(data, dtype=f"<i{size}")
    if not any_floats and np.count_nonzero(values == 0) < SPARSE_SHARE * len(values):  # a rough share, enough
        return None
    out = bytearray([MODE_FLOATS])
    for w, dtype, shape in windows:
        part = data[w.begin - chunk.begin : w.end - chunk.begin]
        vals, _ = _values(part, dtype)
        row, col = grid(shape, w.first)
        buf = np.empty(len(part) + 64, dtype=np.uint8)
        n = _run(False, vals, buf, row, col, True)
        if n < 0:
            return None
        out += varint.write(n) + buf[:n].tobytes()
        if len(out) >= len(data):
            return None
    return bytes(out)


def floats_cost(data: bytes, size: int, shape: tuple[int, ...]) -> int:
    """Bytes mode 3 would spend on ``data``, the values of one float tensor from its start (a trial)."""
    vals, _ = _values(data, _FLOAT_INTS[size])
    row, col = grid(shape, 0)
    buf = np.empty(len(data) + 64, dtype=np.uint8)
    n = _run(False, vals, buf, row, col, True)
    return n if n >= 0 else len(data)


def window_bits(payload: bytes) -> list[float]:
    """Mode 3: the bits of each window's stream (its length varint included), for per-tensor accounts."""
    out, pos = [], 1
    while pos < len(payload):
        start = pos
        n, pos = varint.read(payload, pos, 4, f"{NAME} payload has a bad window length")
        pos += n
        out.append(8.0 * (pos - start))
    return out


def _decode_floats(chunk: ChunkPlan, layout: SourceLayout, payload: bytes) -> bytes:
    windows = _float_windows(chunk, layout)
    if windows is None:
        raise CorruptChunkError(f"{NAME} payload codes floats as integers in windows of partial values")
    out = bytearray()
    pos = 1
    for w, dtype, shape in windows:
        n, pos = varint.read(payload, pos, 4, f"{NAME} payload has a bad window length")
        if pos + n > len(payload):
            raise CorruptChunkError(f"{NAME} payload ends inside a window")
        np_type = DTYPES[dtype][0]
        vals = np.zeros(w.nbytes // np.dtype(np_type).itemsize, dtype=np.int64)
        coded = np.frombuffer(payload[pos : pos + n], dtype=np.uint8).copy()
        row, col = grid(shape, w.first)
        if _run(True, vals, coded, row, col, True) != n:
            raise CorruptChunkError(f"{NAME} window stream of {n} bytes did not decode to its end")
        out += _narrow(vals, dtype)
        pos += n
    if pos != len(payload):
        raise CorruptChunkError(f"{NAME} payload has {len(payload) - pos} bytes after its last window")
    return bytes(out)


def decode_chunk(chunk: ChunkPlan, layout: SourceLayout, payload: bytes) -> bytes:
    """:func:`decode` of a chunk of the file: a plain chunk of an integer tensor, or (mode 3) a float chunk."""
    if chunk.lm:
        if not payload or payload[0] != MODE_FLOATS:
            raise CorruptChunkError(f"{NAME} codes a float chunk as integers (mode 3) only")
        return _decode_floats(chunk, layout, payload)
    t = int_tensor(chunk, layout)
    if t is None:
        raise CorruptChunkError(f"{NAME} codes integer tensors and float chunks only")
    if payload[:1] == bytes([MODE_FLOATS]):
        raise CorruptChunkError(f"{NAME} payload codes floats in an integer tensor")
    return decode(payload, t.dtype, t.shape, (chunk.begin - t.begin) // t.item_size, chunk.nbytes)


def decode(payload: bytes, dtype: str, shape: tuple[int, ...], first: int, nbytes: int) -> bytes:
    """Inverse of :func:`encode`: the chunk's ``nbytes`` bytes."""
    np_type, signed = DTYPES[dtype]
    size = np.dtype(np_type).itemsize
    if not payload or payload[0] not in (MODE_VALUES, MODE_GAPS, MODE_BITS) or nbytes % size:
        raise CorruptChunkError(f"{NAME} payload has an unknown mode or the chunk is not whole values")
    mode = payload[0]
    if mode == MODE_BITS:
        if dtype not in BIT_DTYPES:
            raise CorruptChunkError(f"{NAME} payload codes bits of a {dtype} tensor")
        row, pos = varint.read(payload, 1, 4, f"{NAME} payload has a bad row length")
        if row > _MAX_BIT_ROW:
            raise CorruptChunkError(f"{NAME} payload has a row of {row:,} bits")
        buf = np.zeros(nbytes, dtype=np.uint8)
        coded_bits = np.frombuffer(payload, dtype=np.uint8)[pos:].copy()
        if _run_bits(True, buf, coded_bits, row) != len(coded_bits):
            raise CorruptChunkError(f"{NAME} payload of {len(coded_bits)} bytes did not decode to its end")
        return buf.tobytes()
    vals = np.zeros(nbytes // size, dtype=np.int64)
    coded = np.frombuffer(payload, dtype=np.uint8)[1:].copy()
    row, col = grid(shape, first)
    if mode == MODE_GAPS and row:
        raise CorruptChunkError(f"{NAME} payload codes gaps in a tensor of rows")
    used = _run(True, vals, coded, row, col, signed or mode == MODE_GAPS)
    if used != len(coded):  # a valid stream is read to its last byte, no further
        raise CorruptChunkError(f"{NAME} payload of {len(coded)} bytes decoded as {used}")
    if mode == MODE_GAPS:
        if len(vals) > 1 and (vals[1:] < 0).any():
            raise CorruptChunkError(f"{NAME} payload holds a negative gap")
        vals = np.cumsum(vals, dtype=np.int64)  # integer sums: exact, in order
    return _narrow(vals, dtype)


def _narrow(vals: np.ndarray, dtype: str) -> bytes:
    """Decoded int64 values as ``dtype``'s bytes; CorruptChunkError for a value the dtype cannot hold (uint64
    is held as its int64 pattern: every value fits)."""
    np_type = DTYPES[dtype][0]
    info = np.iinfo(np.dtype(np_type))
    if dtype != "U64" and ((vals < info.min).any() or (vals > info.max).any()):
        raise CorruptChunkError(f"{NAME} payload decodes values outside {dtype}")
    return vals.astype(np_type).tobytes()
