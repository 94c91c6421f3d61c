"""The quantizer's guarantees and exact range-coding round trips on adversarial distributions."""

from __future__ import annotations

import numpy as np
import pytest

from lmgc_format.lm.coder import QUANT_BITS, Decoder, Encoder, code_bits, quantize


def cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n, a = 400, 112
    return {
        "uniform": np.zeros((n, a), np.float32),
        "near_certain": np.where(np.arange(a) == 5, 60.0, -60.0).astype(np.float32)[None].repeat(n, 0),
        "many_tiny": np.concatenate([np.full((n, 1), 30.0), rng.normal(-40, 5, (n, a - 1))], 1).astype(np.float32),
        "random": rng.normal(0, 4, (n, a)).astype(np.float32),
        "non_finite": np.full((n, a), np.nan, np.float32),
        "ties": np.ones((n, a), np.float32),
    }


@pytest.mark.parametrize("name", list(cases()))
def test_quantize_is_a_valid_table(name: str) -> None:
    f = quantize(cases()[name])
    assert f.dtype == np.int64
    assert (f >= 1).all()
    assert (f.sum(axis=1) == 1 << QUANT_BITS).all()
    assert np.array_equal(f, quantize(cases()[name].copy()))  # pure function


@pytest.mark.parametrize("name", list(cases()))
def test_encode_decode_exact(name: str) -> None:
    logits = cases()[name]
    f = quantize(logits)
    rng = np.random.default_rng(1)
    # Symbols drawn from the table plus deliberately unlikely ones: every symbol must stay codable.
    syms = np.array([rng.choice(f.shape[1], p=row / row.sum()) for row in f])
    syms[::37] = f.shape[1] - 1
    enc = Encoder()
    for i in range(0, len(syms), 16):
        enc.encode(syms[i : i + 16], f[i : i + 16])
    payload = enc.finish()
    assert len(payload) % 4 == 0
    dec = Decoder(payload)
    out = np.concatenate([dec.decode(f[i : i + 16]) for i in range(0, len(syms), 16)])
    assert np.array_equal(out, syms)
    # The real size is within a few words of the ideal code length.
    assert len(payload) * 8 <= code_bits(f, syms) + 96


def test_bad_payload_length() -> None:
    with pytest.raises(ValueError):
        Decoder(b"abc")
