"""Row x column fits of a matrix's top bytes (lmgc_format/lm/rowfit.py)."""

from __future__ import annotations

import numpy as np

from lmgc_format.lm.rowfit import NO_SCALE, NONE, OUTSIDE, UNKNOWN, FitGuess, RowColumnFit


def _top(sign: int, exponent: int) -> int:
    """A top byte: sign bit and the 7 high exponent bits."""
    return (0x80 if sign < 0 else 0) | exponent


def _rank_one(rows: int, cols: int, seed: int = 0) -> list[list[int]]:
    """Top bytes of a rank-one matrix: sign = row sign * column sign, exponent = row + column term."""
    rng = np.random.default_rng(seed)
    row_sign, col_sign = rng.choice([-1, 1], rows), rng.choice([-1, 1], cols)
    row_exp, col_exp = rng.integers(20, 30, rows), rng.integers(20, 30, cols)
    return [
        [_top(int(row_sign[i] * col_sign[j]), int(row_exp[i] + col_exp[j])) for j in range(cols)] for i in range(rows)
    ]


def _feed(fit: RowColumnFit, tops: list[list[int]]) -> list[list[FitGuess]]:
    """Every cell's guess, taken before the cell is learned, row after row."""
    guesses = []
    for i, row in enumerate(tops):
        fit.begin(i, -1)
        line = []
        for j, top in enumerate(row):
            line.append(fit.guess(j))
            fit.add(j, top)
        guesses.append(line)
    return guesses


def test_a_rank_one_matrix_is_predicted_once_a_row_and_a_value_are_known() -> None:
    tops = _rank_one(8, 12)
    guesses = _feed(RowColumnFit(12), tops)
    assert all(g == UNKNOWN for g in guesses[0])  # the first row: no column is known yet
    for i in range(1, 8):
        assert guesses[i][0].sign_vote == NONE and guesses[i][0].exponent == NONE  # nothing of this row yet
        for j in range(1, 12):
            g, top = guesses[i][j], tops[i][j]
            negative = int(top >> 7)
            assert g.sign_vote == negative and g.sign_fit == negative, (i, j)
            assert g.exponent == top & 0x7F, (i, j)
            assert -3 <= g.scale <= 2


def test_the_row_bias_predicts_a_rows_first_value() -> None:
    """Before a row's first value the value fit scales the column by the row's bias, in the ratio
    earlier rows showed; the sign votes need a value of the row."""
    rows, cols = 6, 5
    tops = _rank_one(rows, cols, seed=3)
    fit = RowColumnFit(cols)
    for i in range(rows):
        # A bias of the row's sign, its exponent one column's worth below the row's values.
        row_sign = -1 if (tops[i][0] >> 7) != (tops[0][0] >> 7) else 1
        fit.begin(i, _top(row_sign, (tops[i][0] & 0x7F) - 2))
        first = fit.guess(0)
        if i >= 1:  # a ratio of row scalars to biases exists once a row has finished
            assert first.sign_fit == tops[i][0] >> 7
            assert first.sign_vote == NONE
        for j in range(cols):
            fit.add(j, tops[i][j])


def test_zero_values_vote_for_nothing_and_begin_is_idempotent() -> None:
    fit = RowColumnFit(3)
    fit.begin(0, -1)
    for j in range(3):
        fit.add(j, 0x00)  # zeros: no sign, no exponent, value 0.0
    fit.begin(1, -1)
    fit.begin(1, -1)  # the same row again changes nothing
    fit.add(0, _top(1, 40))
    g = fit.guess(1)
    assert g.sign_vote == NONE and g.exponent == NONE
    assert g.sign_fit == NONE and g.scale == NO_SCALE  # a zero column says nothing of the sign
    assert OUTSIDE.scale != NO_SCALE  # values outside matrices keep contexts apart


def test_guesses_are_the_same_on_every_run() -> None:
    """The encoder and decoder each build their own fit: they must agree bit for bit."""
    rng = np.random.default_rng(7)
    tops = [[int(x) for x in rng.integers(0, 256, 9)] for _ in range(10)]
    assert _feed(RowColumnFit(9), tops) == _feed(RowColumnFit(9), tops)


def test_extreme_exponents_never_raise() -> None:
    """Top bytes a damaged stream could decode to: the largest and smallest exponents in any order
    (ratios up to 4**126 between values: squares stay far inside binary64's range, so no inf or nan)."""
    rng = np.random.default_rng(11)
    extremes = [0x7F, 0xFF, 0x01, 0x81, 0x00, 0x80, 0x40]
    tops = [[int(x) for x in rng.choice(extremes, 16)] for _ in range(40)]
    tops[0] = [0x01] * 16  # tiny columns first: the largest row scalars follow
    guesses = _feed(RowColumnFit(16), tops)
    assert guesses == _feed(RowColumnFit(16), tops)
    assert all(-3 <= g.scale <= 2 or g.scale == NO_SCALE for line in guesses for g in line)
