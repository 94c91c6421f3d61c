"""One plane of small symbols coded by rANS with static tables (rans_kernel.py) or stored: how quick-v1 codes
all of a value's planes and cm-fast-v2 the bits under its context-mixing stream (quick_codec.py,
fast_v2.py; docs/FORMAT.md "How a quick-level chunk is coded").

A coded plane is its mode byte (the context kind it is coded under), its tables (rans_kernel.write_table),
the lengths in 16-bit words of its two halves' streams (LEB128 varints) and their words (little-endian);
an 8-bit plane may instead be stored: mode ``STORED``, then its bytes. The encoder measures each choice's
cost from the plane's histograms, tables included, with :func:`bit_cost`, and keeps the cheapest.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np

from lmgc_format.cm import rans_kernel as rk
from lmgc_format.cm import varint
from lmgc_format.errors import CorruptChunkError

STORED = 3
_MAX_WORDS_BYTES = 5  # a stream of up to 2**35 words: past any chunk


@functools.cache
def bit_cost() -> np.ndarray:
    """256 x (12 - log2 f) for f in 0..4096, rounded (0 at f = 0): what a symbol of frequency f costs, for
    the encoder's choices. Pinned by its SHA-256 (tests/test_quick_codec.py): the choices change coded bits."""
    table = [0] + [round(256 * (rk.PROB_BITS - math.log2(f))) for f in range(1, rk.PROB_SCALE + 1)]
    return np.array(table, dtype=np.int64)


def table_digest() -> str:
    return hashlib.sha256(bit_cost().tobytes()).hexdigest()


def top_of(field0: np.ndarray, width: int) -> int:
    """A run's ``top`` exponent, what the exponent contexts count down from: the largest of its ``width``-bit
    exponents below all ones (infinities and NaNs), 0 if none."""
    below = field0[field0 < (1 << width) - 1]
    return int(below.max()) if below.size else 0


def encode_plane(
    sym: np.ndarray,
    width: int,
    kinds: tuple[int, ...],
    field0: np.ndarray,
    top: int,
    known: dict[int, np.ndarray],
    coded_share: float,
) -> list[bytes]:
    """The plane ``sym`` (``width``-bit symbols) coded under the cheapest of ``kinds``, or stored (8-bit
    planes) where coding would not bring it under ``coded_share`` of its bytes. ``known``: each kind's
    contexts already computed for this run (a kind's contexts depend on the plane only for the history,
    which the exponent plane alone takes), filled in here."""
    n = len(sym)
    costs = bit_cost()
    best: tuple[int, int, np.ndarray, bytes, np.ndarray] | None = None
    for kind in kinds:
        if kind not in known:
            known[kind] = np.empty(n, dtype=np.uint8)
            rk.contexts(kind, sym, field0, top, known[kind])
        ctx = known[kind]
        counts = np.zeros((rk.BINS[kind], 256), dtype=np.int64)
        rk.histogram(sym, ctx, counts)
        freqs = np.zeros_like(counts)
        rk.normalize(counts, freqs)
        rk.flatten(counts, freqs, width, costs)
        written = np.empty(counts.shape[0] * 520 + 8, dtype=np.uint8)
        length = rk.write_table(freqs, width, written, 0)
        bits = rk.cost(counts, freqs, costs) + (length + 4) * 8 * 256
        if best is None or bits < best[0]:
            best = (bits, kind, freqs, written[:length].tobytes(), ctx)
    assert best is not None
    bits, kind, freqs, table, ctx = best
    if width == 8 and bits >= n * 8 * 256 * coded_share:
        return [bytes([STORED]), sym.tobytes()]
    out = [bytes([kind]), table]
    streams = []
    half = (n + 1) // 2
    for lo, hi in ((0, half), (half, n)):
        words = np.empty(hi - lo + 2, dtype=np.uint16)
        start = rk.encode(sym[lo:hi], ctx[lo:hi], freqs, words)
        streams.append(words[start:])
        out.append(varint.write(len(words) - start))
    out += [stream.astype("<u2").tobytes() for stream in streams]
    return out


def decode_plane(
    payload: bytes,
    pos: int,
    width: int,
    kinds: tuple[int, ...],
    field0: np.ndarray,
    top: int,
    out: np.ndarray,
    what: str,
    modes: list[int] | None = None,
) -> int:
    """Inverse of :func:`encode_plane` from ``payload[pos:]`` into ``out`` (uint8, one symbol a value): where
    the plane ends. ``what`` names the plane in errors (CorruptChunkError for anything the encoder could not
    have written); its mode is appended to ``modes`` when given."""
    data = np.frombuffer(payload, dtype=np.uint8)
    n = out.shape[0]
    if pos >= len(data):
        raise CorruptChunkError(f"payload ends before {what}")
    mode = int(data[pos])
    pos += 1
    if modes is not None:
        modes.append(mode)
    if mode == STORED and width == 8:
        if pos + n > len(data):
            raise CorruptChunkError(f"payload ends inside {what}")
        out[:] = data[pos : pos + n]
        return pos + n
    if mode not in kinds:
        raise CorruptChunkError(f"{what} has mode {mode}, not one its dtype takes")
    freqs = np.zeros((rk.BINS[mode], 256), dtype=np.int64)
    pos = rk.read_table(data, pos, freqs, width)
    if pos < 0:
        raise CorruptChunkError(f"{what} has a malformed frequency table")
    slots = np.empty((rk.BINS[mode], rk.PROB_SCALE), dtype=np.uint32)
    if not rk.decode_tables(freqs, slots):
        raise CorruptChunkError(f"{what}'s frequencies do not sum to {rk.PROB_SCALE}")
    counts = []
    for _ in range(2):
        count, pos = varint.read(payload, pos, _MAX_WORDS_BYTES, f"{what}'s stream length runs past its limit")
        counts.append(count)
    if pos + 2 * sum(counts) > len(data):
        raise CorruptChunkError(f"payload ends inside {what}'s streams")
    streams = []
    for count in counts:
        streams.append(np.frombuffer(payload, dtype="<u2", count=count, offset=pos).astype(np.uint16))
        pos += 2 * count
    if not rk.decode(streams[0], streams[1], mode, top, field0, slots, out):
        raise CorruptChunkError(f"{what}'s stream is damaged")
    return pos
