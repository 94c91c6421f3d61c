"""The compiled running sums equal numpy's in-order accumulation bit for bit, and the predicted places are
the ones a test of every index finds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lmgc_format.transforms import linesums
from lmgc_format.transforms.filters import _ranks


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    """float64 values of mixed magnitude (where the order of additions changes the bits), with -0.0."""
    v = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    v[rng.random(n) < 0.05] = -0.0
    return v


@pytest.mark.parametrize("cols", [1, 3, 64])
def test_add_columns_is_in_order_accumulation(cols: int) -> None:
    rng = np.random.default_rng(cols)
    vals = _values(rng, 1000)
    start = 2 % cols
    acc = np.zeros(cols)
    linesums.add_columns(acc, vals[:500], start)
    linesums.add_columns(acc, vals[500:], (start + 500) % cols)
    want = np.zeros(cols)
    for i, v in enumerate(vals):  # one addition at a time, in file order
        want[(start + i) % cols] += v
    assert acc.view(np.uint64).tolist() == want.view(np.uint64).tolist()


def test_row_sums_start_at_positive_zero_and_go_left_to_right() -> None:
    rng = np.random.default_rng(7)
    block = _values(rng, 40 * 9).reshape(40, 9)
    block[0] = -0.0  # +0.0 + -0.0 ... is +0.0
    want = np.add.accumulate(np.hstack([np.zeros((40, 1)), block]), axis=1)[:, -1]
    got = linesums.row_sums(block)
    assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist()
    assert not np.signbit(got[0])


def test_predicted_places_match_a_test_of_every_index() -> None:
    rng = np.random.default_rng(3)
    for _ in range(3000):
        e0 = int(rng.integers(0, 200))
        e1 = e0 + int(rng.integers(0, 200))
        start = int(rng.integers(0, 300))
        every = int(rng.choice([0, 1, 2, 7, 50]))
        idx = np.arange(e0, e1)
        mask = idx >= start
        if every:
            mask &= (idx - start) % every == 0
        places, ranks = _ranks(e0, e1, start, every)
        assert places.tolist() == idx[mask].tolist()
        assert ranks.tolist() == ((idx[mask] - start) // (every or 1)).tolist()


def test_reading_an_archive_does_not_import_numba_until_a_filter_sums() -> None:
    """inspect and the decoder's import stay free of numba's ~0.2 s: the sums load when a filter first runs."""
    code = "import sys, lmgc_format.pipeline.decoder, lmgc_format.inspect; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
