"""The int8 engine's elementwise work on CPU, compiled: a few fused passes a layer instead of ~200 torch ops.

The engine's step on CPU is a handful of float32 matmuls (exact: integers, intengine.py says why)
and, around them, integer arithmetic on small tensors: quantizing rows, rescaling, RMSNorm, RoPE,
softmax through the exp table, SiLU. In torch each of those is a separate op on int64 tensors with
its own dispatch and memory pass (measured: ~6,000 ops and two thirds of the step). Here each stage
is one numba function over the whole batch. The integers are the same as the torch path's (the same
operations in int64, whose wrap-around both share; numba's ``//`` and ``>>`` floor like torch's;
the one float operation, RMSNorm's square root, is the IEEE-754 ``sqrt`` both call): tests check
the two paths and tests/int_reference.py give identical logits. ``fastmath`` stays off: no
contraction of float operations into FMA.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lmgc_format.lm.intmath import CLAMP as _CLAMP
from lmgc_format.lm.intmath import FRAC as _Q16
from lmgc_format.lm.intmath import MASKED as _MASKED
from lmgc_format.lm.intmath import QK_CLAMP as _QK_CLAMP
from lmgc_format.lm.intmath import ROPE_BITS as _ROPE_BITS
from lmgc_format.lm.intmath import V_CLAMP as _V_CLAMP
from lmgc_format.lm.intmath import V_FRAC
from lmgc_format.lm.intmath import W_FRAC as _W_FRAC

_V_SHIFT = _Q16 - V_FRAC  # Q16 values cached as Q8


@njit(inline="always")
def _clamp(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


@njit(inline="always")
def _quantize_into(x: np.ndarray, out: np.ndarray) -> int:
    """int8 values of the int64 vector ``x`` into ``out`` (float32 or int8); returns max|x| (>= 1)."""
    amax = 1
    for j in range(x.shape[0]):
        a = abs(x[j])
        if a > amax:
            amax = a
    r = (127 << 32) // amax
    for j in range(x.shape[0]):
        out[j] = _clamp((x[j] * r + (1 << 31)) >> 32, -127, 127)
    return amax


@njit(inline="always")
def _row_factor(amax: int) -> tuple[int, int]:
    """amax / 127 as (mantissa in [2**14, 2**15), shift), as intlinear.row_factor."""
    bits = -1
    v = amax
    while v:
        v >>= 1
        bits += 1
    shift = 21 - bits
    scaled = amax << shift if shift >= 0 else amax >> -shift
    return scaled // 127, shift


@njit(inline="always")
def _sum_parts(acc: np.ndarray, mult: np.ndarray, i: int, j: int) -> int:
    """A product from its parts (intmatmul.Weights: float32 or int32 integers, each exact)."""
    a = 0
    for p in range(acc.shape[0]):
        a += mult[p] * np.int64(acc[p, i, j])
    return a


@njit(nogil=True, cache=True)
def norm_quantize(x: np.ndarray, weight: np.ndarray, eps: int, qf: np.ndarray, amax: np.ndarray) -> None:
    """RMSNorm of every row of ``x`` (int64 Q16) with ``weight``, quantized for the next matmul."""
    n, k = x.shape
    y = np.empty(k, dtype=np.int64)
    for i in range(n):
        total = 0
        for j in range(k):
            s = x[i, j] >> 8
            total += s * s
        mean = total // k + eps
        rms = max(math.floor(math.sqrt(float(mean)) * 256.0), 1)
        inv = (1 << 46) // rms
        for j in range(k):
            y[j] = (((x[i, j] * inv) >> 30) * weight[j]) >> _Q16
        amax[i] = _quantize_into(y, qf[i])


@njit(nogil=True, cache=True)
def rescale(acc: np.ndarray, mult: np.ndarray, scale: np.ndarray, amax: np.ndarray, residual: np.ndarray, add: bool,
            out: np.ndarray) -> None:  # fmt: skip
    """out = clamp(acc * scale * amax / (127 * 2**24)) (Q16), plus ``residual`` and clamped again when
    ``add``; ``acc`` (parts, B, N) and ``mult`` are the product's parts (intmatmul.Weights)."""
    n, m = out.shape
    for i in range(n):
        mant, shift = _row_factor(amax[i])
        s = _W_FRAC + shift
        for j in range(m):
            a = _sum_parts(acc, mult, i, j)
            v = _clamp(((a * scale[j]) * mant) >> s, -_CLAMP, _CLAMP)
            if add:
                v = _clamp(residual[i, j] + v, -_CLAMP, _CLAMP)
            out[i, j] = v


@njit(nogil=True, cache=True)
def silu_quantize(acc: np.ndarray, mult: np.ndarray, scale: np.ndarray, amax: np.ndarray, sig: np.ndarray,
                  sig_shift: int, sig_half: int, qf: np.ndarray, qamax: np.ndarray) -> None:  # fmt: skip
    """The gate/up projection's rescale, SiLU(gate) * up, quantized for the down projection."""
    n = acc.shape[1]
    half = acc.shape[2] // 2
    act = np.empty(half, dtype=np.int64)
    for i in range(n):
        mant, shift = _row_factor(amax[i])
        s = _W_FRAC + shift
        for j in range(half):
            g = _sum_parts(acc, mult, i, j)
            u = _sum_parts(acc, mult, i, half + j)
            gate = _clamp(((g * scale[j]) * mant) >> s, -_CLAMP, _CLAMP)
            up = _clamp(((u * scale[half + j]) * mant) >> s, -_CLAMP, _CLAMP)
            idx = _clamp(gate >> sig_shift, -sig_half, sig_half)
            silu = (gate * sig[idx + sig_half]) >> _Q16
            act[j] = _clamp((silu * up) >> _Q16, -_CLAMP, _CLAMP)
        qamax[i] = _quantize_into(act, qf[i])


@njit(nogil=True, cache=True)
def qkv_post(qkv: np.ndarray, steps: int, pos0: int, heads: int, kv: int, d: int, rope: np.ndarray,
             k_cache: np.ndarray, k_amax: np.ndarray, v_cache: np.ndarray, qf: np.ndarray,
             q_amax: np.ndarray) -> None:  # fmt: skip
    """RoPE on q and k, k quantized into the cache, v as Q8 into the cache, q quantized.

    ``qkv`` holds ``steps`` rows per window (row r: window r // steps, position pos0 + r % steps);
    rope (positions, 2, D / 2) Q14; k_cache (B, KV, D, cap) float32, k_amax (B, KV, 1, cap), v_cache
    (B, KV, cap, D) float64; qf (B, KV, G, steps, D), q_amax (B, KV, G, steps)."""
    group = heads // kv
    half = d // 2
    vec = np.empty(d, dtype=np.int64)
    qrow = np.empty(d, dtype=np.float32)
    for r in range(qkv.shape[0]):
        i, s = r // steps, r % steps
        pos = pos0 + s
        for h in range(heads + kv):
            base = h * d
            for j in range(half):
                a = qkv[r, base + j]
                c = qkv[r, base + half + j]
                cos, sin = rope[pos, 0, j], rope[pos, 1, j]
                vec[j] = _clamp((a * cos - c * sin) >> _ROPE_BITS, -_QK_CLAMP, _QK_CLAMP)
                vec[half + j] = _clamp((c * cos + a * sin) >> _ROPE_BITS, -_QK_CLAMP, _QK_CLAMP)
            if h < heads:
                kh, g = h // group, h % group
                q_amax[i, kh, g, s] = _quantize_into(vec, qf[i, kh, g, s])
            else:
                kh = h - heads
                k_amax[i, kh, 0, pos] = _quantize_into(vec, qrow)
                for j in range(d):
                    k_cache[i, kh, j, pos] = qrow[j]
        vbase = (heads + kv) * d
        for kh in range(kv):
            for j in range(d):
                v_cache[i, kh, pos, j] = _clamp(qkv[r, vbase + kh * d + j] >> _V_SHIFT, -_V_CLAMP, _V_CLAMP)


@njit(nogil=True, cache=True)
def softmax(dots: np.ndarray, k_amax: np.ndarray, q_amax: np.ndarray, q_div: int, pos0: int, exp: np.ndarray,
            weights: np.ndarray, total: np.ndarray) -> None:  # fmt: skip
    """Scores (Q10) from the integer dots, exp-table weights (float64 integers) and their sums.

    dots (B, KV, G * Q, stop): Q queries per head, query s at position pos0 + s, which sees the
    positions up to its own (its weights past it are 0); q_amax (B, KV, G, Q); k_amax (B, KV, 1, cap);
    weights like dots; total (B, KV, G, Q)."""
    b, kv, rows, stop = dots.shape
    queries = q_amax.shape[3]
    span = exp.shape[0] - 1
    scores = np.empty(stop, dtype=np.int64)
    for i in range(b):
        for kh in range(kv):
            for row in range(rows):
                g, s = row // queries, row % queries
                n = pos0 + s + 1
                q_factor = (q_amax[i, kh, g, s] << 27) // q_div
                top = _MASKED
                for p in range(n):
                    sc = (((np.int64(dots[i, kh, row, p]) * k_amax[i, kh, 0, p]) >> 12) * q_factor) >> 27
                    scores[p] = sc
                    if sc > top:
                        top = sc
                t = 0
                for p in range(n):
                    w = exp[min(top - scores[p], span)]
                    weights[i, kh, row, p] = w
                    t += w
                for p in range(n, stop):
                    weights[i, kh, row, p] = 0.0
                total[i, kh, g, s] = t


@njit(nogil=True, cache=True)
def attend_quantize(mixed: np.ndarray, total: np.ndarray, steps: int, s0: int, qf: np.ndarray,
                    amax: np.ndarray) -> None:  # fmt: skip
    """Each head's weighted sum of values divided by its total weight (Q16), the heads of a row laid end
    to end and quantized for the output projection. mixed (B, KV, G * Q, D) float64 for queries s0 ..
    s0 + Q - 1 of each window; their rows of qf (B * steps, H * D) and amax (B * steps)."""
    b, kv, rows, d = mixed.shape
    queries = total.shape[3]
    group = rows // queries
    row = np.empty(kv * group * d, dtype=np.int64)
    for i in range(b):
        for s in range(queries):
            for kh in range(kv):
                for g in range(group):
                    inv = (1 << 38) // total[i, kh, g, s]
                    base = (kh * group + g) * d
                    for j in range(d):
                        m = np.int64(mixed[i, kh, g * queries + s, j])
                        row[base + j] = (m * inv) >> (38 - (_Q16 - _V_SHIFT))
            r = i * steps + s0 + s
            amax[r] = _quantize_into(row, qf[r])
