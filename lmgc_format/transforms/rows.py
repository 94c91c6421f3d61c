"""Row lengths of flat vectors: a matrix flattened to 1-D still has its rows, and the models want them.

Federated-learning frameworks often ship a gradient as one flat array. A weight
gradient's exponents are close to a row term plus a column term (rowfit.py), so
in the flat array the exponent at index ``k`` resembles the one at ``k - R``
(same column) far more than chance, where ``R`` is the row length. The
autocorrelation of the exponent fields shows that as a spike at lag ``R`` above
its neighbours (row terms alone give a smooth decay, not a spike).
:func:`infer_row` finds the sharpest spike; the encoder keeps it only when
coding a sample of the tensor with that row length is smaller than without
(pipeline/file_plan.py), and records it in the header (``rows``, format 1.3), so the
decoder builds the same plan. This is an encoder-side choice: its float
arithmetic never reaches a decoder.
"""

from __future__ import annotations

import math

import numpy as np

MIN_VALUES = 4096  # shorter vectors are not worth a search
MAX_LAG = 1 << 16  # longest row looked for (groups)
SAMPLE_VALUES = 1 << 18  # exponents read for the search
TRIAL_VALUES = 1 << 14  # values each candidate row length is tried on
MIN_SPIKE = 0.02  # of the zero-lag autocorrelation


def exponent_fields(data: bytes, item_size: int) -> np.ndarray:
    """The 7 exponent bits of each value's top byte (little-endian), as float64."""
    tops = np.frombuffer(data, dtype=np.uint8)[item_size - 1 :: item_size]
    return (tops & 0x7F).astype(np.float64)


def candidate_rows(exponents: np.ndarray, count: int = 4) -> list[int]:
    """Row lengths a flattened matrix with these exponents may have, likeliest first (none: empty).

    The sharpest autocorrelation spikes, and the greatest common divisor of the two sharpest (a
    spike at a multiple of the row, or at an attention head's width, can be the sharpest): the
    encoder tries each on a sample and keeps the one that codes smallest."""
    n = len(exponents)
    if n < MIN_VALUES:
        return []
    x = exponents - exponents.mean()
    energy = float(x @ x)
    if energy == 0.0:
        return []
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(n // 4, MAX_LAG) + 2] / energy
    if len(ac) < 5:
        return []
    lags = np.arange(2, len(ac) - 1)
    spike = ac[lags] - np.maximum(ac[lags - 1], ac[lags + 1])
    order = np.argsort(-spike, kind="stable")[:count]
    found = [int(lags[i]) for i in order if spike[i] >= MIN_SPIKE]
    if len(found) >= 2:
        common = math.gcd(found[0], found[1])
        if common >= 2 and common not in found:
            found.append(common)
    return found
