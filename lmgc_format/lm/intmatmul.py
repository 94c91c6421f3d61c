"""Exact products of int8 matrices on CPU, by whichever backend this machine runs fastest.

The int8 engine multiplies int8 activations by int8 weights. Every backend below returns the same
integers (a product is a product), so choosing one per machine changes speed, never a coded bit:

* ``f32``: float32 matmuls over blocks of at most EXACT_K inputs. Every partial sum is an integer
  below 127 * 127 * 1024 < 2**24, which float32 holds exactly whatever the order, blocking, FMA or
  TF32/bf16 input: exact on every backend, by construction. The reference path; always available.
* ``int8``: one ``torch._int_mm`` (int32 sums). Exact where the CPU has VNNI or AMX; without them
  oneDNN multiplies unsigned-by-signed byte pairs into int16 sums that saturate (measured: wrong
  under ``ONEDNN_MAX_CPU_ISA=AVX2``), so it is used only where the probe below comes out exact.
* ``int8x2``: weights split as w = 2 * a + b with |a| <= 63 and b in {-1, 0, 1}, two ``_int_mm``.
  With 7-bit weights a byte pair sums to at most 2 * 255 * 64 < 2**15, which is oneDNN's documented
  way to avoid that saturation ("Int8 computation aspects"): exact there too, at two products' cost.

:func:`choose` probes, once per process: each integer backend must reproduce exact int64 products
on adversarial matrices (every row and column at +-127, alternating signs, long sums: what a
saturating pair sum gets wrong), and the fastest exact one is kept. ``LMGC_INT_MATMUL`` forces a
backend (tests run every path and compare).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

EXACT_K = 1024  # rows per float32 block: 127 * 127 * 1024 < 2**24
BACKENDS = ("f32", "int8", "int8x2")
_chosen: str | None = None


class Weights:
    """An int8 weight (K, N) laid out for one backend; :meth:`products` returns (parts, B, N) integer
    arrays (float32 or int32) and the multiplier of each part: the product is sum(mult[p] * part[p])."""

    def __init__(self, torch: Any, q: Any, backend: str) -> None:
        """q: int8 (N, K), the layout the model stores."""
        self.backend = backend
        self.n = q.shape[0]
        if backend == "f32":
            qt = q.T.to(torch.float32)
            self.parts = [qt[i : i + EXACT_K].contiguous() for i in range(0, qt.shape[0], EXACT_K)]
            self.mult = np.ones(len(self.parts), dtype=np.int64)
        elif backend == "int8":
            self.parts = [q.T.contiguous()]
            self.mult = np.ones(1, dtype=np.int64)
        elif backend == "int8x2":
            a = torch.div(q, 2, rounding_mode="trunc")
            self.parts = [a.T.contiguous(), (q - 2 * a).T.contiguous()]
            self.mult = np.array([2, 1], dtype=np.int64)
        else:
            raise ValueError(f"unknown int8 matmul backend {backend!r} (choose from {', '.join(BACKENDS)})")

    def products(self, torch: Any, x: np.ndarray) -> np.ndarray:
        """x: (B, K) int8 values, as float32 for ``f32`` and int8 otherwise (:meth:`input_dtype`)."""
        b = x.shape[0]
        xt = torch.from_numpy(x)
        if self.backend == "f32":
            out = np.empty((len(self.parts), b, self.n), dtype=np.float32)
            at = 0
            for i, part in enumerate(self.parts):
                torch.matmul(xt[:, at : at + part.shape[0]], part, out=torch.from_numpy(out[i]))
                at += part.shape[0]
            return out
        out = np.empty((len(self.parts), b, self.n), dtype=np.int32)
        for i, part in enumerate(self.parts):
            torch._int_mm(xt, part, out=torch.from_numpy(out[i]))
        return out

    def input_dtype(self) -> type:
        return np.float32 if self.backend == "f32" else np.int8


def exact(torch: Any, backend: str) -> bool:
    """Does ``backend`` give exact products on the matrices a saturating or short sum gets wrong?"""
    k, n = 2 * EXACT_K, 48
    rng = np.random.default_rng(0)
    x = rng.integers(-127, 128, (18, k)).astype(np.int8)
    x[0], x[1], x[2] = 127, -127, np.where(np.arange(k) % 2, 127, -127)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    w[0], w[1], w[2] = 127, -127, np.where(np.arange(k) % 2, -127, 127)
    w[3] = np.where(np.arange(k) % 4 < 2, 127, -127)
    exact = x.astype(np.int64) @ w.astype(np.int64).T
    try:
        weights = Weights(torch, torch.from_numpy(w), backend)
        parts = weights.products(torch, x.astype(weights.input_dtype()))
    except (RuntimeError, NotImplementedError):
        return False
    got = (parts.astype(np.int64) * weights.mult[:, None, None]).sum(axis=0)
    return bool(np.array_equal(got, exact))


def _seconds(torch: Any, backend: str) -> float:
    """The best of a few products of the shape a step multiplies most (16 rows by a 576 x 3072 weight)."""
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.integers(-127, 128, (3072, 576)).astype(np.int8))
    weights = Weights(torch, w, backend)
    x: np.ndarray = rng.integers(-127, 128, (16, 576)).astype(weights.input_dtype())
    best = float("inf")
    for _ in range(6):
        start = time.perf_counter()
        weights.products(torch, x)
        best = min(best, time.perf_counter() - start)
    return best


def choose(torch: Any) -> str:
    """The backend this process uses (probed once; ``LMGC_INT_MATMUL`` overrides)."""
    global _chosen
    forced = os.environ.get("LMGC_INT_MATMUL")
    if forced:
        if forced not in BACKENDS:
            raise ValueError(f"LMGC_INT_MATMUL={forced!r}: choose from {', '.join(BACKENDS)}")
        return forced
    if _chosen is None:
        usable = [b for b in BACKENDS if b == "f32" or exact(torch, b)]
        _chosen = min(usable, key=lambda b: _seconds(torch, b))
    return _chosen
