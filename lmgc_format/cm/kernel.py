"""The compiled coding loop of ``cm-fast-v1``: a binary context-mixing model and arithmetic coder.

One function, :func:`run`, both encodes and decodes a chunk (``decode`` says
which): the model is the same code on both sides, so the two cannot drift.
Everything is integer arithmetic on int64 values that cannot overflow
(hashes are masked to 32 bits before every multiply by a 30-bit constant),
so every machine, compiler target and thread count codes the same bits
(docs/DESIGN.md rule 6). numba compiles it; ``fastmath`` stays off (there is
no float in it anyway).

Per value (``group`` bytes, little-endian in the file), the bytes are coded
from the most significant (sign and exponent) down, each as eight binary
decisions along its bit tree (``node`` = 1, then ``2 * node + bit``). Each
decision of the top byte and of the next byte's first two bits (the
exponent's last bit, the mantissa's first) is predicted by seven adaptive
counts whose contexts depend on the byte's rank ``k`` (docs/FORMAT.md
"cm-fast-v1" has the table), mixed by a gated linear mixer in the logistic
domain (lpaq) and refined by an APM; the near-random bits below get one count.
A 32-bit carry-less binary arithmetic coder with 16-bit probabilities codes
them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INPUTS = 7  # adaptive counts per decision of the top two bytes (the mixer adds a bias input)
LITE_INPUTS = 1  # of the bits below: (rank, top byte) alone; more inputs only added noise (BENCHMARKS.md)
FULL_NODES = 4  # bits of the second byte that get every input: those at nodes 1 .. FULL_NODES - 1
TABLE_BITS = 18  # entries per count table: 2 ** TABLE_BITS
_MASK32 = 0xFFFFFFFF
_NONE = 256  # a neighbour byte that is not there
MIX_SHIFT = 16  # weights are Q16
FIT_MAX_ROW = 1 << 20  # the row x column fit runs on matrices of at most this many columns
# What ``params`` holds, by index (a procedure's values: codec.py, never changed once archives use them).
P_COUNT_LIMIT = 0  # adaptive counts slow down to 1 / (limit + 1.5), limit < 256
P_MIX_W0 = 1  # initial weight of every count input, Q16
P_MIX_LR = 2  # mixer step: weight += stretch * err12 * LR >> 14
P_APM_RATE = 3  # APM step 2 ** -rate
P_APM_SHARE = 4  # of 4: the APM's share of the final probability
# cm-fast-v2: the window table's column 14, where present, says how many of the second byte's bits the model
# codes in each window (2: a float's exponent's last bit and the mantissa's first); with fewer than 8, the bits
# below them and the bytes under the second are left to planes (cm/fast_v2.py). Absent (cm-fast-v1): every bit.
SECOND_BITS_COLUMN = 13
REPORT_CELLS = 10  # ``costs``: 8 byte ranks, the sign decision, the second byte's first decision
COST_SIGN = 8
COST_SECOND_FIRST = 9


@njit(inline="always")
def _hash(a: int, b: int) -> int:
    return ((a * 0x2C1B3C6D) ^ (b + 0x297A2D39) ^ (a >> 15)) & _MASK32


@njit(inline="always")
def _base(h: int) -> int:
    """A 256-aligned slot block of a count table: the byte's eight decisions stay in it."""
    return (h & ((1 << (TABLE_BITS - 8)) - 1)) << 8


@njit(inline="always")
def _squash(d: int, squash: np.ndarray) -> int:
    if d > 2047:
        d = 2047
    if d < -2047:
        d = -2047
    return squash[d + 2047]


@njit(nogil=True, cache=True)
def run(
    decode: bool,
    buf: np.ndarray,  # uint8: the chunk's bytes (encode: input; decode: filled here)
    payload: np.ndarray,  # uint8: decode: the coded bytes; encode: output buffer
    windows: np.ndarray,  # int64 (n, 13), or (n, 14) for cm-fast-v2: see codec.window_table
    squash: np.ndarray,
    stretch: np.ndarray,
    rate: np.ndarray,
    params: np.ndarray,  # int64: the procedure's parameters (P_* above)
    window_ends: np.ndarray,  # int64 (n,): filled with the payload length at the end of each window
    state: np.ndarray,  # int64: empty, or 3 cells: leave the coder open (see below)
    costs: np.ndarray,  # int64: empty, or REPORT_CELLS: where the bits went, Q16 (a report; codes nothing)
    cost_table: np.ndarray,  # int64 (4096,): -log2(i / 4096) in Q16, read only when ``costs`` has cells
) -> int:
    """Encode ``buf`` into ``payload`` (returns its length, -1 if it would not fit) or decode
    ``payload`` into ``buf`` (returns the number of payload bytes read).

    With an empty ``state`` the stream is the payload's alone and ends with lpaq's 4-byte flush
    (``cm-fast-v1``). With 3 cells the coder is left open for the caller to code more in the same stream
    (``cm-int-v2``: the digits, cm/binary.py): no flush, and ``state`` gets x1, x2 and (decoding) x.

    ``costs`` (REPORT_CELLS) adds up the ideal code length of every decision by the rank of its byte in the
    value (cells 0-7: 0 the top byte, 7 the eighth and below) and, apart, of the top byte's first decision
    (cell 8: the sign) and of the second byte's first (cell 9: a float's exponent's last bit), for reports of
    where the bits go (corpus/bench_corpus.py, scripts/exponent_share.py)."""
    count_limit = params[P_COUNT_LIMIT]
    mix_lr = params[P_MIX_LR]
    apm_rate = params[P_APM_RATE]
    apm_share = params[P_APM_SHARE]
    size = 1 << TABLE_BITS
    # Each slot's probability and count side by side (one cache line for both: 9 % faster than two arrays).
    pc = np.zeros((INPUTS, size, 2), dtype=np.uint16)
    pc[:, :, 0] = 32768
    nsets = 256 * 2 + 7 * 512
    weights = np.full((nsets, INPUTS + 1), params[P_MIX_W0], dtype=np.int64)
    weights[:, INPUTS] = 0
    # APM: 33 knots over stretch(p) per (rank, node) context, 16-bit probabilities.
    apm = np.empty((8 * 256, 33), dtype=np.int64)
    for c in range(8 * 256):
        for j in range(33):
            apm[c, j] = _squash((j - 16) * 128, squash) * 16
    max_row = 0
    for w in range(windows.shape[0]):
        if windows[w, 4] <= FIT_MAX_ROW and windows[w, 4] > max_row:
            max_row = windows[w, 4]
    col_vote = np.zeros(max_row + 1, dtype=np.int64)
    col_sum = np.zeros(max_row + 1, dtype=np.int64)
    col_n = np.zeros(max_row + 1, dtype=np.int64)
    cur_top = np.zeros(max_row + 1, dtype=np.int64)

    idx = np.zeros(INPUTS, dtype=np.int64)
    bases = np.zeros(INPUTS, dtype=np.int64)
    st = np.zeros(INPUTS + 1, dtype=np.int64)
    st[INPUTS] = 256

    report = costs.shape[0] >= REPORT_CELLS
    # Coder state.
    x1 = 0
    x2 = _MASK32
    x = 0
    pos = 0  # payload position
    plen = payload.shape[0]
    if decode:
        for _ in range(4):
            x = (x << 8) | (int(payload[pos]) if pos < plen else 0)
            pos += 1

    prev_top = _NONE
    second_bits = 8
    prev_top2 = _NONE
    fit_tensor = -1
    fit_next = -1
    cur_i = -1
    row_vote = 0
    dev_sum = 0
    dev_n = 0
    last_r = 0
    has_last_r = False
    j_lo = 0
    j_hi = -1

    for w in range(windows.shape[0]):
        begin = windows[w, 0]
        end = windows[w, 1]
        g = windows[w, 2]
        first = windows[w, 3]
        row = windows[w, 4]
        tensor = windows[w, 5]
        tlo = windows[w, 6]
        ref_base = windows[w, 7]
        ref_hi = windows[w, 8]
        ref_g = windows[w, 9]
        pred_start = windows[w, 10]
        pred_every = windows[w, 11]
        ref_lo = windows[w, 12]
        prev_second = second_bits
        second_bits = windows[w, SECOND_BITS_COLUMN] if windows.shape[1] > SECOND_BITS_COLUMN else 8
        fit = row > 0 and row <= FIT_MAX_ROW
        if fit and (tensor != fit_tensor or first != fit_next):
            # A new matrix (or one the chunk enters mid-way): its fits start empty.
            for j in range(row):
                col_vote[j] = 0
                col_sum[j] = 0
                col_n[j] = 0
            cur_i = -1
            j_lo = 0
            j_hi = -1
            row_vote = 0
            dev_sum = 0
            dev_n = 0
            has_last_r = False
            fit_tensor = tensor
        nvals = (end - begin) // g
        for v in range(nvals):
            gi = first + v
            off = begin + v * g
            stored = 0
            if pred_start >= 0 and gi >= pred_start:
                if pred_every == 0 or (gi - pred_start) % pred_every == 0:
                    stored = 1
            up = -1
            up2 = -1
            bias = _NONE
            sv = 3
            eg = 128
            j = 0
            if row > 0:
                if off - row * g >= tlo:
                    up = off - row * g
                if off - 2 * row * g >= tlo:
                    up2 = off - 2 * row * g
                if ref_base != -(1 << 62):
                    ro = ref_base + (gi // row) * ref_g + ref_g - 1
                    if ro >= ref_lo and ro < ref_hi:
                        bias = int(buf[ro])
            if fit:
                i = gi // row
                j = gi % row
                if i != cur_i:
                    if j_hi >= j_lo:  # finish the row: its signs vote, its exponents teach the columns
                        row_sign = 1 if row_vote >= 0 else -1
                        has_r = dev_n > 0
                        r = dev_sum // dev_n if has_r else 0
                        for jj in range(j_lo, j_hi + 1):
                            t = cur_top[jj]
                            e = t & 0x7F
                            if e == 0:
                                continue
                            col_vote[jj] += -row_sign if t & 0x80 else row_sign
                            if has_r or col_n[jj] == 0:
                                col_sum[jj] += 16 * e - r
                                col_n[jj] += 1
                        if has_r:
                            last_r = r
                            has_last_r = True
                    cur_i = i
                    j_lo = j
                    j_hi = j - 1
                    row_vote = 0
                    dev_sum = 0
                    dev_n = 0
                if col_vote[j] != 0 and row_vote != 0:
                    sv = 1 if (col_vote[j] > 0) != (row_vote > 0) else 0
                else:
                    sv = 2
                if col_n[j] > 0:
                    c = col_sum[j] // col_n[j]
                    if dev_n > 0:
                        eg = (dev_sum // dev_n + c + 8) >> 4
                    elif has_last_r:
                        eg = (last_r + c + 8) >> 4
                    else:
                        eg = (c + 8) >> 4
                    if eg < 0:
                        eg = 0
                    if eg > 127:
                        eg = 127
            u0 = int(buf[up + g - 1]) if up >= 0 else _NONE
            uu0 = int(buf[up2 + g - 1]) if up2 >= 0 else _NONE
            # (a window's first value may not look into a window whose second bytes are coded to another depth:
            # the decoder does not know that byte's low bits yet)
            has_prev = off - g >= 0 and (v > 0 or second_bits == prev_second)
            top = 0
            # cm-fast-v2 codes the top byte and the second byte's top ``second_bits`` bits, nothing below
            for k in range(g if second_bits == 8 or g < 2 else 2):
                nbits = second_bits if k == 1 else 8
                p_at = off + g - 1 - k
                kk = k if k < 7 else 7
                # The byte's contexts (docs/FORMAT.md "cm-fast-v1").
                if k == 0:
                    s8 = stored << 8
                    bases[0] = _base(_hash(1 + s8, 0))
                    bases[1] = _base(_hash(2 + s8, prev_top))
                    bases[2] = _base(_hash(3 + s8, prev_top * 512 + prev_top2))
                    bases[3] = _base(_hash(4 + s8, u0))
                    bases[4] = _base(_hash(5 + s8, u0 * 512 + uu0))
                    bases[5] = _base(_hash(6 + s8, bias * 4 + sv))
                    bases[6] = _base(_hash(7 + s8, sv * 256 + eg))
                    wset = s8
                    actx = 0
                else:
                    b_above = int(buf[p_at + 1])
                    pk = int(buf[p_at - g]) if has_prev else _NONE
                    uk = int(buf[up + g - 1 - k]) if up >= 0 else _NONE
                    if nbits < 8:  # only the bits this stream codes are known to the decoder here
                        pk = pk >> (8 - nbits) if pk != _NONE else _NONE
                        uk = uk >> (8 - nbits) if uk != _NONE else _NONE
                    h0 = 16 + kk * 16 + stored * 8
                    bases[0] = _base(_hash(h0, top))
                    bases[1] = _base(_hash(h0 + 2, pk * 512 + top))
                    bases[2] = _base(_hash(h0 + 3, uk * 512 + top))
                    if k == 1:  # the only byte below the top whose (first) bits use every input
                        bases[3] = _base(_hash(h0 + 1, b_above))
                        bases[4] = _base(_hash(h0 + 4, (sv * 256 + eg) * 256 + top))
                        bases[5] = _base(_hash(h0 + 5, pk))
                        bases[6] = _base(_hash(h0 + 6, uk * 512 + b_above))
                    wset = 512 + (kk - 1) * 512 + (1 if (top & 0x7F) == 0 else 0) * 256
                    actx = kk * 256
                node = 1
                cur = int(buf[p_at])
                for shift in range(7, 7 - nbits, -1):
                    # Past the top byte and the next one's first two bits (the exponent's last bit and the
                    # mantissa's first), bits are close to random: one count (rank, top byte) is all they repay.
                    nin = INPUTS if k == 0 or (k == 1 and node < FULL_NODES) else LITE_INPUTS
                    # Predict.
                    dot = 0
                    for m in range(nin):
                        ix = bases[m] + node
                        idx[m] = ix
                        s = int(stretch[int(pc[m, ix, 0]) >> 4])
                        st[m] = s
                        dot += s * weights[wset + node, m]
                    dot += 256 * weights[wset + node, INPUTS]
                    dot = dot >> MIX_SHIFT
                    if dot > 2047:
                        dot = 2047
                    if dot < -2047:
                        dot = -2047
                    pm = int(squash[dot + 2047])
                    # APM over the mixer's stretch, interpolated between two knots.
                    a = actx + node
                    z = dot + 2048
                    lo = z >> 7
                    fr = z & 127
                    if nin == INPUTS:
                        pa = (apm[a, lo] * (128 - fr) + apm[a, lo + 1] * fr) >> 7
                        p = (pm * 16 * (4 - apm_share) + apm_share * pa) >> 2
                    else:
                        p = pm * 16
                    if p < 32:
                        p = 32
                    if p > 65535 - 32:
                        p = 65535 - 32
                    # Code.
                    rng = x2 - x1
                    xmid = x1 + (rng >> 16) * p + (((rng & 0xFFFF) * p) >> 16)
                    if decode:
                        bit = 1 if x <= xmid else 0
                    else:
                        bit = (cur >> shift) & 1
                    if bit:
                        x2 = xmid
                    else:
                        x1 = xmid + 1
                    if report:
                        cost = cost_table[(p if bit else 65536 - p) >> 4]
                        costs[kk] += cost
                        if node == 1 and k < 2:
                            costs[COST_SIGN if k == 0 else COST_SECOND_FIRST] += cost
                    while ((x1 ^ x2) & 0xFF000000) == 0:
                        if decode:
                            x = ((x << 8) & _MASK32) | (int(payload[pos]) if pos < plen else 0)
                            pos += 1
                        else:
                            if pos >= plen:
                                return -1
                            payload[pos] = x2 >> 24
                            pos += 1
                        x1 = (x1 << 8) & _MASK32
                        x2 = ((x2 << 8) & _MASK32) | 255
                    # Learn.
                    err = ((bit << 12) - pm) * mix_lr
                    for m in range(nin):
                        weights[wset + node, m] += (st[m] * err) >> 14
                    weights[wset + node, INPUTS] += (256 * err) >> 14
                    for m in range(nin):
                        ix = idx[m]
                        n = int(pc[m, ix, 1])
                        pr = int(pc[m, ix, 0])
                        pr += (((bit << 16) - pr) * int(rate[n])) >> 16
                        if pr < 16:
                            pr = 16
                        if pr > 65520:
                            pr = 65520
                        pc[m, ix, 0] = pr
                        if n < count_limit:
                            pc[m, ix, 1] = n + 1
                    if nin == INPUTS:
                        target = bit << 16
                        apm[a, lo] += ((target - apm[a, lo]) * (128 - fr)) >> (apm_rate + 7)
                        apm[a, lo + 1] += ((target - apm[a, lo + 1]) * fr) >> (apm_rate + 7)
                    node = 2 * node + bit
                byte = (node - (1 << nbits)) << (8 - nbits)
                if decode:
                    buf[p_at] = byte
                if k == 0:
                    top = byte
            prev_top2 = prev_top
            prev_top = top
            if fit and stored == 0:
                cur_top[j] = top
                if j > j_hi:
                    j_hi = j
                e = top & 0x7F
                if e != 0:
                    if col_vote[j] != 0:
                        sgn = -1 if top & 0x80 else 1
                        row_vote += sgn if col_vote[j] > 0 else -sgn
                    if col_n[j] > 0:
                        dev_sum += 16 * e - col_sum[j] // col_n[j]
                        dev_n += 1
        if fit:
            fit_next = first + nvals
        window_ends[w] = pos
    if state.shape[0] >= 3:
        state[0] = x1
        state[1] = x2
        state[2] = x
        return pos
    if decode:
        return pos
    for _ in range(4):
        if pos >= plen:
            return -1
        payload[pos] = x1 >> 24
        pos += 1
        x1 = (x1 << 8) & _MASK32
    return pos
