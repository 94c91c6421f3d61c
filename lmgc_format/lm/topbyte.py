"""Every value's top byte, coded by a small binary context-mixing model (``+cm-top-v1`` .. ``+cm-top-v4``).

The most significant byte of a float holds its sign and the high exponent
bits: the most predictable byte of a gradient, and the one the LM codes
worst (docs/EXPERIMENTS.md "Bits per byte position": with mixing it still spends
0.6-1.5 bits more than that byte's order-0 entropy, because the hex text cuts
it into two digits and the tokenizer merges those with their neighbours).
So ``cm-top-v1`` takes it away from the LM: the top bytes of a chunk are
coded first by this model, then the LM codes everything else while still
*reading* the top byte's digits in its text (they are fed to it as known
tokens; docs/EXPERIMENTS.md "Top byte" shows why: an LM that no longer sees them
loses more on the mantissa than the byte model wins).

The model is lpaq-style, over the chunk's top bytes in file order. Each byte
is eight binary decisions, most significant bit first, down a binary tree
(``node`` = 1, then ``2 * node + bit``). Four adaptive counts predict each
decision, with contexts ``node``; ``node`` + the previous top byte's high
nibble; ``node`` + the previous top byte; ``node`` + the previous two:

    p_i = (n1 + ALPHA) / (n0 + n1 + 2 * ALPHA)
    p   = squash(sum_i w_i * stretch(p_i))          (w: one vector per node)
    w_i += RATE * (bit - p) * stretch(p_i)          (after the bit is known)

``p`` is clipped to [2**-16, 1 - 2**-16] and turned into the integer table
``f1 = floor(p * 2**QUANT_BITS)``, ``f0 = 2**QUANT_BITS - f1`` (:func:`bit_table`)
for the chunk's range coder. Plain Python floats: deterministic on a given
machine and software, like the rest of the LM path (docs/FORMAT.md).

Chosen offline on the ten samples' top bytes (docs/EXPERIMENTS.md "Top byte"):
3.02-3.15 bits per value on fp32 ConvNet / ViT vs 3.98 / 4.60 by the LM with
mixing; one count model alone pays 3.37-3.48.

**Grid contexts** (``cm-top-v3``). A weight gradient's magnitude is close to
a product, ``|dW[i, j]| ~ |delta_i| * |x_j|`` summed over the batch, so its
exponent is close to a sum of a row term and a column term, a dead unit
zeroes a whole row or column, and the bias gradient of row ``i`` is
``sum delta_i``: it carries the row term. Four more counts see that, using
where each value sits in its tensor (:class:`~lmgc_format.tensors.plan.Window`
``first`` / ``row`` / ``ref``), each with ``node``: the top byte one step up
the tensor's first axis (``up``); the exponent that row and column terms
predict, ``left + up - upleft`` (7-bit exponent fields); ``up`` with the one
two steps up; and the top byte of this row's entry in the row vector (the
latest 1-D tensor before this one, in the file, with one value per row:
a bias). Each is -1 where that neighbour is not in this chunk. Chosen offline
(docs/EXPERIMENTS.md "cm-top-v3"; ``scripts/top_bytes.py``): ConvNet fp32 3.02 ->
2.55 bits per value, MLP 2.56 -> 2.16, ViT 3.17 -> 3.05.

**Row x column fits** (``cm-top-v4``). Three neighbours are a noisy view of
a row term and a column term; on the samples' small matrices the whole
matrix so far says more. rowfit.py fits every matrix as it is coded (sign
votes, row + column mean exponents, a least-squares rank-one fit of the
values the top bytes stand for): the exponent guess context becomes the
fits' (sign vote, exponent guess), and a ninth model sees the rank-one fit's
sign and how large it is against its column. Chosen offline with
``scripts/top_bytes.py`` (docs/EXPERIMENTS.md "cm-top-v4"): char-LM fp32 3.16 ->
2.87 bits per value, autoencoder 2.70 -> 2.48, GRU 2.80 -> 2.63. Its nine
weights start at 0.2 (not 0.3) and learn at 0.025 (not 0.04).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lmgc_format.lm.coder import QUANT_BITS, Decoder, Encoder
from lmgc_format.lm.rowfit import OUTSIDE, RowColumnFit
from lmgc_format.tensors.plan import Window

ALPHA = 0.4  # additive prior of each binary count
RATE = 0.04  # mixer learning rate
_W0 = 0.3  # initial weight of every model
# cm-top-v4 (nine models): a lower start and a slower rate (docs/EXPERIMENTS.md "cm-top-v4": 0.3 each summed
# to an overconfident 2.7 before anything was learned).
FIT_RATE = 0.025
_FIT_W0 = 0.2
_MODELS = 4
_CLIP = 2.0**-16
_TOTAL = 1 << QUANT_BITS


def top_index(group: int, msb_first: bool) -> int:
    """Where a value's top byte sits in the window's text order (byte offset within the group)."""
    return 0 if msb_first else group - 1


def split_tops(data: bytes, group: int) -> bytes:
    """The top (last stored, little-endian) byte of every group of ``data``."""
    return bytes(data[group - 1 :: group])


def bit_table(p: float) -> tuple[int, int]:
    """Integer frequencies (f0, f1) summing to 2**QUANT_BITS for P(bit = 1) = ``p``."""
    p = min(max(p, _CLIP), 1.0 - _CLIP)
    f1 = int(p * _TOTAL)
    return _TOTAL - f1, f1


# A top byte's tensor, its group's index in the tensor, groups per row (0: none), the row vector (-1:
# none) and whether the group holds a zero-sum filter's stored distance (filters.py).
Place = tuple[int, int, int, int, bool]


def places(windows: Sequence[Window]) -> list[Place]:
    """Where every top byte of ``windows`` sits in its tensor, in coding order."""
    return [
        (w.tensor, w.first + k, w.row, w.ref, w.predicted(w.first + k))
        for w in windows
        for k in range(w.nbytes // w.group)
    ]


class TopByteModel:
    """Predicts the next top byte bit by bit; learns after every bit (see the module docstring).

    ``grid``: the four grid contexts of ``cm-top-v3``; :meth:`place` must then precede every byte.
    ``fit``: with ``grid``, the row x column fits of ``cm-top-v4`` (rowfit.py, "Row x column fits").
    """

    def __init__(self, grid: bool = False, fit: bool = False) -> None:
        if fit and not grid:
            raise ValueError("the row x column fits need the grid contexts")
        self._grid = grid
        self._fit = fit
        self._fits: dict[int, RowColumnFit] = {}  # per tensor
        self._column = -1  # the next byte's column in its tensor's fit (-1: no fit learns it)
        self._guess = OUTSIDE
        self._version = VERSIONS[(grid, fit)]
        self._models = self._version.models
        self._w0, self._rate = self._version.w0, self._version.rate
        self._counts: dict[tuple[int, ...], list[int]] = {}
        self._weights: dict[int, list[float]] = {}
        self._prev = (-1, -1)  # the previous two top bytes (-1: none yet)
        self._node = 1
        self._pending: tuple[list[list[int]], list[float], float] | None = None
        self._seen: dict[tuple[int, int], int] = {}  # (tensor, index) -> top byte, this chunk's so far
        self._here: tuple[int, int] | None = None
        self._up = self._up2 = self._sum_guess = self._bias = -1
        self._stored = 0  # 1 while coding a filter's stored distance: counts and weights of its own

    def place(self, tensor: int, index: int, row: int, ref: int, stored: bool = False) -> None:
        """Where the next byte sits: its tensor, its group's index there, groups per row (0: none), the
        tensor of the row vector (-1: none), and whether it is the top byte of a filter's stored distance
        (a small integer: its top byte is almost always zero, which no value context predicts)."""
        self._here = (tensor, index)
        self._stored = int(stored)
        up = up2 = left = upleft = bias = -1
        if row:
            seen = self._seen
            up = seen.get((tensor, index - row), -1)
            up2 = seen.get((tensor, index - 2 * row), -1)
            if index % row:
                left = seen.get((tensor, index - 1), -1)
                upleft = seen.get((tensor, index - row - 1), -1)
            if ref >= 0:
                bias = seen.get((ref, index // row), -1)
        self._up, self._up2, self._bias = up, up2, bias
        if not self._fit:
            # The exponent a row term plus a column term predicts (7-bit fields; sign bits dropped).
            self._sum_guess = (left & 0x7F) + (up & 0x7F) - (upleft & 0x7F) if min(left, up, upleft) >= 0 else -1
        else:  # cm-top-v4: the fits replace that guess
            self._column = -1
            self._guess = OUTSIDE
            if row:
                fit = self._fits.get(tensor)
                if fit is None:
                    fit = self._fits[tensor] = RowColumnFit(row)
                i, j = divmod(index, row)
                fit.begin(i, bias)
                self._guess = fit.guess(j)
                # A stored distance is no value of the matrix: the fit neither learns it nor skips its row.
                self._column = -1 if stored else j

    def _contexts(self) -> tuple[tuple[int, ...], ...]:
        # The model's index leads each context: no two models ever share a count. A stored
        # distance's contexts add the version's offset to it (files without filters code exactly as before).
        return self._version.contexts(self, self._version.stored_offset * self._stored, self._node)

    def predict(self) -> float:
        """P(next bit = 1)."""
        cells = []
        for ctx in self._contexts():
            cell = self._counts.get(ctx)
            if cell is None:
                cell = self._counts[ctx] = [0, 0]
            cells.append(cell)
        stretched = []
        for n0, n1 in cells:
            q = (n1 + ALPHA) / (n0 + n1 + 2 * ALPHA)
            stretched.append(math.log(q / (1.0 - q)))
        key = self._node + 256 * self._stored
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = [self._w0] * self._models
        dot = 0.0
        for wi, si in zip(w, stretched, strict=True):
            dot += wi * si
        p = 1.0 / (1.0 + math.exp(-dot)) if dot > -700 else 0.0
        self._pending = (cells, stretched, p)
        return p

    def learn(self, bit: int) -> None:
        """Update with the bit just coded (after :meth:`predict`)."""
        assert self._pending is not None, "learn() follows predict()"
        cells, stretched, p = self._pending
        self._pending = None
        w = self._weights[self._node + 256 * self._stored]
        err = self._rate * (bit - p)
        for i, si in enumerate(stretched):
            w[i] += err * si
        for cell in cells:
            cell[bit] += 1
        self._node = 2 * self._node + bit
        if self._node >= 256:
            byte = self._node - 256
            self._prev = (byte, self._prev[0])
            self._node = 1
            if self._here is not None:
                self._seen[self._here] = byte
                if self._column >= 0:
                    self._fits[self._here[0]].add(self._column, byte)
                    self._column = -1
                self._here = None


Contexts = tuple[tuple[int, ...], ...]


def _base_contexts(model: TopByteModel, m: int, n: int) -> Contexts:
    """Every version's first four models: the bit's place in the byte (``n``, the node of the binary
    tree), with the previous byte's high nibble, the previous byte, the previous two bytes."""
    p1, p2 = model._prev
    return (m, n), (m + 1, n, p1 >> 4), (m + 2, n, p1), (m + 3, n, p1, p2)


def _plain_contexts(model: TopByteModel, m: int, n: int) -> Contexts:
    """``cm-top-v1`` and ``cm-top-v2``: the previous bytes only."""
    return _base_contexts(model, m, n)


def _grid_contexts(model: TopByteModel, m: int, n: int) -> Contexts:
    """``cm-top-v3``: also the byte one row up, the row + column exponent guess from three neighbours,
    one and two rows up, the row's bias."""
    return (
        *_base_contexts(model, m, n),
        (m + 4, n, model._up),
        (m + 5, n, model._sum_guess),
        (m + 6, n, model._up, model._up2),
        (m + 7, n, model._bias),
    )


def _fit_contexts(model: TopByteModel, m: int, n: int) -> Contexts:
    """``cm-top-v4``: the row x column fits' sign vote and exponent replace the three-neighbour guess;
    their value fit's sign and scale are a ninth model."""
    g = model._guess
    return (
        *_base_contexts(model, m, n),
        (m + 4, n, model._up),
        (m + 5, n, g.sign_vote, g.exponent),
        (m + 6, n, model._up, model._up2),
        (m + 7, n, model._bias),
        (m + 8, n, g.sign_fit, g.scale),
    )


@dataclass(frozen=True)
class TopByteVersion:
    """One version of the top-byte model: how many models it mixes, what each sees, how the mixer
    starts and learns. Never change one: archives of its procedure depend on every detail."""

    procedures: tuple[str, ...]  # the mixings (mixing.MIXINGS) that use it
    models: int
    contexts: Callable[[TopByteModel, int, int], Contexts]
    w0: float = _W0
    rate: float = RATE
    stored_offset: int = 8  # what a filter's stored distance adds to every model index (16 since v4)


# (grid, fit) -> version: the mixings name their top-byte model by these two flags (mixing.Mixing).
VERSIONS: dict[tuple[bool, bool], TopByteVersion] = {
    (False, False): TopByteVersion(("cm-top-v1", "cm-top-v2"), _MODELS, _plain_contexts),
    (True, False): TopByteVersion(("cm-top-v3",), _MODELS + 4, _grid_contexts),
    (True, True): TopByteVersion(("cm-top-v4",), _MODELS + 5, _fit_contexts, _FIT_W0, FIT_RATE, 16),
}


def encode_tops(enc: Encoder, tops: bytes, where: Sequence[Place] | None = None, fit: bool = False) -> list[float]:
    """Code ``tops`` into ``enc``; returns the ideal bits each byte cost.

    ``where``: each byte's place (:func:`places`) for the grid model of ``cm-top-v3``; None: no grid.
    ``fit``: with ``where``, the row x column fits of ``cm-top-v4``.
    """
    model = TopByteModel(grid=where is not None, fit=fit)
    freqs = np.empty((8 * len(tops), 2), dtype=np.int64)
    bits = np.empty(8 * len(tops), dtype=np.int64)
    costs = []
    k = 0
    for i, byte in enumerate(tops):
        if where is not None:
            model.place(*where[i])
        cost = 0.0
        for shift in range(7, -1, -1):
            bit = (byte >> shift) & 1
            f = bit_table(model.predict())
            model.learn(bit)
            freqs[k] = f
            bits[k] = bit
            cost += QUANT_BITS - math.log2(f[bit])
            k += 1
        costs.append(cost)
    if k:
        enc.encode(bits, freqs)
    return costs


def decode_tops(dec: Decoder, n: int, where: Sequence[Place] | None = None, fit: bool = False) -> bytes:
    """Inverse of :func:`encode_tops`: ``n`` top bytes."""
    model = TopByteModel(grid=where is not None, fit=fit)
    out = bytearray()
    table = np.empty((1, 2), dtype=np.int64)
    for i in range(n):
        if where is not None:
            model.place(*where[i])
        byte = 0
        for _ in range(8):
            table[0] = bit_table(model.predict())
            bit = int(dec.decode(table)[0])
            model.learn(bit)
            byte = 2 * byte + bit
        out.append(byte)
    return bytes(out)
