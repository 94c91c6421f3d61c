"""Deterministic quantization of model outputs and range coding with constriction.

Quantization (docs/DESIGN.md rule 2) is a pure function of the float32 logits:

    p = softmax(float64(logits))                 (max subtracted first)
    f = floor(p * (2**QUANT_BITS - A)) + 1       (every symbol >= 1)
    f[argmax] += 2**QUANT_BITS - sum(f)          (first index on ties)

so the encoder and the decoder build identical integer tables from identical
logits. The tables are handed to constriction's range coder
(``stream.queue.RangeEncoder`` with the ``Categorical(perfect=False)`` model
family); constriction 0.5's fixed-point precision (24 bits) is finer than
QUANT_BITS, so it keeps every symbol codable.
"""

from __future__ import annotations

import constriction
import numpy as np

QUANT_BITS = 20
CODER_NAME = "constriction-range-categorical"
_FAMILY = constriction.stream.model.Categorical(perfect=False)


def quantize(logits: np.ndarray) -> np.ndarray:
    """Integer frequencies (int64, rows sum to 2**QUANT_BITS, all >= 1) from logits (n, A)."""
    x = np.asarray(logits, dtype=np.float64)
    n, a = x.shape
    total = 1 << QUANT_BITS
    if a > total // 2:
        raise ValueError(f"alphabet of {a} symbols is too large for {QUANT_BITS}-bit frequencies")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():  # a broken model must still give a valid (uniform) table
        x = x.copy()
        x[bad] = 0.0
    x = x - x.max(axis=1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(axis=1, keepdims=True)
    f = np.floor(p * (total - a)).astype(np.int64) + 1
    f[np.arange(n), np.argmax(f, axis=1)] += total - f.sum(axis=1)
    return f


def code_bits(freqs: np.ndarray, symbols: np.ndarray) -> float:
    """Information content of ``symbols`` under ``freqs`` (what an ideal coder spends)."""
    picked = freqs[np.arange(len(symbols)), symbols].astype(np.float64)
    return float(np.sum(QUANT_BITS - np.log2(picked)))


class Encoder:
    def __init__(self) -> None:
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        self._enc.encode(np.asarray(symbols, dtype=np.int32), _FAMILY, freqs.astype(np.float64))

    def finish(self) -> bytes:
        return self._enc.get_compressed().astype("<u4").tobytes()


class Decoder:
    def __init__(self, payload: bytes) -> None:
        if len(payload) % 4:
            raise ValueError("range-coded payload length is not a multiple of 4")
        self._dec = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))

    def decode(self, freqs: np.ndarray) -> np.ndarray:
        return np.asarray(self._dec.decode(_FAMILY, freqs.astype(np.float64)), dtype=np.int64)
