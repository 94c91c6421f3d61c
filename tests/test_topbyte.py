"""The top-byte model (lmgc_format/lm/topbyte.py): exact round trips, learning, integer tables."""

from __future__ import annotations

import numpy as np
import pytest

from lmgc_format.lm.coder import QUANT_BITS, Decoder, Encoder
from lmgc_format.lm.topbyte import bit_table, decode_tops, encode_tops, places, split_tops, top_index
from lmgc_format.tensors.plan import Window


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


def _grid_gradient(rows: int = 24, cols: int = 16) -> tuple[bytes, bytes]:
    """Top bytes of a bias and a weight gradient whose exponents are a row term plus a column term."""
    rng = np.random.default_rng(4)
    row = 2.0 ** rng.integers(-20, -4, rows)
    col = 2.0 ** rng.integers(-6, 0, cols)
    col[[3, 9]] = 0.0  # dead inputs: whole columns of zeros
    signs = rng.choice([-1.0, 1.0], (rows, cols))
    weight = (np.outer(row, col) * signs * rng.uniform(1.0, 1.9, (rows, cols))).astype(np.float32)
    bias = (row * rng.uniform(1.0, 1.9, rows)).astype(np.float32)
    return split_tops(bias.tobytes(), 4), split_tops(weight.tobytes(), 4)


def test_grid_contexts_round_trip_and_see_rows_and_columns() -> None:
    bias, weight = _grid_gradient()
    windows = [Window(0, 0, len(bias) * 4, 4), Window(1, 96, 96 + len(weight) * 4, 4, 0, 16, 0)]
    where = places(windows)
    assert where[0] == (0, 0, 0, -1, False) and where[len(bias) + 17] == (1, 17, 16, 0, False)
    tops = bias + weight
    enc = Encoder()
    grid = encode_tops(enc, tops, where)
    assert decode_tops(Decoder(enc.finish()), len(tops), where) == tops
    plain = encode_tops(Encoder(), tops)
    # The weight's top bytes are far cheaper once the model sees the row above, the bias and the guess.
    assert sum(grid[len(bias) :]) < 0.8 * sum(plain[len(bias) :])


def test_grid_contexts_stay_within_the_chunk() -> None:
    """A place whose neighbours were never coded (another chunk) just has no grid context."""
    _, weight = _grid_gradient()
    start = 5 * 16  # the chunk begins at row 5: rows 0-4, and the bias, are elsewhere
    windows = [Window(1, 0, len(weight) * 4 - start * 4, 4, start, 16, 0)]
    tops = weight[start:]
    enc = Encoder()
    encode_tops(enc, tops, places(windows))
    assert decode_tops(Decoder(enc.finish()), len(tops), places(windows)) == tops


def _rank_one_gradient(rows: int = 24, cols: int = 16) -> tuple[bytes, bytes]:
    """Top bytes of a bias and a rank-one weight gradient (``delta x^T``: signs too are row x column)."""
    rng = np.random.default_rng(5)
    delta = rng.normal(size=rows) * 2.0 ** rng.integers(-20, -4, rows)
    x = rng.normal(size=cols)
    weight = (np.outer(delta, x) * rng.uniform(0.8, 1.25, (rows, cols))).astype(np.float32)
    return split_tops(delta.astype(np.float32).tobytes(), 4), split_tops(weight.tobytes(), 4)


def test_row_column_fits_round_trip_and_predict_signs() -> None:
    """cm-top-v4: on a rank-one gradient the fits know the signs the grid's neighbours only hint at."""
    bias, weight = _rank_one_gradient()
    windows = [Window(0, 0, len(bias) * 4, 4), Window(1, 96, 96 + len(weight) * 4, 4, 0, 16, 0)]
    where = places(windows)
    tops = bias + weight
    enc = Encoder()
    fit = encode_tops(enc, tops, where, fit=True)
    assert decode_tops(Decoder(enc.finish()), len(tops), where, fit=True) == tops
    grid = encode_tops(Encoder(), tops, where)
    assert sum(fit[len(bias) :]) < 0.85 * sum(grid[len(bias) :])


def test_fits_skip_stored_distances_and_need_the_grid() -> None:
    """A filter's stored distance is no value of the matrix: coded apart, never learned by the fits."""
    _, weight = _rank_one_gradient(12, 8)
    tops = bytearray(weight)
    where = [(1, i, 8, -1, i % 8 == 7) for i in range(len(tops))]  # the last of every row is stored
    for i in range(7, len(tops), 8):
        tops[i] = 0
    enc = Encoder()
    encode_tops(enc, bytes(tops), where, fit=True)
    assert decode_tops(Decoder(enc.finish()), len(tops), where, fit=True) == bytes(tops)
    with pytest.raises(ValueError, match="grid"):
        encode_tops(Encoder(), bytes(tops), None, fit=True)


def test_every_top_byte_mixing_has_its_version() -> None:
    """The mixings that code the top byte apart name their model by (grid, fit); each such pair is one
    explicit version (topbyte.VERSIONS) that lists those mixings."""
    from lmgc_format.lm.mixing import MIXINGS
    from lmgc_format.lm.topbyte import VERSIONS

    for name, spec in MIXINGS.items():
        if spec.top_byte:
            assert name in VERSIONS[(spec.grid, spec.fit)].procedures, name
    listed = sorted(p for v in VERSIONS.values() for p in v.procedures)
    assert listed == sorted(n for n, spec in MIXINGS.items() if spec.top_byte)
