"""The top-byte model (lmgc_format/topbyte.py): exact round trips, learning, integer tables."""

from __future__ import annotations

import numpy as np
import pytest

from lmgc_format.coder import QUANT_BITS, Decoder, Encoder
from lmgc_format.topbyte import bit_table, decode_tops, encode_tops, split_tops, top_index


@pytest.mark.parametrize(
    "tops",
    [
        b"",
        bytes([0x3C]),
        bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)),  # random: nothing to learn
        bytes([0x3A, 0x3B, 0xBA, 0xBB, 0x00] * 80),
    ],
)
def test_tops_round_trip_exactly(tops: bytes) -> None:
    enc = Encoder()
    costs = encode_tops(enc, tops)
    assert len(costs) == len(tops)
    payload = enc.finish()
    assert decode_tops(Decoder(payload), len(tops)) == tops
    # The ideal cost is what the range coder spends, within its few bytes of flushing.
    assert len(payload) * 8 <= sum(costs) + 64


def test_model_learns_a_gradients_exponents() -> None:
    """Top bytes of float32 values of a few magnitudes cost far less than 8 bits each."""
    rng = np.random.default_rng(1)
    values = (rng.normal(size=2000) * 1e-3).astype(np.float32)
    tops = split_tops(values.tobytes(), 4)
    counts = np.bincount(np.frombuffer(tops, dtype=np.uint8), minlength=256) / len(tops)
    entropy = -sum(p * np.log2(p) for p in counts if p)
    costs = encode_tops(Encoder(), tops)
    assert np.mean(costs) < entropy + 0.3  # near the order-0 limit, far under 8 bits
    assert np.mean(encode_tops(Encoder(), bytes([0x3C]) * 1000)) < 0.05  # a constant byte is almost free


def test_bit_table_sums_to_the_quantization_total_and_never_gives_zero() -> None:
    for p in (0.0, 1e-12, 0.3, 0.5, 1.0 - 1e-12, 1.0):
        f0, f1 = bit_table(p)
        assert f0 + f1 == 1 << QUANT_BITS
        assert f0 >= 1 and f1 >= 1


def test_split_tops_and_top_index() -> None:
    data = bytes(range(8))  # two little-endian fp32 values
    assert split_tops(data, 4) == bytes([3, 7])
    assert split_tops(data, 2) == bytes([1, 3, 5, 7])
    assert top_index(4, msb_first=True) == 0
    assert top_index(4, msb_first=False) == 3
