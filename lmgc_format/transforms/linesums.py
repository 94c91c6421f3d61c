"""The zero-sum filters' running sums, compiled: binary64 additions one element at a time in file order.

filters.py's procedure fixes the order of every addition (docs/FORMAT.md "Filters"): a column's or a row's
sum starts at +0.0 and adds its elements as they come in the file. numpy's ``add.accumulate`` does that too,
but computes (and allocates) every partial sum to keep the last; these loops keep only the sums (the filter
search of a 60 MB bf16 gradient, cProfile: accumulate 0.62 s, these 0.03 s). Each ``+=`` is one correctly
rounded IEEE addition (numba leaves ``fastmath`` off), so the sums are the same bits on every machine
(docs/DESIGN.md rule 6).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def add_columns(acc: np.ndarray, vals: np.ndarray, j: int) -> None:
    """``acc[column] += value`` for ``vals`` in order, the first at column ``j``, wrapping at ``len(acc)``."""
    cols = acc.shape[0]
    for v in vals:
        acc[j] += v
        j += 1
        if j == cols:
            j = 0


@njit(nogil=True, cache=True)
def row_sums(vals: np.ndarray) -> np.ndarray:
    """The sum of each row of ``vals`` (2-D), from +0.0, left to right."""
    out = np.zeros(vals.shape[0], dtype=np.float64)
    for i in range(vals.shape[0]):
        s = 0.0
        for j in range(vals.shape[1]):
            s += vals[i, j]
        out[i] = s
    return out
