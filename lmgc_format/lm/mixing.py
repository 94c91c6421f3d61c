"""Context mixing: the LM's next-token prediction combined with what the chunk has shown so far.

The LM alone reads a window as text and knows nothing of the structure the
serializer guarantees, nor of the statistics of the tensor it is reading
(docs/EXPERIMENTS.md "Bits per byte position": it spends 1.2-2 bits more on the
sign/exponent byte than that byte's order-0 entropy). Mixing ``cm-mix-v1``
fixes both, for hex schemes, in two deterministic stages run identically by
the encoder and the decoder after every LM step:

1. **Grammar mask.** Only tokens whose bytes fit the window's text template at
   the current position can occur (a separator only where a value ends, a
   merged token like ``"bead"`` only where four digits remain in the value,
   nothing past the window's end); every other token gets no probability.
2. **Geometric mixing.** Three adaptive count models predict the next token
   from contexts the serializer makes meaningful: the position within a value
   (``o``), ``o`` plus the value's first four digits so far, and ``o`` plus
   the previous value's two digits at the same place. Their log-probabilities
   and the LM's are combined as ``softmax(sum_i w_i * log p_i)`` over the
   allowed tokens, with one weight vector per position ``o``, learned online
   by gradient descent on code length (PAQ/cmix-style mixing, generalized
   from bits to the token alphabet).

``cm-top-v1`` (lmgc 0.4) is the same with every value's top byte
coded apart by topbyte.py: its digits become known text the LM reads but no
coded token may cover (the mask treats them so; :meth:`TokenMixer.feed`), and
a fifth, fixed model (after the LM and the three counts) joins the mix: each token's probability proportional to
16 to the minus the number of hex digits it spells (what random digits cost).
It keeps the mix from paying more than 8 bits for a near-random mantissa byte.

``cm-top-v2`` (lmgc 0.5) is ``cm-top-v1`` with another start and
pace for the mixer (:data:`MIXINGS`): weights start at 0.4 on the LM and 0.6 on
the digit model instead of all on the LM, and learn at 0.03 instead of 0.1.
On dense gradients ``cm-top-v1`` still paid more than 8 bits for mantissa
bytes: its weights had too few values in a chunk to leave the LM, and a fast
rate kept them noisy. Chosen by replaying the same LM runs offline on six
samples (docs/EXPERIMENTS.md "Mixer start and rate"): ViT bf16 72.97 -> 70.46 %,
ViT fp32 86.96 -> 85.62 %, ConvNet fp32 73.59 -> 73.15 %.

``cm-top-v3`` (lmgc 0.6) changes three things of ``cm-top-v2``:

* **One token per mantissa digit.** The tokenizer merges letter runs (``b`` +
  ``ead``, ``fa``), so a digit model that gives each token 16 to the minus its
  digits spreads probability over splits the tokenizer never makes: it paid
  up to 2 bits a token for the token's length, and the mix paid 0.3 bits a
  value more than random digits cost. With every coded digit a token of its
  own (the text between digits, separators and prefixes, is still tokenized)
  the digit model is exactly 4 bits a digit, and the LM still reads every
  digit. It costs about 7 % more LM steps per value (6.5 -> 7 coded tokens
  per fp32 value; the top byte's known tokens are unchanged).
* **Weights apart for zero values.** Weight vectors are kept per (position,
  class), the class saying whether the value's top byte, already known, is
  zero or subnormal (``top & 0x7f == 0``). Sparse gradients mix exact zeros,
  where the LM and the counts are nearly certain, with near-random mantissas,
  where the digit model is right; one vector per position had to compromise.
  The zero class starts at (1.5, 0, 0.5, 0, 0), the others at
  (0.1, 0, 0, 0, 0.9), both learning at 0.01.
* **Grid contexts for the top byte** (topbyte.py): the top-byte model sees the
  row above in the tensor, two rows up, a row + column exponent guess and the
  row's bias.

Chosen by replaying the same LM runs (docs/EXPERIMENTS.md "cm-top-v3"): ConvNet fp32
73.15 -> 69.77 %, MLP fp32 58.93 -> 55.99 %, ViT fp32 85.62 -> 84.64 %, ViT
bf16 70.46 -> 69.43 %, MLP bf16 50.20 -> 46.27 % of tensor data.

``cm-top-v4`` (lmgc 0.9, the default) is ``cm-top-v3`` whose top-byte model
also fits every matrix as rows x columns (rowfit.py, topbyte.py "Row x column
fits"); the mix of the LM's tokens is unchanged.

State (counts, weights, texts) lives for one chunk: chunks stay independent.
All rows of a step are predicted from the state before the step and the state
is updated after it, in row order, so both sides see identical numbers. The
arithmetic is float64 numpy; like the LM itself, it is reproduced exactly by
the same software on the same machine (docs/FORMAT.md).

Chosen by replaying dumped LM logits offline (docs/EXPERIMENTS.md "Mixing"): ConvNet
fp32 78.7 % -> 76.9 % (mask) -> 73.9 % (mask + mixing) of tensor data, ViT fp32
93.7 % -> 87.4 %. Real round trips of the default (lmgc 0.3 bench): ConvNet fp32
78.8 % -> 74.6 %, bf16 70.6 % -> 64.3 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.topbyte import top_index
from lmgc_format.tensors.plan import Window
from lmgc_format.tensors.serialize import Scheme


@dataclass(frozen=True)
class Mixing:
    """One named mixing procedure: what it codes apart and how its mixer starts and learns."""

    name: str
    top_byte: bool  # every value's top byte coded apart (topbyte.py), with the digit model in the mix
    initial: tuple[float, ...]  # starting weights: LM, three count models[, digit model]
    learning_rate: float  # at the chunk's first token; decays as 1 / (1 + 0.1 sqrt(tokens so far))
    grid: bool = False  # the top-byte model also looks around the value's tensor (topbyte.py "Grid contexts")
    # Values whose known top byte says zero / subnormal get weight sets of their own, starting here.
    zero_initial: tuple[float, ...] | None = None
    single_digits: bool = False  # every mantissa digit is a token of its own (the digit model is then exact)
    fit: bool = False  # the top-byte model also fits rows x columns of each matrix (rowfit.py, cm-top-v4)


# Grid contexts for the top byte, one digit per token, weights apart for zero values (docs/EXPERIMENTS.md "cm-top-v3").
_TOP_V3 = Mixing(
    "cm-top-v3",
    True,
    (0.1, 0.0, 0.0, 0.0, 0.9),
    0.01,
    grid=True,
    zero_initial=(1.5, 0.0, 0.5, 0.0, 0.0),
    single_digits=True,
)
# What a procedure may name after its engine, oldest first. Never change one: archives name them.
MIXINGS = {
    m.name: m
    for m in (
        Mixing("cm-mix-v1", False, (1.0, 0.0, 0.0, 0.0), 0.1),
        Mixing("cm-top-v1", True, (1.0, 0.0, 0.0, 0.0, 0.0), 0.1),
        # Starting half-way to the digit model and learning 3x slower (docs/EXPERIMENTS.md "Mixer start and rate").
        Mixing("cm-top-v2", True, (0.4, 0.0, 0.0, 0.0, 0.6), 0.03),
        _TOP_V3,
        # cm-top-v3 with the row x column fits in the top-byte model (docs/EXPERIMENTS.md "cm-top-v4").
        replace(_TOP_V3, name="cm-top-v4", fit=True),
    )
}
MIXING = "cm-mix-v1"  # the LM and the count models, no top byte apart
TOP_MIXING = "cm-top-v4"  # the default: with the top byte apart
ALPHA = 0.4  # additive prior of every count (per allowed token)
_HEX_DIGITS = b"0123456789abcdef"
_PAD = -1
_TOP = -3  # template slot of a top-byte digit: fed to the LM as known text, never covered by a coded token
_MODELS = 3


def _token_bytes(alphabet: Alphabet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every token's bytes (A, longest; padded with _PAD), which of them are hex digits, and lengths."""
    longest = alphabet.max_len
    raw = np.full((alphabet.size, longest), _PAD, dtype=np.int64)
    for a, text in enumerate(alphabet.texts):
        raw[a, : len(text)] = list(text)
    is_hex = np.isin(raw, list(_HEX_DIGITS))
    return raw, is_hex, np.array([len(t) for t in alphabet.texts], dtype=np.int64)


def mixing_for(scheme: Scheme, mixing: bool = True, top_byte: bool = True) -> str | None:
    """The mixing an encoder with these options records (None: the LM alone); hex schemes only."""
    if not (mixing and scheme.hex):
        return None
    return TOP_MIXING if top_byte else MIXING


def has_tops(window: Window) -> bool:
    """Whether ``cm-top-v*`` codes this window's top bytes apart: whole values of two bytes or more."""
    return window.group >= 2 and window.nbytes % window.group == 0


def _template(scheme: Scheme, window: Window, top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A window's text with its digits left open: literal bytes (separator, prefix) and where digits go.

    ``top``: the byte (in text order) whose two digits are top-byte slots (_TOP), or None.
    """
    literal: list[int] = []
    digit: list[bool] = []
    for gi, start in enumerate(range(0, window.nbytes, window.group)):
        fixed = (scheme.separator if gi else b"") + scheme.prefix
        literal += list(fixed)
        digit += [False] * len(fixed)
        n = min(window.group, window.nbytes - start)
        for b in range(n):
            is_top = b == top
            literal += [_TOP if is_top else _PAD] * 2
            digit += [not is_top] * 2
    return np.array(literal, dtype=np.int64), np.array(digit, dtype=bool)


class TokenMixer:
    """Grammar mask + geometric mixing for one LM chunk (see the module docstring)."""

    def __init__(
        self,
        alphabet: Alphabet,
        scheme: Scheme,
        windows: Sequence[Window],
        mixing: str = MIXING,
        msb_first: bool = True,
    ) -> None:
        """``mixing``: a name of MIXINGS; with a top byte apart its digits are known text (:meth:`feed`)."""
        if not scheme.hex:
            raise ValueError("mixing needs a hex scheme")
        spec = MIXINGS[mixing]
        top_byte = spec.top_byte
        self._alphabet = alphabet
        self._scheme = scheme
        self._bytes, self._is_hex, self._lengths = _token_bytes(alphabet)
        self.tops = [top_byte and has_tops(w) for w in windows]  # windows whose top bytes are coded apart
        self._templates = [
            _template(scheme, w, top_index(w.group, msb_first) if t else None)
            for w, t in zip(windows, self.tops, strict=True)
        ]
        self._groups = [w.group for w in windows]
        self._texts = [bytearray() for _ in windows]
        # With the top byte apart a fixed model joins: every hex digit a token spells costs 4 bits (the
        # ideal code of random digits, which dense low mantissa bytes nearly are; docs/EXPERIMENTS.md "Top byte").
        self._digit_logp = -np.log(16.0) * self._is_hex.sum(axis=1) if top_byte else None
        self._models = _MODELS + (1 if top_byte else 0)
        self._initial = np.array(spec.initial, dtype=np.float64)
        assert len(self._initial) == 1 + self._models
        self._learning_rate = spec.learning_rate
        self._zero_initial = None if spec.zero_initial is None else np.array(spec.zero_initial, dtype=np.float64)
        self.single_digits = spec.single_digits
        self.grid = spec.grid
        self.fit = spec.fit
        self._counts: dict[tuple[object, ...], np.ndarray] = {}
        self._weights: dict[tuple[int, int], np.ndarray] = {}  # per (position o, zero class)
        self._tokens = 0
        # What update() needs of the last mix(): rows, their log-probs and mixed probabilities, weight keys, contexts.
        self._last: (
            tuple[list[int], np.ndarray, np.ndarray, list[tuple[int, int]], list[list[tuple[object, ...]]]] | None
        ) = None

    def _start(self, key: tuple[int, int]) -> np.ndarray:
        """The weights a key starts with: the zero class has its own start where the mixing says so."""
        return self._zero_initial if key[1] == 1 and self._zero_initial is not None else self._initial

    def _mask(self, row: int) -> np.ndarray:
        """Tokens that fit the row's template at its current text position."""
        literal, digit = self._templates[row]
        pos = len(self._texts[row])
        room = len(literal) - pos
        longest = self._bytes.shape[1]
        n = max(0, min(longest, room))
        want = np.full(longest, _PAD - 1, dtype=np.int64)  # matches no byte
        want[:n] = literal[pos : pos + n]
        want_digit = np.zeros(longest, dtype=bool)
        want_digit[:n] = digit[pos : pos + n]
        # A literal byte that is itself a hex digit (the "0" of prefix "0x") must match exactly.
        match = np.where(want_digit[None, :], self._is_hex, self._bytes == want[None, :])
        allowed = (match | (self._bytes == _PAD)).all(axis=1) & (self._lengths <= room)
        if self.single_digits:  # a token that covers a mantissa digit is that digit alone
            covers_digit = (want_digit[None, :] & (self._bytes != _PAD)).any(axis=1)
            allowed &= ~covers_digit | (self._lengths == 1)
        return allowed

    def digit_slots(self, row: int) -> np.ndarray:
        """Which bytes of the row's text are coded digits (not top-byte digits, separators or prefixes)."""
        return self._templates[row][1]

    def top_slots(self, row: int) -> np.ndarray:
        """Which bytes of the row's text are top-byte digits (bool per text byte)."""
        return self._templates[row][0] == _TOP

    def at_top(self, row: int) -> bool:
        """Whether the row's next text byte is a top-byte digit (its token is known, not coded)."""
        literal = self._templates[row][0]
        pos = len(self._texts[row])
        return pos < len(literal) and bool(literal[pos] == _TOP)

    def value_index(self, row: int) -> int:
        """Index of the value the row's next text byte belongs to."""
        scheme = self._scheme
        sep = len(scheme.separator)
        cycle = sep + len(scheme.prefix) + 2 * self._groups[row]
        return (len(self._texts[row]) + sep) // cycle

    def feed(self, row: int, symbol: int) -> None:
        """Append a known (not coded) token to the row's text; nothing is learned from it."""
        self._texts[row] += self._alphabet.texts[symbol]

    def _contexts(self, row: int) -> tuple[tuple[int, int], list[tuple[object, ...]]]:
        """The mixer's weight key (position within the value cycle, zero class), and the count models'
        contexts, from the text so far."""
        scheme = self._scheme
        sep, pre = len(scheme.separator), len(scheme.prefix)
        digits = 2 * self._groups[row]
        cycle = sep + pre + digits
        text = self._texts[row]
        # As if a separator preceded the first value: every value then starts at a multiple of cycle.
        o = (len(text) + sep) % cycle
        d = o - sep - pre  # digit offset within the value (negative on a separator or prefix)
        start = len(text) - d  # where this value's digits begin
        current = bytes(text[start : len(text)]) if d > 0 else b""
        prev_start = start - cycle
        previous = bytes(text[prev_start + max(d, 0) : prev_start + max(d, 0) + 2]) if prev_start >= 0 else b""
        # cm-top-v3: a value whose top byte (already known: coded apart, msb-first) says zero or subnormal
        # is all zeros in practice; its own weights let the mix trust the counts there and stay near the
        # digit model on every other value (docs/EXPERIMENTS.md "cm-top-v3"). -1: no class (older mixings, or unknown).
        zero = -1
        if self._zero_initial is not None and d >= 2 and self._templates[row][0][start] == _TOP:
            zero = int(int(text[start : start + 2], 16) & 0x7F == 0)
        return (o, zero), [(0, o), (1, o, current[:4]), (2, o, previous)]

    def mix(self, rows: Sequence[int], lm_logits: np.ndarray) -> np.ndarray:
        """Mixed log-probabilities (n, A) for the next token of ``rows`` (masked tokens: -1e300)."""
        n, size = len(rows), self._alphabet.size
        masks = np.stack([self._mask(r) for r in rows])
        lm = np.where(masks, np.asarray(lm_logits, dtype=np.float64), -np.inf)
        lm = lm - lm.max(axis=1, keepdims=True)
        lm = lm - np.log(np.exp(lm).sum(axis=1, keepdims=True))
        logps = np.zeros((n, 1 + self._models, size))
        logps[:, 0] = np.where(masks, lm, 0.0)
        if self._digit_logp is not None:
            u = np.where(masks, self._digit_logp[None, :], -np.inf)
            u = u - u.max(axis=1, keepdims=True)
            u = u - np.log(np.exp(u).sum(axis=1, keepdims=True))
            logps[:, -1] = np.where(masks, u, 0.0)
        weights = np.zeros((n, 1 + self._models))
        contexts: list[list[tuple[object, ...]]] = []
        positions: list[tuple[int, int]] = []
        zero = np.zeros(size)
        for i, r in enumerate(rows):
            key, ctxs = self._contexts(r)
            contexts.append(ctxs)
            positions.append(key)
            for m, ctx in enumerate(ctxs, start=1):
                p = (self._counts.get(ctx, zero) + ALPHA) * masks[i]
                np.log(p / p.sum(), where=masks[i], out=logps[i, m])  # disallowed tokens stay 0
            weights[i] = self._weights.get(key, self._start(key))
        mixed = (weights[:, :, None] * logps).sum(axis=1)  # no BLAS: same sums every run
        mixed = np.where(masks, mixed, -np.inf)
        mixed = mixed - mixed.max(axis=1, keepdims=True)
        mixed = mixed - np.log(np.exp(mixed).sum(axis=1, keepdims=True))
        self._last = (list(rows), logps, np.exp(mixed), positions, contexts)
        return np.where(masks, mixed, -1e300)

    def update(self, symbols: Sequence[int] | np.ndarray) -> None:
        """Learn from the symbols just coded for the rows of the last :meth:`mix` call."""
        assert self._last is not None, "update() follows mix()"
        rows, logps, probs, positions, contexts = self._last
        self._last = None
        rate = self._learning_rate / (1.0 + 0.1 * np.sqrt(self._tokens))
        for i, (r, a) in enumerate(zip(rows, symbols, strict=True)):
            a = int(a)
            # d log p_mix(a) / d w_m = log p_m(a) - E_mix[log p_m]
            grad = logps[i, :, a] - (logps[i] * probs[i]).sum(axis=1)
            key = positions[i]
            self._weights[key] = self._weights.get(key, self._start(key)) + rate * grad
            for ctx in contexts[i]:
                counts = self._counts.get(ctx)
                if counts is None:
                    counts = self._counts[ctx] = np.zeros(self._alphabet.size)
                counts[a] += 1.0
            self._texts[r] += self._alphabet.texts[a]
        self._tokens += len(rows)
