"""Byte and bit shuffles: the transforms of the shuffle+zstd chunk codecs.

Dense float gradients have near-random low mantissa bytes but regular sign/exponent
bytes; grouping byte k of every value together (byte shuffle) or bit j of every byte
position together (bit shuffle) lets zstd find that regularity. blosc2 does the same;
BENCHMARKS.md shows it beating the LM on dense gradients. A trailing partial value is
kept as is, after the shuffled part. Both transforms are exact permutations.
"""

from __future__ import annotations

import numpy as np


def _split(data: bytes, k: int) -> tuple[np.ndarray, bytes]:
    whole = len(data) - len(data) % k
    return np.frombuffer(data, dtype=np.uint8, count=whole).reshape(-1, k), data[whole:]


def byte_shuffle(data: bytes, k: int) -> bytes:
    if k <= 1:
        return data
    body, tail = _split(data, k)
    return body.T.tobytes() + tail


def byte_unshuffle(data: bytes, k: int) -> bytes:
    if k <= 1:
        return data
    whole = len(data) - len(data) % k
    body = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(k, -1)
    return body.T.tobytes() + data[whole:]


def bit_shuffle(data: bytes, k: int) -> bytes:
    """Bit j of byte position i of every value, for i < k, j < 8, one plane after another."""
    if k <= 1:
        return data
    body, tail = _split(data, k)
    bits = np.unpackbits(body, axis=1)  # (n, 8k)
    return np.packbits(bits.T.reshape(-1)).tobytes() + tail


def bit_unshuffle(data: bytes, k: int) -> bytes:
    if k <= 1:
        return data
    whole = len(data) - len(data) % k
    n = whole // k
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8, count=whole))[: n * 8 * k]
    body = np.packbits(bits.reshape(8 * k, n).T, axis=1)  # (n, k)
    return body.tobytes() + data[whole:]
