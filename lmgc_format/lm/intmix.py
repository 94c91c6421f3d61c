"""``cm-int-v1``'s mixer: the LM's digit prediction and three count models, mixed in fixed point.

This is ``cm-top-v3``'s geometric mixing (mixing.py) redone in integers, for the portable procedure
(docs/DESIGN.md rule 6). Every coded symbol is one hex digit of a value (the top byte's digits and
the text between values are known to both sides: intchunk.py), so each model is a distribution over
16 digits:

* the LM: its logits over the 16 single-digit tokens (Q16, intengine.py), log-softmaxed in Q10 with
  the exp and ln tables (intmath.py);
* three adaptive counts, as in ``cm-top-v3``: the digit's place ``o`` in the value; ``o`` and the
  value's first four digits so far; ``o`` and the previous value's two digits at the same place.
  ``p = (c + 0.4) / (C + 6.4)``, computed as ``ln(5c + 2) - ln(5C + 32)`` in Q10.

The mix is ``softmax(sum_m w_m log p_m)`` with weights in Q16 per (place, zero class) -- the zero
class says whether the value's known top byte is zero or subnormal -- starting at ``cm-top-v3``'s
values (0.1, 0, 0, 0) and (1.5, 0, 0.5, 0) (its fifth, uniform model changes nothing over 16 digits:
it adds a constant to every log-probability) and learning by gradient steps on code length,
``0.01 / (1 + 0.1 isqrt(tokens))``, rounded to the nearest Q16 unit. Frequencies for the range coder come from the same
exp table: ``1 + e_a (2**20 - 16) // sum(e)``, the remainder on the first largest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lmgc_format.lm import intmath
from lmgc_format.lm.coder import QUANT_BITS

DIGITS = 16
MODELS = 4  # the LM and three counts
WEIGHT_BITS = 16
_START = (6554, 0, 0, 0)  # 0.1 on the LM, Q16
_ZERO_START = (98304, 0, 32768, 0)  # 1.5 on the LM, 0.5 on the "first digits" count
_LN_2_15 = 15  # ln(2**15) = ln2_mult[15]


class DigitMixer:
    """Predicts and learns, one step of rows at a time: :meth:`mix` then :meth:`update`."""

    def __init__(self) -> None:
        self._counts: dict[tuple[object, ...], np.ndarray] = {}
        self._weights: dict[tuple[int, int], np.ndarray] = {}
        self._tokens = 0
        self._last: tuple[np.ndarray, np.ndarray, list[tuple[int, int]], list[list[tuple[object, ...]]]] | None = None
        self._zero_counts = np.zeros(DIGITS, dtype=np.int64)

    def _weight(self, key: tuple[int, int]) -> np.ndarray:
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = np.array(_ZERO_START if key[1] == 1 else _START, dtype=np.int64)
        return w

    def mix(
        self, lm_logits: np.ndarray, keys: Sequence[tuple[int, int]], contexts: Sequence[list[tuple[object, ...]]]
    ) -> np.ndarray:
        """Integer frequencies (n, 16), rows summing to 2**QUANT_BITS, all >= 1.

        ``lm_logits``: (n, 16) int64 Q16 logits of the digit tokens; ``keys``: each row's (place, zero
        class); ``contexts``: each row's three count contexts."""
        _, _, ln2_mult, _ = intmath.tables()
        n = len(keys)
        logp = np.empty((n, MODELS, DIGITS), dtype=np.int64)
        lm = np.asarray(lm_logits, dtype=np.int64) >> 6  # Q16 -> Q10
        top = lm.max(axis=1, keepdims=True)
        total = intmath.exp_q15(top - lm).sum(axis=1, keepdims=True)  # >= 2**15
        logp[:, 0] = lm - top - (intmath.ln_q10(total) - ln2_mult[_LN_2_15])
        counts = np.stack([self._counts.get(c, self._zero_counts) for ctx in contexts for c in ctx]).reshape(
            n, MODELS - 1, DIGITS
        )
        logp[:, 1:] = intmath.ln_q10(5 * counts + 2) - intmath.ln_q10(5 * counts.sum(axis=2, keepdims=True) + 32)
        weights = np.stack([self._weight(k) for k in keys])  # (n, MODELS)
        mixed = (weights[:, :, None] * logp).sum(axis=1) >> WEIGHT_BITS  # integers: any order is exact
        e = intmath.exp_q15(mixed.max(axis=1, keepdims=True) - mixed)
        s = e.sum(axis=1, keepdims=True)
        total_f = 1 << QUANT_BITS
        freqs = 1 + e * (total_f - DIGITS) // s
        freqs[np.arange(n), np.argmax(freqs, axis=1)] += total_f - freqs.sum(axis=1)
        probs = (e << 16) // s
        self._last = (logp, probs, list(keys), [list(c) for c in contexts])
        return freqs

    def update(self, digits: Sequence[int] | np.ndarray) -> None:
        """Learn from the digits just coded for the rows of the last :meth:`mix`."""
        assert self._last is not None, "update() follows mix()"
        logp, probs, keys, contexts = self._last
        self._last = None
        divisor = 2 * (100 + 10 * math.isqrt(self._tokens))
        for i, a in enumerate(digits):
            a = int(a)
            # d log p_mix(a) / d w_m = log p_m(a) - E_mix[log p_m], in Q10. The step, 0.01 / (1 + 0.1 sqrt t) in
            # real units, is 64 / (100 + 10 isqrt t) Q16 units per Q10 unit, rounded to nearest.
            grad = logp[i, :, a] - ((logp[i] * probs[i]).sum(axis=1) >> 16)
            w = self._weight(keys[i])
            w += (grad * 128 + divisor // 2) // divisor
            for ctx in contexts[i]:
                c = self._counts.get(ctx)
                if c is None:
                    c = self._counts[ctx] = np.zeros(DIGITS, dtype=np.int64)
                c[a] += 1
        self._tokens += len(keys)
