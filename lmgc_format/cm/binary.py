"""The fast level's binary arithmetic coder in Python, continuing a stream the compiled kernel left open.

``cm-int-v2`` codes a whole LM chunk as one stream: the kernel (kernel.py) codes the top bytes and
leaves its coder open (its ``state``), then this module codes the digits with the same arithmetic:
32-bit carry-less, 16-bit probabilities of a 1 (``xmid = x1 + (range >> 16) * p + ((range & 0xFFFF)
* p >> 16)``; a 1 keeps ``[x1, xmid]``, a 0 ``[xmid + 1, x2]``; equal top bytes are shifted out). A
digit of 16 integer frequencies is four such decisions, most significant bit first, each with
``p = 2**16 * (frequencies of the half with a 1) // (frequencies of both halves)``, clamped to
[1, 2**16 - 1]: exact integer arithmetic, so every machine codes the same bits (docs/DESIGN.md rule 6).

The stream ends with one byte: the top byte of the smallest number in ``[x1, x2]`` whose low 24 bits
are zero (one always exists: x1 and x2 differ in their top byte). The decoder reads zeros past the
end, so it lands on that number; a whole stream is read to ``len(payload) + 3`` (four bytes of
look-ahead, the last three of them the zeros).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmgc_format.errors import CorruptChunkError

MASK32 = 0xFFFFFFFF
DIGIT_BITS = 4  # a digit of 16 symbols: four binary decisions
_TOP = 0xFF000000


def _p_one(freqs: Sequence[int], lo: int, width: int) -> int:
    """P(the next bit is 1) in 16 bits among symbols ``lo .. lo + width - 1``: the upper half's share."""
    half = width // 2
    ones = sum(freqs[lo + half : lo + width])
    total = ones + sum(freqs[lo : lo + half])
    return min(max((ones << 16) // total, 1), (1 << 16) - 1)


def _mid(x1: int, x2: int, p: int) -> int:
    """Where a decision splits ``[x1, x2]``: a 1 keeps ``[x1, xmid]`` (kernel.py computes the same)."""
    rng = x2 - x1
    return x1 + (rng >> 16) * p + (((rng & 0xFFFF) * p) >> 16)


class BinaryEncoder:
    """Codes after the kernel: ``head`` is what it wrote, ``x1``/``x2`` its open coder."""

    def __init__(self, head: bytes = b"", x1: int = 0, x2: int = MASK32) -> None:
        self.out = bytearray(head)
        self.x1, self.x2 = x1, x2

    def bit(self, bit: int, p: int) -> None:
        x1, x2 = self.x1, self.x2
        xmid = _mid(x1, x2, p)
        if bit:
            x2 = xmid
        else:
            x1 = xmid + 1
        while not (x1 ^ x2) & _TOP:
            self.out.append(x2 >> 24)
            x1 = (x1 << 8) & MASK32
            x2 = ((x2 << 8) & MASK32) | 255
        self.x1, self.x2 = x1, x2

    def encode(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        """Code one digit per row of ``freqs`` (n, 16)."""
        for sym, row in zip(symbols.tolist(), freqs.tolist(), strict=True):
            lo, width = 0, 1 << DIGIT_BITS
            for shift in range(DIGIT_BITS - 1, -1, -1):
                bit = (sym >> shift) & 1
                self.bit(bit, _p_one(row, lo, width))
                width //= 2
                lo += width * bit

    def finish(self) -> bytes:
        """The stream, ended by its one flush byte."""
        x1 = self.x1
        self.out.append((x1 >> 24) + (1 if x1 & 0xFFFFFF else 0))
        return bytes(self.out)


class BinaryDecoder:
    """Decodes after the kernel: ``pos`` bytes of ``payload`` read so far, ``x1``/``x2``/``x`` its coder
    (a fresh stream: pos 0 and the defaults, the first four bytes read here)."""

    def __init__(self, payload: bytes, pos: int = 0, x1: int = 0, x2: int = MASK32, x: int | None = None) -> None:
        self.payload = payload
        self.pos = pos
        self.x1, self.x2 = x1, x2
        if x is None:
            x = 0
            for _ in range(4):
                x = (x << 8) | self._next()
        self.x = x

    def _next(self) -> int:
        b = self.payload[self.pos] if self.pos < len(self.payload) else 0
        self.pos += 1
        return b

    def bit(self, p: int) -> int:
        x1, x2 = self.x1, self.x2
        xmid = _mid(x1, x2, p)
        bit = 1 if self.x <= xmid else 0
        if bit:
            x2 = xmid
        else:
            x1 = xmid + 1
        while not (x1 ^ x2) & _TOP:
            self.x = ((self.x << 8) & MASK32) | self._next()
            x1 = (x1 << 8) & MASK32
            x2 = ((x2 << 8) & MASK32) | 255
        self.x1, self.x2 = x1, x2
        return bit

    def decode(self, freqs: np.ndarray) -> np.ndarray:
        """One digit per row of ``freqs`` (n, 16)."""
        out = []
        for row in freqs.tolist():
            lo, width = 0, 1 << DIGIT_BITS
            for _ in range(DIGIT_BITS):
                bit = self.bit(_p_one(row, lo, width))
                width //= 2
                lo += width * bit
            out.append(lo)
        return np.array(out, dtype=np.int64)

    def check_end(self, what: str) -> None:
        """A valid stream is read to its flush byte and the three zeros after it, no further, no less."""
        if self.pos != len(self.payload) + 3:
            raise CorruptChunkError(f"{what}: a stream of {len(self.payload)} bytes decoded as {self.pos - 3}")
