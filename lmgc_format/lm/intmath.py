"""The integer tables and helpers of the portable LM procedure (``lmgc-int8-v1``, ``cm-int-v1``).

Every function a float model would evaluate with libm or a SIMD kernel (exp, ln, the logistic
sigmoid, cos and sin) is a table of integers here, built with Python's :mod:`decimal` module:
decimal arithmetic is specified digit for digit (IEEE 854, libmpdec), so every machine builds the
same entries without any floating-point operation. The model-independent tables are hashed and
compared with a SHA-256 pinned below (docs/DESIGN.md rule 6): a build that differed would refuse at
once instead of writing archives that decode nowhere else. The RoPE table depends on the model
(``theta``, head size); it is built the same way and enters the engine's digest (intengine.py), which
every archive of the procedure records.

Fixed-point conventions (the suffix says the scale): ``_q10`` natural-log units x 1024,
``_q15`` / ``_q16`` probabilities x 2**15 / 2**16, ``_q14`` cos and sin x 2**14.
"""

from __future__ import annotations

import hashlib
from decimal import Context, Decimal, localcontext
from functools import cache

import numpy as np

from lmgc_format.errors import UnsupportedError

# The engine's fixed-point formats (intengine.py, intkernels.py).
FRAC = 16  # activations in Q16
W_FRAC = 24  # weight scales in Q24
V_FRAC = 8  # cached values in Q8
CLAMP = (1 << 31) - 1  # residual stream and projections saturate at +-32768
V_CLAMP = (1 << 15) - 1
QK_CLAMP = 1 << 24  # queries and keys saturate at +-256 before their int8 quantization
MASKED = -(1 << 40)  # an attention score past the step

LOG_ONE = 1024  # one natural-log unit in the Q10 log domain
EXP_SPAN = 16 * LOG_ONE  # exp(-d / 1024) is tabulated for d in [0, EXP_SPAN]; beyond, it is 0
LN_BITS = 12  # ln(x) reads the top LN_BITS + 1 bits of x
SIG_STEP_BITS = 8  # the sigmoid table's input step: 2 ** -8 (in Q16 units: 256)
SIG_HALF = 16 << SIG_STEP_BITS  # entries either side of 0: inputs in [-16, 16]
ROPE_BITS = 14
_PREC = 40  # decimal digits of the constructions below
_PI = Decimal("3.14159265358979323846264338327950288419716939937510")

# SHA-256 of exp_q15 (EXP_SPAN + 1 int64), ln_q10 of 2**12 .. 2**13 - 1 (4096 int64), ln2 multiples
# (64 int64) and the sigmoid (2 * SIG_HALF + 1 int64), little-endian, in that order.
PINNED_SHA256 = "b0ba92e9e885d426213df1bc604808afe3f7a93c7ebb9886e5108190ae6ea0b2"


def _ctx() -> Context:
    return Context(prec=_PREC)


def _round(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))


def _build() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with localcontext(_ctx()):
        step = (Decimal(-1) / LOG_ONE).exp()
        exp_q15 = np.empty(EXP_SPAN + 1, dtype=np.int64)
        e = Decimal(1 << 15)
        for d in range(EXP_SPAN + 1):  # exp(-d/1024) * 2**15 by repeated products: exact to 40 digits
            exp_q15[d] = _round(e)
            e *= step
        lo = 1 << LN_BITS
        ln_mant = np.array([_round(Decimal(lo + j).ln() * LOG_ONE) for j in range(lo)], dtype=np.int64)
        ln2 = Decimal(2).ln()
        ln2_mult = np.array([_round(ln2 * k * LOG_ONE) for k in range(64)], dtype=np.int64)
        sig = np.empty(2 * SIG_HALF + 1, dtype=np.int64)
        for i in range(-SIG_HALF, SIG_HALF + 1):
            x = Decimal(i) / (1 << SIG_STEP_BITS)
            sig[i + SIG_HALF] = _round(Decimal(1 << 16) / (1 + (-x).exp()))
    return exp_q15, ln_mant, ln2_mult, sig


def digest(*tables: np.ndarray) -> str:
    h = hashlib.sha256()
    for t in tables:
        h.update(np.ascontiguousarray(t, dtype="<i8").tobytes())
    return h.hexdigest()


@cache
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(exp_q15, ln of 2**12 .. 2**13 - 1 in Q10, k ln 2 in Q10, sigmoid_q16), checked once per process."""
    built = _build()
    got = digest(*built)
    if got != PINNED_SHA256:
        raise UnsupportedError(
            f"this machine builds the portable procedure's tables differently (SHA-256 {got[:16]}…, expected "
            f"{PINNED_SHA256[:16]}…): its archives would decode nowhere else, so lmgc refuses"
        )
    for t in built:
        t.setflags(write=False)
    return built


def exp_q15(d: np.ndarray) -> np.ndarray:
    """round(2**15 * exp(-d / 1024)) for integer ``d`` >= 0 (0 beyond EXP_SPAN)."""
    table = tables()[0]
    d = np.asarray(d, dtype=np.int64)
    out = table[np.minimum(d, EXP_SPAN)]
    return np.where(d > EXP_SPAN, 0, out)


def ln_q10(x: np.ndarray) -> np.ndarray:
    """ln(x) * 1024 for integers 1 <= x < 2**62, from the top 13 bits of x (relative error < 2**-12)."""
    _, ln_mant, ln2_mult, _ = tables()
    x = np.asarray(x, dtype=np.int64)
    if x.size and int(x.min()) < 1:
        raise ValueError("ln_q10 of a value < 1")
    # k: how far x must shift right so it lands in [2**12, 2**13); negative k shifts left.
    bits = np.zeros(x.shape, dtype=np.int64)
    y = x.copy()
    for s in (32, 16, 8, 4, 2, 1):  # floor(log2(x)) by halving, integer only
        big = y >= (1 << s)
        bits += np.where(big, s, 0)
        y = np.where(big, y >> s, y)
    k = bits - LN_BITS
    mant = np.where(k >= 0, x >> np.maximum(k, 0), x << np.maximum(-k, 0))
    return ln_mant[mant - (1 << LN_BITS)] + np.where(k >= 0, ln2_mult[np.abs(k)], -ln2_mult[np.abs(k)])


@cache
def rope_q14(theta: Decimal, head_dim: int, positions: int) -> np.ndarray:
    """cos and sin of pos * theta ** (-2i / head_dim), x 2**14 rounded: int64 (positions, 2, head_dim // 2).

    Built by rotating step by step in 40-digit decimals (no libm), so it is the same on every machine."""
    half = head_dim // 2
    out = np.empty((positions, 2, half), dtype=np.int64)
    with localcontext(_ctx()):
        ln_theta = theta.ln()
        scale = Decimal(1 << ROPE_BITS)
        for i in range(half):
            angle = (-(Decimal(2 * i) / head_dim) * ln_theta).exp()
            c1, s1 = _cos_sin(angle)
            c, s = Decimal(1), Decimal(0)
            for p in range(positions):
                out[p, 0, i] = _round(c * scale)
                out[p, 1, i] = _round(s * scale)
                c, s = c * c1 - s * s1, s * c1 + c * s1
    out.setflags(write=False)
    return out


def _cos_sin(x: Decimal) -> tuple[Decimal, Decimal]:
    """Taylor series after reducing x to [-pi, pi] (x >= 0 here)."""
    two_pi = 2 * _PI
    x = x - two_pi * (x / two_pi).to_integral_value(rounding="ROUND_FLOOR")
    if x > _PI:
        x -= two_pi
    c = s = Decimal(0)
    term = Decimal(1)  # x**n / n!
    n = 0
    while True:
        if n % 4 == 0:
            c += term
        elif n % 4 == 1:
            s += term
        elif n % 4 == 2:
            c -= term
        else:
            s -= term
        n += 1
        term = term * x / n
        if n > 8 and abs(term) < Decimal(10) ** -(_PREC - 2):
            return c, s
