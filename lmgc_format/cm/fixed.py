"""The integer tables of the fixed-point context-mixing core (lpaq's, computed with integers only).

* ``squash(d)``: 4096 / (1 + e^(-d / 256)) for d in [-2047, 2047], by linear
  interpolation of 33 integer knots (lpaq1): a 12-bit probability.
* ``stretch(p)``: its inverse, ln(p / (1 - p)) * 256, for every 12-bit p: the
  smallest d whose squash reaches p (lpaq1's construction).
* ``rate(n)``: the step of an adaptive count after n updates, 1 / (n + 1.5) in
  Q16, by integer division.

No transcendental is ever evaluated: every entry comes from integer
arithmetic, so every machine builds the same bytes. The tables are hashed
anyway and compared with the SHA-256 pinned below (docs/DESIGN.md rule 6): a
build that differed would refuse at once rather than write archives that
decode nowhere else.
"""

from __future__ import annotations

import hashlib
from functools import cache

import numpy as np

from lmgc_format.errors import UnsupportedError

# lpaq1's knots: squash at d = -2048, -1920, ..., 2048 (steps of 128).
_KNOTS = (1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
          2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094)  # fmt: skip
STRETCH_MAX = 2047
RATE_COUNTS = 256  # counts saturate below this (the model's limit is a parameter of the procedure)

# SHA-256 of squash (4095 int32, d = -2047..2047) + stretch (4096 int32) + rate (256 int32), little-endian.
PINNED_SHA256 = "1070a8284b653a915fb51339b912cd7a7b4a7d9c1247bd3d3c9b071a5fa7b8d0"


def _squash(d: int) -> int:
    if d > STRETCH_MAX:
        return 4095
    if d < -STRETCH_MAX:
        return 0
    w = d & 127
    i = (d >> 7) + 16
    return (_KNOTS[i] * (128 - w) + _KNOTS[i + 1] * w + 64) >> 7


def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(squash over d = -2047..2047, stretch over p = 0..4095, rate over n = 0..255), int32."""
    squash = np.array([_squash(d) for d in range(-STRETCH_MAX, STRETCH_MAX + 1)], dtype=np.int32)
    stretch = np.empty(4096, dtype=np.int32)
    pi = 0
    for d in range(-STRETCH_MAX, STRETCH_MAX + 1):
        v = _squash(d)
        for p in range(pi, v + 1):
            stretch[p] = d
        pi = max(pi, v + 1)
    stretch[pi:] = STRETCH_MAX
    rate = np.array([(2 << 16) // (2 * n + 3) for n in range(RATE_COUNTS)], dtype=np.int32)
    return squash, stretch, rate


def digest(squash: np.ndarray, stretch: np.ndarray, rate: np.ndarray) -> str:
    h = hashlib.sha256()
    for table in (squash, stretch, rate):
        h.update(table.astype("<i4").tobytes())
    return h.hexdigest()


@cache
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The checked tables (built once per process)."""
    squash, stretch, rate = build()
    got = digest(squash, stretch, rate)
    if got != PINNED_SHA256:
        raise UnsupportedError(
            f"this machine builds the context-mixing tables differently (SHA-256 {got[:16]}…, "
            f"expected {PINNED_SHA256[:16]}…): its archives would decode nowhere else, so lmgc refuses"
        )
    for t in (squash, stretch, rate):
        t.setflags(write=False)
    return squash, stretch, rate
