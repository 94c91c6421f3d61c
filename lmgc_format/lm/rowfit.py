"""Row x column fits of a matrix's top bytes, for the top-byte model of ``cm-top-v4`` (topbyte.py).

A weight gradient summed over a batch, ``dW = sum_b delta_b x_b^T``, is close
to rank one on the samples (the first singular value holds 45-100 % of a
matrix's energy: docs/EXPERIMENTS.md "cm-top-v4"): ``dW[i, j] ~ a_i * b_j``. So a value's
sign is close to ``sign(a_i) * sign(b_j)`` and its exponent close to a row
term plus a column term. The grid contexts of ``cm-top-v3`` see that through
three neighbours (left, up, up-left); these fits see it through every value
of the matrix coded so far in the chunk, which is what a small, noisy matrix
needs. Each 2-D view of a tensor (``row`` groups per step of its first axis)
gets one :class:`RowColumnFit`, fed the top bytes (sign + 7 high exponent
bits) in coding order, row after row:

* **Sign votes.** Column signs ``c_j`` are votes ``sum_i s[i, j] * r_i`` over
  finished rows (``r_i`` a finished row's sign, +1 for the first); the current
  row's vote is ``sum_{j' < j} s[i, j'] * sign(c_j')``. The predicted sign is
  ``sign(vote) * sign(c_j)``.
* **Exponent.** Additive in the log domain: the column term ``C_j`` is the
  mean of ``e[i, j] - R_i`` over finished rows (``R_i`` that row's mean of
  ``e[i, j'] - C_j'``; the first row stores its exponents as they are), the
  current row's term the mean so far. The guess is ``floor(R_i + C_j + 0.5)``.
* **Value fit.** Least squares ``a_i * b_j`` on the values the top bytes
  stand for (``+-4 ** (e - 63)``: fp32 and bf16 up to a constant factor; for
  fp16, whose top byte holds two mantissa bits, a monotone stand-in),
  alternating: the column vector from the
  finished rows and their row scalars, the current row's scalar from its
  values so far (before its first value: the row's bias times the learned
  ratio of row scalars to biases). Its sign, and how large ``|a_i b_j|`` is
  against the column's root mean square (a power of two, from -3 to 2), say
  how sure that sign is.

Zero and subnormal values (exponent field 0) have no sign vote and no
exponent term; in the value fit they count as 0.0.
Everything is Python float arithmetic in a fixed order (``math.frexp`` and
``math.ldexp`` are exact), so encoder and decoder compute the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NONE = -1  # a prediction the fit cannot make yet
NO_SCALE = -9  # the value fit's scale when it has no prediction
OUTSIDE_SCALE = -8  # the scale of a value in no matrix (a vector): its contexts apart from NO_SCALE's


def _value(top: int) -> float:
    """The magnitude a top byte stands for, with its sign (0.0 for zero / subnormal values)."""
    e = top & 0x7F
    if e == 0:
        return 0.0
    return math.ldexp(-1.0 if top & 0x80 else 1.0, 2 * (e - 63))


def _sign(x: float) -> int:
    return 1 if x > 0 else -1 if x < 0 else 0


@dataclass(frozen=True)
class FitGuess:
    """What the fits predict for the next top byte of the row."""

    sign_vote: int  # 1: negative, 0: positive, NONE: no vote yet
    exponent: int  # the row + column exponent guess (7-bit field), NONE: no guess
    sign_fit: int  # the value fit's sign (1: negative), NONE: no fit yet
    scale: int  # floor(log2(|a_i b_j| / column rms)) in [-3, 2]; NO_SCALE without a fit


UNKNOWN = FitGuess(NONE, NONE, NONE, NO_SCALE)  # in a matrix, before the fits can say anything
OUTSIDE = FitGuess(NONE, NONE, NONE, OUTSIDE_SCALE)  # not in a matrix


class RowColumnFit:
    """The three fits of one matrix view with ``row`` columns (see the module docstring)."""

    def __init__(self, row: int) -> None:
        self.row = row
        self.current = -1  # index of the row being coded
        # Columns: sign votes; exponent sums and counts; value-fit numerators; square sums and counts.
        self._votes = [0.0] * row
        self._exp_sum = [0.0] * row
        self._exp_n = [0] * row
        self._b_num = [0.0] * row
        self._b_den = 0.0
        self._sq_sum = [0.0] * row
        self._sq_n = [0] * row
        self._fitted = False  # a row has finished: the column vector exists
        self._bias_num = 0.0  # row scalars against their rows' bias values: a_i ~ k * bias_i
        self._bias_den = 0.0
        self._start_row(0.0)

    def _start_row(self, bias: float) -> None:
        self._cells: list[tuple[int, int]] = []  # (column, top byte) of the current row
        self._vote = 0.0
        self._exp_dev = 0.0
        self._exp_dev_n = 0
        self._a_num = 0.0
        self._a_den = 0.0
        self._bias = bias

    def _column(self, j: int) -> float | None:
        return self._b_num[j] / self._b_den if self._b_den else None

    def _scalar(self) -> float | None:
        """The current row's value-fit scalar, from its values so far, else from its bias."""
        if self._a_den > 0:
            return self._a_num / self._a_den
        if self._bias and self._bias_den > 0:
            return self._bias_num / self._bias_den * self._bias
        return None

    def _finish_row(self) -> None:
        row_sign = 1.0 if self._vote >= 0 else -1.0
        row_exp = self._exp_dev / self._exp_dev_n if self._exp_dev_n else None
        for j, top in self._cells:
            e = top & 0x7F
            if e == 0:
                continue
            self._votes[j] += (-1.0 if top & 0x80 else 1.0) * row_sign
            if row_exp is not None or not self._exp_n[j]:
                self._exp_sum[j] += e - (row_exp if row_exp is not None else 0.0)
                self._exp_n[j] += 1
        if not self._fitted:  # the first row is the column vector, with scalar 1
            for j, top in self._cells:
                self._b_num[j] += _value(top)
            self._b_den += 1.0
            self._fitted = True
            a = 1.0
        else:
            scalar = self._scalar()
            if scalar is None or scalar == 0:
                return
            a = scalar
            for j, top in self._cells:
                self._b_num[j] += a * _value(top)
            self._b_den += a * a
        if self._bias:
            self._bias_num += a * self._bias
            self._bias_den += self._bias * self._bias
        for j, top in self._cells:
            v = _value(top)
            self._sq_sum[j] += v * v
            self._sq_n[j] += 1

    def begin(self, i: int, bias_top: int) -> None:
        """The next values are row ``i``'s (``bias_top``: that row's bias top byte, -1: none)."""
        if i == self.current:
            return
        if self._cells:
            self._finish_row()
        self.current = i
        self._start_row(_value(bias_top) if bias_top >= 0 else 0.0)

    def guess(self, j: int) -> FitGuess:
        """The fits' predictions for column ``j`` of the current row."""
        sign_vote = NONE
        if self._votes[j] and self._vote:
            sign_vote = int(_sign(self._votes[j]) * _sign(self._vote) < 0)
        exponent = NONE
        if self._exp_n[j] and self._exp_dev_n:
            x = self._exp_dev / self._exp_dev_n + self._exp_sum[j] / self._exp_n[j]
            exponent = math.floor(x + 0.5)
        b, a = self._column(j), self._scalar()
        if not (b and a and self._sq_n[j] and self._sq_sum[j]):
            return FitGuess(sign_vote, exponent, NONE, NO_SCALE)
        p = a * b
        # floor(log2(|p| / rms)) = floor(floor(log2(p^2 / mean square)) / 2); frexp's exponent is exact.
        ratio = p * p * self._sq_n[j] / self._sq_sum[j]
        scale = (math.frexp(ratio)[1] - 1) // 2
        return FitGuess(sign_vote, exponent, int(p < 0), max(-3, min(2, scale)))

    def add(self, j: int, top: int) -> None:
        """Learn column ``j``'s top byte of the current row."""
        self._cells.append((j, top))
        b = self._column(j)
        if self._fitted and b is not None:  # a zero counts here: it says a_i * b_j is small
            v = _value(top)
            self._a_num += v * b
            self._a_den += b * b
        e = top & 0x7F
        if e == 0:
            return
        if self._votes[j]:
            self._vote += (-1.0 if top & 0x80 else 1.0) * _sign(self._votes[j])
        if self._exp_n[j]:
            self._exp_dev += e - self._exp_sum[j] / self._exp_n[j]
            self._exp_dev_n += 1
