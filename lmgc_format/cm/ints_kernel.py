"""The compiled coding loop of ``cm-ints-v1``: integer tensors (quantized values, index gaps) as decisions.

One function, :func:`run`, encodes and decodes (``decode`` says which), so the model cannot drift
between the two. Integer arithmetic only (docs/DESIGN.md rule 6), the same binary arithmetic coder,
counts, mixer and APM as ``cm-fast-v1`` (kernel.py), numba without fastmath.

A value ``v`` (int64) is coded as decisions, each a node of its own:

* node 0, **zero**: ``v == 0``;
* node 1, **sign** (signed tensors, ``v != 0``): ``v < 0``;
* the **magnitude** ``m`` (``v - 1`` for positive values, ``~v`` = ``-v - 1`` for negative ones, so every
  int64 maps without overflow) as Elias-gamma: its bit length ``e`` in unary, nodes 2 + i for
  "``e > i``" (i < 63), then the bits of ``m`` below its leading one, most significant first: the first
  two at node 72 + 2 * e + (0 or 1), the rest at node 200 + e with one count.

Contexts, per value (docs/FORMAT.md "cm-ints-v1" has the table): a token of the value to the left, of
the one before it and of the one a row up (zero, or sign and bit length), a running mean of recent
magnitudes, the row's and the column's mean magnitude so far (a quantized batch gradient keeps its
floats' rank-one structure: magnitudes are close to a row term times a column term) and, for the sign,
the column's and the row's sign votes.

The coder step, the mixer and the learning rule are written out in this loop and in bits_kernel.py, as in
kernel.py, not called from shared helpers: numba-inlined helpers (tuples of the coder's state in and out)
made this loop 35 % slower, measured side by side on a 1 MiB int8 chunk (2.0 against 1.3 MB/s).
"""

from __future__ import annotations

import numpy as np
from numba import njit

INPUTS = 7  # adaptive counts per full decision (the mixer adds a bias input)
VALUE_MATCH_BITS = 18  # the value match model's table: where each run of four values was last seen
TABLE_BITS = 18  # entries per count table
NODES = 264  # decision nodes: 0 zero, 1 sign, 2-64 unary, 72-199 first mantissa bits, 200-263 the rest
_MASK32 = 0xFFFFFFFF
MIX_SHIFT = 16
# What ``params`` holds (a procedure's values: ints_codec.py, never changed once archives use them).
P_COUNT_LIMIT = 0
P_MIX_W0 = 1
P_MIX_LR = 2
P_APM_RATE = 3
P_APM_SHARE = 4


@njit(inline="always")
def _hash(a: int, b: int) -> int:
    return ((a * 0x2C1B3C6D) ^ (b + 0x297A2D39) ^ (a >> 15)) & _MASK32


@njit(inline="always")
def _squash(d: int, squash: np.ndarray) -> int:
    if d > 2047:
        d = 2047
    if d < -2047:
        d = -2047
    return squash[d + 2047]


@njit(inline="always")
def _bits(m: int) -> int:
    """Bit length of 0 <= m < 2**63."""
    e = 0
    while m > 0:
        m >>= 1
        e += 1
    return e


@njit(inline="always")
def _token(v: int) -> int:
    """0 for zero, else 1 + 2 * min(bit length of the magnitude + 1, 15) + sign: at most 32."""
    if v == 0:
        return 0
    if v > 0:
        e = _bits(v - 1) + 1
        s = 0
    else:
        e = _bits(~v) + 1
        s = 1
    if e > 15:
        e = 15
    return 1 + 2 * e + s


@njit(inline="always")
def _size(v: int) -> int:
    """0 for zero, else the bit length of the magnitude + 1 (1..64)."""
    if v == 0:
        return 0
    return _bits(v - 1) + 1 if v > 0 else _bits(~v) + 1


@njit(inline="always")
def _magnitude(v: int) -> int:
    """m of a non-zero value: v - 1 for positive values, ~v = -v - 1 for negative ones."""
    return v - 1 if v > 0 else ~v


@njit(inline="always")
def _expect(have: bool, v: int, m: int, e: int, stage: int, step: int, got_e: int, prefix: int) -> int:
    """What value ``v`` (a neighbour; ``m`` its magnitude, ``e`` the bit length of ``m``) says the current
    decision is: 0 or 1, or 2 when it says nothing (no neighbour, or its path through the decisions has
    already parted from this value's)."""
    if not have:
        return 2
    if stage == 0:
        return 1 if v == 0 else 0
    if v == 0:
        return 2
    if stage == 1:
        return 1 if v < 0 else 0
    if stage == 2:
        return 1 if e > step else 0
    if e != got_e:
        return 2
    b = got_e - 2 - step
    if (m >> (b + 1)) != prefix:
        return 2
    return (m >> b) & 1


@njit(nogil=True, cache=True)
def run(
    decode: bool,
    vals: np.ndarray,  # int64 (n,): encode: the values; decode: filled here
    payload: np.ndarray,  # uint8: decode: the coded bytes; encode: output buffer
    row: int,  # values per row (0: no grid)
    col0: int,  # column of the first value
    signed: bool,
    squash: np.ndarray,
    stretch: np.ndarray,
    rate: np.ndarray,
    params: np.ndarray,
) -> int:
    """Encode ``vals`` into ``payload`` (returns its length, -1 if it would not fit) or decode ``payload``
    into ``vals`` (returns the payload bytes read)."""
    count_limit = params[P_COUNT_LIMIT]
    mix_lr = params[P_MIX_LR]
    apm_rate = params[P_APM_RATE]
    apm_share = params[P_APM_SHARE]
    size = 1 << TABLE_BITS
    # each slot's probability and count side by side, as kernel.py keeps them (one cache line for both)
    pc = np.zeros((INPUTS, size, 2), dtype=np.uint16)
    pc[:, :, 0] = 32768
    weights = np.full((NODES * 2, INPUTS + 1), params[P_MIX_W0], dtype=np.int64)
    weights[:, INPUTS] = 0
    apm = np.empty((NODES, 33), dtype=np.int64)
    for c in range(NODES):
        for j in range(33):
            apm[c, j] = _squash((j - 16) * 128, squash) * 16
    width = row if row > 0 else 1
    col_mag = np.zeros(width, dtype=np.int64)  # sum of sizes seen in each column (Q0), and how many
    col_n = np.zeros(width, dtype=np.int64)
    col_vote = np.zeros(width, dtype=np.int64)  # sum of signs seen in each column
    idx = np.zeros(INPUTS, dtype=np.int64)
    st = np.zeros(INPUTS + 1, dtype=np.int64)
    ctx = np.zeros(INPUTS, dtype=np.int64)
    hv = np.zeros(INPUTS, dtype=np.int64)

    x1 = 0
    x2 = _MASK32
    x = 0
    pos = 0
    plen = payload.shape[0]
    if decode:
        for _ in range(4):
            x = (x << 8) | (int(payload[pos]) if pos < plen else 0)
            pos += 1

    n = vals.shape[0]
    last_seen = np.zeros(1 << VALUE_MATCH_BITS, dtype=np.int64)  # 1 + the index after four values, or 0
    match_ptr = 0
    match_len = 0
    ema = 0  # running mean of sizes, Q4
    row_mag = 0
    row_n = 0
    row_vote = 0
    row_agree = 0  # this row's signs against the row above's: +1 for each equal, -1 for each opposite
    j = col0 % width
    for i in range(n):
        if row > 0 and j == 0:
            row_mag = 0
            row_n = 0
            row_vote = 0
            row_agree = 0
        left = vals[i - 1] if i >= 1 else 0
        left2 = vals[i - 2] if i >= 2 else 0
        up_t = 33
        up = 0
        if row > 0 and i >= row:
            up = vals[i - row]
            up_t = _token(up)
        l_t = _token(left) if i >= 1 else 33
        l2_t = _token(left2) if i >= 2 else 33
        ema_q = ema >> 3  # 0..~128 in halves of a size
        if ema_q > 40:
            ema_q = 40
        ra = (row_mag * 4) // row_n if row_n > 0 else 255
        if ra > 64 and ra != 255:
            ra = 64
        ca = (col_mag[j] * 4) // col_n[j] if row > 0 and col_n[j] > 0 else 255
        if ca > 64 and ca != 255:
            ca = 64
        cv = col_vote[j] if row > 0 else 0
        if cv != 0 and row_vote != 0:
            sv = 1 if (cv > 0) != (row_vote > 0) else 0
        else:
            sv = 2
        cs = 0 if cv == 0 else (1 if cv > 0 else 2)
        ctx[0] = l_t
        ctx[1] = l_t * 64 + l2_t
        ctx[2] = up_t * 64 + l_t
        ctx[3] = ema_q * 64 + l_t
        ctx[4] = ra * 256 + ca
        # The sign a row up, flipped when this row has so far disagreed with the row above more than agreed.
        ua = 2
        if row > 0 and i >= row and up != 0 and row_agree != 0:
            ua = (1 if up < 0 else 0) ^ (1 if row_agree < 0 else 0)
        sign_ctx = ((sv * 3 + cs) * 3 + ua) * 64 + up_t
        for k in range(5):  # the per-value contexts hashed once; each decision adds its node
            hv[k] = _hash(k * 1024, ctx[k])
        has_up = row > 0 and i >= row
        has_left = i >= 1
        up_m = _magnitude(up) if up != 0 else 0
        up_e = _bits(up_m)
        left_m = _magnitude(left) if left != 0 else 0
        left_e = _bits(left_m)
        guess = vals[match_ptr] if match_len > 0 else 0
        guess_m = _magnitude(guess) if guess != 0 else 0
        guess_e = _bits(guess_m)

        v = vals[i] if not decode else 0
        # The decisions of this value, in order: zero, sign, unary, mantissa.
        if not decode:
            if v == 0:
                m = 0
                neg = 0
            elif v > 0:
                m = v - 1
                neg = 0
            else:
                m = ~v
                neg = 1
            e = _bits(m)
        else:
            m = 0
            neg = 0
            e = 0
        stage = 0  # 0 zero, 1 sign, 2 unary, 3 mantissa, 4 done
        step = 0  # unary step or mantissa bit position
        got_e = 0
        is_zero = 0
        while stage < 4:
            if stage == 0:
                node = 0
                bit = 1 if (not decode and v == 0) else 0
            elif stage == 1:
                node = 1
                bit = neg
            elif stage == 2:
                node = 2 + step
                bit = 1 if e > step else 0
            else:
                b = got_e - 2 - step  # the bit of m below its leading one
                if step < 2:
                    node = 72 + 2 * got_e + step
                else:
                    node = 200 + got_e
                bit = (m >> b) & 1
            # What the value a row up and the one to the left say of this decision (exact repeats: rows of a
            # rank-one gradient quantized per row are often equal up to sign).
            if stage == 3:
                prefix = (m >> (got_e - 1 - step)) if not decode else m
            else:
                prefix = 0
            ex = _expect(has_up, up, up_m, up_e, stage, step, got_e, prefix) * 3
            ex += _expect(has_left, left, left_m, left_e, stage, step, got_e, prefix)
            ctx[5] = sign_ctx if stage == 1 else ex * 64 + ema_q
            em = _expect(match_len > 0, guess, guess_m, guess_e, stage, step, got_e, prefix)
            ctx[6] = em * 16 + (match_len if match_len < 15 else 15)
            full = node < 200
            nin = INPUTS if full else 1
            wset = node * 2 + (1 if l_t == 0 else 0)
            dot = 0
            for k in range(nin):
                if full:
                    hk = hv[k] if k < 5 else _hash(k * 1024, ctx[k])
                else:
                    hk = _hash(k * 1024 + 512, step * 16 + ex)
                ix = _hash(hk, node) & ((1 << TABLE_BITS) - 1)
                idx[k] = ix
                s = int(stretch[int(pc[k, ix, 0]) >> 4])
                st[k] = s
                dot += s * weights[wset, k]
            dot += 256 * weights[wset, INPUTS]
            dot = dot >> MIX_SHIFT
            if dot > 2047:
                dot = 2047
            if dot < -2047:
                dot = -2047
            pm = int(squash[dot + 2047])
            z = dot + 2048
            lo = z >> 7
            fr = z & 127
            if full:
                pa = (apm[node, lo] * (128 - fr) + apm[node, lo + 1] * fr) >> 7
                p = (pm * 16 * (4 - apm_share) + apm_share * pa) >> 2
            else:
                p = pm * 16
            if p < 32:
                p = 32
            if p > 65535 - 32:
                p = 65535 - 32
            rng = x2 - x1
            xmid = x1 + (rng >> 16) * p + (((rng & 0xFFFF) * p) >> 16)
            if decode:
                bit = 1 if x <= xmid else 0
            if bit:
                x2 = xmid
            else:
                x1 = xmid + 1
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
            err = ((bit << 12) - pm) * mix_lr
            for k in range(nin):
                weights[wset, k] += (st[k] * err) >> 14
            weights[wset, INPUTS] += (256 * err) >> 14
            for k in range(nin):
                ix = idx[k]
                cnt = int(pc[k, ix, 1])
                pr = int(pc[k, ix, 0])
                pr += (((bit << 16) - pr) * int(rate[cnt])) >> 16
                if pr < 16:
                    pr = 16
                if pr > 65520:
                    pr = 65520
                pc[k, ix, 0] = pr
                if cnt < count_limit:
                    pc[k, ix, 1] = cnt + 1
            if full:
                target = bit << 16
                apm[node, lo] += ((target - apm[node, lo]) * (128 - fr)) >> (apm_rate + 7)
                apm[node, lo + 1] += ((target - apm[node, lo + 1]) * fr) >> (apm_rate + 7)
            # Next decision.
            if stage == 0:
                is_zero = bit
                if bit == 1:
                    stage = 4
                else:
                    stage = 1 if signed else 2
            elif stage == 1:
                neg = bit
                stage = 2
            elif stage == 2:
                if bit == 1:
                    step += 1
                    if step == 63:
                        got_e = 63
                        stage = 3
                        step = 0
                else:
                    got_e = step
                    stage = 3
                    step = 0
                if stage == 3:
                    if got_e < 2:
                        m = got_e  # e = 0: m = 0; e = 1: m = 1
                        stage = 4
                    elif decode:
                        m = 1
            else:
                if decode:
                    m = (m << 1) | bit
                step += 1
                if step == got_e - 1:
                    stage = 4
        if decode:
            v = 0 if is_zero else (m + 1 if neg == 0 else ~m)
            vals[i] = v
        # The value match model: follow a match while it predicts; look one up by the last four values.
        if match_len > 0:
            if vals[match_ptr] == v:
                match_len += 1
                match_ptr += 1
            else:
                match_len = 0
        if i >= 3:
            h = _hash(
                _hash(_hash(vals[i] & _MASK32, vals[i - 1] & _MASK32), vals[i - 2] & _MASK32), vals[i - 3] & _MASK32
            )
            h &= (1 << VALUE_MATCH_BITS) - 1
            if match_len == 0 and last_seen[h] > 0:
                match_ptr = last_seen[h] - 1
                match_len = 1
            last_seen[h] = i + 2
        sz = _size(v)
        ema += (sz * 16 - ema) >> 3
        if row > 0:
            row_mag += sz
            row_n += 1
            col_mag[j] += sz
            col_n[j] += 1
            if v != 0:
                sgn = 1 if v > 0 else -1
                if i >= row and up != 0:
                    row_agree += 1 if (up > 0) == (v > 0) else -1
                col_vote[j] += sgn
                if cv != 0:
                    row_vote += sgn if cv > 0 else -sgn
            j += 1
            if j == row:
                j = 0
    if decode:
        return pos
    for _ in range(4):
        if pos >= plen:
            return -1
        payload[pos] = x1 >> 24
        pos += 1
        x1 = (x1 << 8) & _MASK32
    return pos
