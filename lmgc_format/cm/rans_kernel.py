"""The quick level's coder (``quick-v1``, quick_codec.py): rANS with static tables, compiled with numba.

One stream codes one *plane*: a sequence of small symbols (below 256), each under a context chosen by the
plane's kind, with one frequency table per context (12-bit precision, every used context's frequencies sum
to 4096). Integer arithmetic only: the state is 31 bits in an int64 (lower bound 2**15), the stream is
16-bit words, renormalised one word at a time (ryg_rans' "word" variant; its encoder divides by
multiplying with a reciprocal, exact below 2**31). The encoder starts from the state 2**15 and codes
backwards; the decoder reads forwards and must end in that state, having read every word:
a stream that does not is refused.

Context kinds (what a symbol's context is; both sides derive it from symbols already known):

* ``KIND_ORDER0``: one context;
* ``KIND_HISTORY`` (the exponent plane): the mean of the plane's four previous symbols (0 before the
  first), as a distance below the chunk's ``top`` exponent, ``HISTORY_BINS`` bins, the last one for a mean
  of 0 (zeros, subnormals);
* ``KIND_EXPONENT`` (the planes under it): the same value's exponent as a distance below ``top``,
  ``EXPONENT_BINS`` bins, the last one for exponent 0;
* ``KIND_WIDE`` (cm-fast-v2's planes, fast_v2.py): the same, in ``WIDE_BINS`` bins: a weight update's or
  an fp16 gradient's low mantissa bits depend on exponents further below ``top`` than eight bins tell apart.
  (Its mode byte is 4: 3 is planes.py's "stored".)

Every read is bounds-checked: a crafted stream gives a negative result, never a fault.
"""

from __future__ import annotations

import numba as nb
import numpy as np

PROB_BITS = 12
PROB_SCALE = 1 << PROB_BITS
RANS_L = 1 << 15  # the state stays below 2**31, where the encoder's reciprocals divide exactly
KIND_ORDER0, KIND_HISTORY, KIND_EXPONENT, KIND_WIDE = 0, 1, 2, 4
HISTORY_BINS = 24
EXPONENT_BINS = 8
WIDE_BINS = 24
BINS = {KIND_ORDER0: 1, KIND_HISTORY: HISTORY_BINS, KIND_EXPONENT: EXPONENT_BINS, KIND_WIDE: WIDE_BINS}  # contexts


@nb.njit(cache=True, nogil=True)
def _history_bins(top: int) -> np.ndarray:
    """The history context of each sum of the four previous exponents (0..1020)."""
    bins = np.empty(1021, dtype=np.int64)
    for total in range(1021):
        mean = total >> 2
        bins[total] = HISTORY_BINS - 1 if mean == 0 else min(max(top - mean, 0), HISTORY_BINS - 2)
    return bins


@nb.njit(cache=True, nogil=True)
def _exponent_bin(e: int, top: int, nbins: int) -> int:
    if e == 0:
        return nbins - 1
    return min(max(top - e, 0), nbins - 2)


@nb.njit(cache=True, nogil=True)
def _context(kind: int, i: int, field0: np.ndarray, top: int, bins: np.ndarray, history: int) -> int:
    """Symbol ``i``'s context: ``history`` is the sum of the four symbols before it in its half."""
    if kind == KIND_ORDER0:
        return 0
    if kind == KIND_HISTORY:
        return bins[history]
    return _exponent_bin(int(field0[i]), top, WIDE_BINS if kind == KIND_WIDE else EXPONENT_BINS)


@nb.njit(cache=True, nogil=True)
def contexts(kind: int, syms: np.ndarray, field0: np.ndarray, top: int, out: np.ndarray) -> None:
    """Each symbol's context under ``kind`` (the encoder's view: every symbol known), by the rule the decoder
    follows (:func:`_context`); the history starts again at the plane's second half, its own stream."""
    n = syms.shape[0]
    bins = _history_bins(top)
    half = (n + 1) // 2
    hist = total = 0  # the four previous symbols, 10 bits each (the newest lowest), and their sum
    for i in range(n):
        if i == half:
            hist = total = 0
        out[i] = _context(kind, i, field0, top, bins, total)
        sym = int(syms[i])
        total += sym - (hist >> 30)
        hist = ((hist << 10) & 0xFFFFFFFFFF) | sym


@nb.njit(cache=True, nogil=True)
def histogram(syms: np.ndarray, ctx: np.ndarray, counts: np.ndarray) -> None:
    for i in range(syms.shape[0]):
        counts[ctx[i], syms[i]] += 1


@nb.njit(cache=True, nogil=True)
def normalize(counts: np.ndarray, freqs: np.ndarray) -> None:
    """Frequencies summing to PROB_SCALE per used context (0 for unused ones), every seen symbol >= 1:
    each count scaled down (floor, at least 1), the shortfall given to the most frequent symbol (the
    first of equals), an excess taken one at a time from the largest frequency (the first of equals)."""
    nctx, alphabet = counts.shape
    for c in range(nctx):
        total = 0
        for s in range(alphabet):
            total += counts[c, s]
        for s in range(alphabet):
            freqs[c, s] = 0
        if total == 0:
            continue
        used = 0
        best = 0
        best_s = 0
        for s in range(alphabet):
            k = counts[c, s]
            if k > 0:
                f = k * PROB_SCALE // total
                if f < 1:
                    f = 1
                freqs[c, s] = f
                used += f
                if k > best:
                    best = k
                    best_s = s
        if used < PROB_SCALE:
            freqs[c, best_s] += PROB_SCALE - used
        while used > PROB_SCALE:
            top_s = 0
            for s in range(alphabet):
                if freqs[c, s] > freqs[c, top_s]:
                    top_s = s
            freqs[c, top_s] -= 1
            used -= 1


@nb.njit(cache=True, nogil=True)
def cost(counts: np.ndarray, freqs: np.ndarray, bit_cost: np.ndarray) -> int:
    """Bits x 256 the symbols cost under ``freqs`` (``bit_cost[f]``: 256 x (12 - log2 f), a pinned table)."""
    total = 0
    nctx, alphabet = counts.shape
    for c in range(nctx):
        for s in range(alphabet):
            if counts[c, s]:
                total += counts[c, s] * bit_cost[freqs[c, s]]
    return total


@nb.njit(cache=True, nogil=True)
def encode(syms: np.ndarray, ctx: np.ndarray, freqs: np.ndarray, out: np.ndarray) -> int:
    """Code ``syms`` backwards into the end of ``out`` (uint16, room for len(syms) + 2 words: a symbol
    emits at most one); returns where the stream starts in ``out``. x // f is computed as ryg_rans does,
    (x * rcp) >> (32 + shift) with rcp = ceil(2**(31 + shift) / f), shift = ceil(log2 f) - 1: exact for
    x < 2**31 (f = 1: rcp = 2**32 - 1, shift 0, and a bias of PROB_SCALE - 1 makes up the quotient's 1)."""
    nctx, alphabet = freqs.shape
    bias = np.zeros((nctx, alphabet), dtype=np.int64)
    rcp = np.zeros((nctx, alphabet), dtype=np.uint64)
    shift = np.zeros((nctx, alphabet), dtype=np.uint64)
    for c in range(nctx):
        run = 0
        for s in range(alphabet):
            f = freqs[c, s]
            if f == 1:
                rcp[c, s] = np.uint64(0xFFFFFFFF)
                bias[c, s] = run + PROB_SCALE - 1
            elif f > 1:
                b = 0
                while f > (1 << b):
                    b += 1
                rcp[c, s] = np.uint64(((1 << (b + 31)) + f - 1) // f)
                shift[c, s] = np.uint64(b - 1)
                bias[c, s] = run
            run += f
    pos = out.shape[0]
    x = np.int64(RANS_L)
    bound = 31 - PROB_BITS  # x must stay below f << bound before coding (state below 2**31 after it)
    for i in range(syms.shape[0] - 1, -1, -1):
        c = ctx[i]
        s = syms[i]
        f = freqs[c, s]
        if x >= f << bound:
            pos -= 1
            out[pos] = x & 0xFFFF
            x >>= 16
        q = np.int64(((np.uint64(x) * rcp[c, s]) >> np.uint64(32)) >> shift[c, s])
        x = x + bias[c, s] + q * (PROB_SCALE - f)
    out[pos - 1] = x & 0xFFFF
    out[pos - 2] = x >> 16
    return pos - 2


@nb.njit(cache=True, nogil=True)
def decode_tables(freqs: np.ndarray, slots: np.ndarray) -> bool:
    """The decoder's table, one entry a slot: symbol | (slot - its cumulative frequency) << 8 |
    (frequency - 1) << 20 (0xFFFFFFFF in unused contexts); False when a used context's frequencies do not
    sum to PROB_SCALE."""
    nctx, alphabet = freqs.shape
    for c in range(nctx):
        run = 0
        for s in range(alphabet):
            f = freqs[c, s]
            if run + f > PROB_SCALE:
                return False
            for k in range(run, run + f):
                slots[c, k] = s | ((k - run) << 8) | ((f - 1) << 20)
            run += f
        if run == 0:
            for k in range(PROB_SCALE):
                slots[c, k] = 0xFFFFFFFF
        elif run != PROB_SCALE:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def decode(
    words_a: np.ndarray, words_b: np.ndarray, kind: int, top: int, field0: np.ndarray, slots: np.ndarray,
    out: np.ndarray,
) -> bool:  # fmt: skip
    """Decode a plane of ``out.shape[0]`` symbols coded as two halves (the first ``(n + 1) // 2`` symbols in
    ``words_a``, the rest in ``words_b``), one symbol of each in turn: two independent chains the CPU runs
    side by side. False where a stream is not one this coder wrote (a symbol in an unused context, words
    missing or left over, a wrong end state)."""
    n = out.shape[0]
    half = (n + 1) // 2
    if words_a.shape[0] < 2 or words_b.shape[0] < 2:
        return False
    xa = (int(words_a[0]) << 16) | np.int64(words_a[1])
    xb = (int(words_b[0]) << 16) | np.int64(words_b[1])
    if xa >= 1 << 31 or xb >= 1 << 31:
        return False
    pa = pb = 2
    mask = PROB_SCALE - 1
    bins = _history_bins(top)
    # The two lanes are written out (not a loop over lanes, not a helper): numba keeps both states in
    # registers only so, and the lanes' independent chains are what make decoding fast.
    ha = hb = 0  # the four previous symbols, 10 bits each (the newest lowest), and their sum
    sa = sb = 0
    for k in range(half):
        i = k
        entry = int(slots[_context(kind, i, field0, top, bins, sa), xa & mask])
        if entry == 0xFFFFFFFF:
            return False
        sym = entry & 0xFF
        out[i] = sym
        sa += sym - (ha >> 30)
        ha = ((ha << 10) & 0xFFFFFFFFFF) | sym
        xa = ((entry >> 20) + 1) * (xa >> PROB_BITS) + ((entry >> 8) & mask)
        if xa < RANS_L:
            if pa >= words_a.shape[0]:
                return False
            xa = (xa << 16) | int(words_a[pa])
            pa += 1
        i = half + k
        if i < n:
            entry = int(slots[_context(kind, i, field0, top, bins, sb), xb & mask])
            if entry == 0xFFFFFFFF:
                return False
            sym = entry & 0xFF
            out[i] = sym
            sb += sym - (hb >> 30)
            hb = ((hb << 10) & 0xFFFFFFFFFF) | sym
            xb = ((entry >> 20) + 1) * (xb >> PROB_BITS) + ((entry >> 8) & mask)
            if xb < RANS_L:
                if pb >= words_b.shape[0]:
                    return False
                xb = (xb << 16) | int(words_b[pb])
                pb += 1
    return xa == RANS_L and xb == RANS_L and pa == words_a.shape[0] and pb == words_b.shape[0]


@nb.njit(cache=True, nogil=True)
def _put(out: np.ndarray, pos: int, n: int) -> int:
    while n >= 0x80:
        out[pos] = (n & 0x7F) | 0x80
        pos += 1
        n >>= 7
    out[pos] = n
    return pos + 1


@nb.njit(cache=True, nogil=True)
def _varint_bytes(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


@nb.njit(cache=True, nogil=True)
def _uniform(freqs: np.ndarray, c: int, width: int) -> bool:
    """Whether context ``c`` gives every symbol below 2**width the same frequency (and none above)."""
    u = PROB_SCALE >> width
    for s in range(freqs.shape[1]):
        if freqs[c, s] != (u if s < (1 << width) else 0):
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _span(freqs: np.ndarray, c: int) -> tuple[int, int]:
    lo = -1
    hi = -1
    for s in range(freqs.shape[1]):
        if freqs[c, s]:
            if lo < 0:
                lo = s
            hi = s
    return lo, hi


@nb.njit(cache=True, nogil=True)
def flatten(counts: np.ndarray, freqs: np.ndarray, width: int, bit_cost: np.ndarray) -> None:
    """Give the uniform frequencies (``width`` bits a symbol, one table byte) to every context they make
    cheaper, table included: a near-uniform context's table would cost more than its symbols save (a
    mantissa byte's 256 frequencies on a small chunk)."""
    u = PROB_SCALE >> width
    for c in range(counts.shape[0]):
        total = 0
        coded = 0
        for s in range(counts.shape[1]):
            if counts[c, s]:
                total += counts[c, s]
                coded += counts[c, s] * bit_cost[freqs[c, s]]
        if total == 0:
            continue
        lo, hi = _span(freqs, c)
        table = _varint_bytes(hi - lo + 2) + _varint_bytes(lo)
        for s in range(lo, hi + 1):
            table += _varint_bytes(freqs[c, s])
        if total * width * 256 + 8 * 256 <= coded + table * 8 * 256:
            for s in range(counts.shape[1]):
                freqs[c, s] = u if s < (1 << width) else 0


@nb.njit(cache=True, nogil=True)
def write_table(freqs: np.ndarray, width: int, out: np.ndarray, pos: int) -> int:
    """Each context's frequencies as LEB128 varints: 0 for an unused context, 1 for the uniform one
    (:func:`flatten`), else the span from its first to its last used symbol plus 1, the first symbol and
    the span's frequencies (0 for an unused symbol). ``out`` has room for 4 + 2 x alphabet bytes a
    context; returns the position after the table."""
    for c in range(freqs.shape[0]):
        lo, hi = _span(freqs, c)
        if lo < 0:
            pos = _put(out, pos, 0)
        elif _uniform(freqs, c, width):
            pos = _put(out, pos, 1)
        else:
            pos = _put(out, pos, hi - lo + 2)
            pos = _put(out, pos, lo)
            for s in range(lo, hi + 1):
                pos = _put(out, pos, freqs[c, s])
    return pos


@nb.njit(cache=True, nogil=True)
def _get(data: np.ndarray, pos: int) -> tuple[int, int]:
    """A varint of at most 2 bytes (below 2**14: every number a table holds) and the position after it; -1
    as the position where it runs longer, past the end, or is not in its shortest form."""
    n = 0
    for k in range(2):
        if pos >= data.shape[0]:
            return 0, -1
        b = int(data[pos])
        pos += 1
        n |= (b & 0x7F) << (7 * k)
        if not b & 0x80:
            if k and b == 0:  # a second byte of 0: not the shortest form, which write_table writes
                return 0, -1
            return n, pos
    return 0, -1


@nb.njit(cache=True, nogil=True)
def read_table(data: np.ndarray, pos: int, freqs: np.ndarray, width: int) -> int:
    """Inverse of :func:`write_table` into ``freqs`` (zeroed by the caller); the position after the table,
    or -1 where it is not what :func:`write_table` writes (spans past the symbols of ``width`` bits,
    frequencies above PROB_SCALE, a span that starts or ends on an unused symbol, a uniform context
    written out)."""
    alphabet = 1 << width
    for c in range(freqs.shape[0]):
        code, pos = _get(data, pos)
        if pos < 0:
            return -1
        if code == 0:
            continue
        if code == 1:
            for s in range(alphabet):
                freqs[c, s] = PROB_SCALE >> width
            continue
        span = code - 1
        lo, pos = _get(data, pos)
        if pos < 0 or lo + span > alphabet:
            return -1
        for s in range(lo, lo + span):
            f, pos = _get(data, pos)
            if pos < 0 or f > PROB_SCALE:
                return -1
            freqs[c, s] = f
        if freqs[c, lo] == 0 or freqs[c, lo + span - 1] == 0 or _uniform(freqs, c, width):
            return -1
    return pos
