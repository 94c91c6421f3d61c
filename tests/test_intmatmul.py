"""intmatmul: every backend it uses gives the exact integer product, and the choice is only about speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmgc_format.lm import intmatmul


def _product(weights: intmatmul.Weights, x: np.ndarray) -> np.ndarray:
    parts = weights.products(torch, x.astype(weights.input_dtype()))
    return (parts.astype(np.int64) * weights.mult[:, None, None]).sum(axis=0)


@pytest.mark.parametrize("backend", intmatmul.BACKENDS)
@pytest.mark.parametrize(("rows", "k", "n"), [(1, 8, 3), (5, 100, 33), (16, 576, 960), (3, 2500, 17)])
def test_every_exact_backend_gives_the_int64_product(backend: str, rows: int, k: int, n: int) -> None:
    if not intmatmul.exact(torch, backend):
        pytest.skip(f"{backend} is not exact on this CPU (intmatmul.choose does not use it here)")
    rng = np.random.default_rng(k)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    x = rng.integers(-127, 128, (rows, k)).astype(np.int8)
    x[0], w[0] = 127, 127  # the largest sums: 2,500 inputs need three float32 blocks
    got = _product(intmatmul.Weights(torch, torch.from_numpy(w), backend), x)
    np.testing.assert_array_equal(got, x.astype(np.int64) @ w.astype(np.int64).T)


def test_float32_blocks_are_always_exact_and_the_choice_is_an_exact_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert intmatmul.exact(torch, "f32")
    monkeypatch.delenv("LMGC_INT_MATMUL", raising=False)
    chosen = intmatmul.choose(torch)
    assert chosen in intmatmul.BACKENDS and intmatmul.exact(torch, chosen)
    assert len(intmatmul.Weights(torch, torch.zeros((4, 2500), dtype=torch.int8), "f32").parts) == 3


def test_forcing_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMGC_INT_MATMUL", "int8x2")
    assert intmatmul.choose(torch) == "int8x2"
    monkeypatch.setenv("LMGC_INT_MATMUL", "fp8")
    with pytest.raises(ValueError, match="choose from f32, int8, int8x2"):
        intmatmul.choose(torch)


def test_split_weights_stay_within_seven_bits() -> None:
    """int8x2's promise: |a| <= 63 and b in {-1, 0, 1}, so no byte pair can saturate an int16 sum."""
    w = torch.arange(-127, 128, dtype=torch.int8).reshape(1, -1)
    weights = intmatmul.Weights(torch, w, "int8x2")
    a, b = (p.to(torch.int64) for p in weights.parts)
    assert a.abs().max() <= 63 and b.abs().max() <= 1
    assert torch.equal(2 * a + b, w.T.to(torch.int64))
