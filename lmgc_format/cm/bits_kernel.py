"""The compiled coding loop of ``cm-ints-v1``'s mode 2: packed bits (signSGD's ``np.packbits`` of the signs),
one decision a bit, with ints_kernel.py's coder, counts, mixer and APM (docs/FORMAT.md "How an integer
chunk is coded"). Integer arithmetic only, numba without fastmath."""

from __future__ import annotations

import numpy as np
from numba import njit

from lmgc_format.cm.ints_kernel import (
    _MASK32,
    MIX_SHIFT,
    P_APM_RATE,
    P_APM_SHARE,
    P_COUNT_LIMIT,
    P_MIX_LR,
    P_MIX_W0,
    TABLE_BITS,
    _hash,
    _squash,
)

BIT_INPUTS = 7  # adaptive counts per bit of a packed-bits chunk
MATCH_BITS = 20  # the match model's table of where each 32-bit history last ended
MATCH_MIN = 32  # history bits a match is looked up by


@njit(inline="always")
def _conf(v: int) -> int:
    """|v| in 5 classes: 0, 1, 2-3, 4-15, 16 and more."""
    a = v if v >= 0 else -v
    if a < 2:
        return a
    if a < 4:
        return 2
    return 3 if a < 16 else 4


@njit(nogil=True, cache=True)
def run_bits(
    decode: bool,
    buf: np.ndarray,  # uint8: the chunk's bytes (encode: input; decode: filled here)
    payload: np.ndarray,
    row: int,  # bits per row (0: no grid)
    squash: np.ndarray,
    stretch: np.ndarray,
    rate: np.ndarray,
    params: np.ndarray,
) -> int:
    """Packed bits (``np.packbits`` order: a byte's first bit is its most significant), one decision a bit.

    Contexts: the bits to the left, the bits a row up (``row`` bits back) and, for the signs of a batch
    gradient (close to a row sign times a column sign), the column's vote (the sum of +1 for each 1 and -1
    for each 0 seen in that column) and the row's agreement with the column votes so far."""
    count_limit = params[P_COUNT_LIMIT]
    mix_lr = params[P_MIX_LR]
    apm_rate = params[P_APM_RATE]
    apm_share = params[P_APM_SHARE]
    size = 1 << TABLE_BITS
    pc = np.zeros((BIT_INPUTS, size, 2), dtype=np.uint16)  # probability and count side by side (kernel.py)
    pc[:, :, 0] = 32768
    nsets = 9 * 8 * 2
    weights = np.full((nsets, BIT_INPUTS + 1), params[P_MIX_W0], dtype=np.int64)
    weights[:, BIT_INPUTS] = 0
    apm = np.empty((3 * 5 * 2, 33), dtype=np.int64)
    for c in range(3 * 5 * 2):
        for jj in range(33):
            apm[c, jj] = _squash((jj - 16) * 128, squash) * 16
    width = row if row > 0 else 1
    col_vote = np.zeros(width, dtype=np.int64)
    bits = np.zeros(buf.shape[0] * 8, dtype=np.uint8)  # every bit so far, for the row above
    idx = np.zeros(BIT_INPUTS, dtype=np.int64)
    st = np.zeros(BIT_INPUTS + 1, dtype=np.int64)
    ctx = np.zeros(BIT_INPUTS, dtype=np.int64)

    x1 = 0
    x2 = _MASK32
    x = 0
    pos = 0
    plen = payload.shape[0]
    if decode:
        for _ in range(4):
            x = (x << 8) | (int(payload[pos]) if pos < plen else 0)
            pos += 1

    hist = 0  # the last 32 bits, newest lowest
    row_vote = 0
    row_agree = 0
    # Match model (lpaq): where the last 32 bits were last seen; the bit that followed them is a prediction,
    # trusted more the longer the match has held.
    last_seen = np.zeros(1 << MATCH_BITS, dtype=np.int64)
    match_ptr = 0
    match_len = 0
    j = 0
    p = 0
    for b in range(buf.shape[0]):
        cur = int(buf[b]) if not decode else 0
        byte = 0
        for shift in range(7, -1, -1):
            if row > 0 and j == 0:
                row_vote = 0
                row_agree = 0
            up = 3
            up3 = 7
            if row > 0 and p >= row:
                q = p - row
                up = int(bits[q])
                left_up = int(bits[q - 1]) if q >= 1 else 0
                right_up = int(bits[q + 1])
                up3 = left_up * 4 + up * 2 + right_up
                if q >= row:
                    up3 += 8 * (1 + int(bits[q - row]))
            cv = col_vote[j] if row > 0 else 0
            if cv != 0 and row_vote != 0:
                sv = 1 if (cv > 0) != (row_vote < 0) else 0
            else:
                sv = 2
            cc = _conf(cv)
            rc = _conf(row_vote)
            # The bit a row up, flipped when this row has so far disagreed with the row above more than agreed.
            ua = 2
            if up < 2 and row_agree != 0:
                ua = up ^ (1 if row_agree < 0 else 0)
            ac = _conf(row_agree)
            ctx[0] = hist & 0xFF
            ctx[1] = (hist & 0xFFFF) + (1 << 16)
            cvs = 2 if cv == 0 else (1 if cv > 0 else 0)
            ctx[2] = (up3 * 3 + cvs) * 64 + cc * 4 + (hist & 3)
            ctx[3] = ((sv * 5 + cc) * 5 + rc) * 16 + ua * 5 + ac
            ctx[4] = ((sv * 5 + cc) * 8 + up3) * 4 + (hist & 3)
            ctx[5] = (7 - shift) * 256 + (hist & 0xFF)
            if match_len > 0:
                ml = match_len if match_len < 16 else (16 + (match_len >> 4) if match_len < 256 else 31)
                ctx[6] = (int(bits[match_ptr]) + 1) * 32 + ml
            else:
                ctx[6] = 0
            long_run = 1 if (hist & 0xFFFF) == 0xFFFF or (hist & 0xFFFF) == 0 else 0
            wset = ((sv * 3 + ua) * 8 + (7 - shift)) * 2 + long_run
            dot = 0
            for k in range(BIT_INPUTS):
                ix = _hash(_hash(k * 1024 + 300, ctx[k]), 0) & ((1 << TABLE_BITS) - 1)
                idx[k] = ix
                s = int(stretch[int(pc[k, ix, 0]) >> 4])
                st[k] = s
                dot += s * weights[wset, k]
            dot += 256 * weights[wset, BIT_INPUTS]
            dot = dot >> MIX_SHIFT
            if dot > 2047:
                dot = 2047
            if dot < -2047:
                dot = -2047
            pm = int(squash[dot + 2047])
            z = dot + 2048
            lo = z >> 7
            fr = z & 127
            a = (sv * 5 + cc) * 2 + long_run
            pa = (apm[a, lo] * (128 - fr) + apm[a, lo + 1] * fr) >> 7
            pr_ = (pm * 16 * (4 - apm_share) + apm_share * pa) >> 2
            if pr_ < 32:
                pr_ = 32
            if pr_ > 65535 - 32:
                pr_ = 65535 - 32
            rng = x2 - x1
            xmid = x1 + (rng >> 16) * pr_ + (((rng & 0xFFFF) * pr_) >> 16)
            if decode:
                bit = 1 if x <= xmid else 0
            else:
                bit = (cur >> shift) & 1
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
            for k in range(BIT_INPUTS):
                weights[wset, k] += (st[k] * err) >> 14
            weights[wset, BIT_INPUTS] += (256 * err) >> 14
            for k in range(BIT_INPUTS):
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
            target = bit << 16
            apm[a, lo] += ((target - apm[a, lo]) * (128 - fr)) >> (apm_rate + 7)
            apm[a, lo + 1] += ((target - apm[a, lo + 1]) * fr) >> (apm_rate + 7)
            byte = (byte << 1) | bit
            bits[p] = bit
            if match_len > 0:
                if int(bits[match_ptr]) == bit:
                    match_len += 1
                    match_ptr += 1
                else:
                    match_len = 0
            hist = ((hist << 1) | bit) & 0xFFFFFFFF
            if p + 1 >= MATCH_MIN:
                h = _hash(hist, MATCH_MIN) & ((1 << MATCH_BITS) - 1)
                if match_len == 0 and last_seen[h] > 0:
                    match_ptr = last_seen[h]
                    match_len = 1
                last_seen[h] = p + 1
            if row > 0:
                if up < 2:
                    row_agree += 1 if bit == up else -1
                if cv != 0:
                    row_vote += 1 if (bit == 1) == (cv > 0) else -1
                col_vote[j] += 1 if bit else -1
                j += 1
                if j == row:
                    j = 0
            p += 1
        if decode:
            buf[b] = byte
    if decode:
        return pos
    for _ in range(4):
        if pos >= plen:
            return -1
        payload[pos] = x1 >> 24
        pos += 1
        x1 = (x1 << 8) & _MASK32
    return pos
