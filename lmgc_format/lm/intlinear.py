"""The portable engine's linear layers: weights requantized to int8 per output channel, products exact
on every backend (intmatmul.py), rescaled by integer multiply and shift."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmgc_format.lm import intmatmul
from lmgc_format.lm.intmath import CLAMP, W_FRAC

EXACT_K = intmatmul.EXACT_K  # rows per float32 matmul block: 127 * 127 * 1024 < 2**24 (IntLinear)


def quantize_rows(torch: Any, x: Any) -> tuple[Any, Any]:
    """int8 values of ``x`` (int64, ..., K) per last-axis vector, and each vector's max |x| (>= 1).

    q = (x * r + 2**31) >> 32 with r = (127 << 32) // max|x|: one division per vector, not per value
    (torch's int64 division is ~10x slower than a multiply); |x * r| <= 127 * 2**32."""
    amax = x.abs().amax(dim=-1, keepdim=True).clamp(min=1)
    r = torch.div(127 << 32, amax, rounding_mode="floor")
    return ((x * r + (1 << 31)) >> 32).clamp(-127, 127), amax


def row_factor(torch: Any, amax: Any) -> tuple[Any, Any]:
    """amax / 127 as (mantissa in [2**14, 2**15), shift): amax / 127 ~= mantissa * 2**-shift."""
    # floor(log2(amax)) from frexp of an integer below 2**53: exact, no rounding anywhere.
    bits = torch.frexp(amax.to(torch.float64)).exponent.to(torch.int64) - 1
    shift = 21 - bits  # amax * 2**shift lands in [2**21, 2**22): / 127 in [2**14, 2**15)
    scaled = torch.where(shift >= 0, amax << shift.clamp(min=0), amax >> (-shift).clamp(min=0))
    return torch.div(scaled, 127, rounding_mode="floor"), shift


class IntLinear:
    """int8 weights (K, N), held as float32 in blocks of at most EXACT_K rows, and Q24 scales per column.

    Why not ``torch._int_mm``: on CPUs without AVX512-VNNI (AVX2, and any machine told
    ``ONEDNN_MAX_CPU_ISA=AVX2``) oneDNN multiplies int8 pairs into int16 sums that saturate, so its
    result depends on the CPU (measured: 127 x 127 rows come out wrong on AVX2, exact on AVX-512).
    A float32 matmul of int8 values is exact on every backend as long as no partial sum can leave
    the integers float32 holds exactly: |sum| <= 127 * 127 * EXACT_K < 2**24, whatever the order,
    blocking or FMA; TF32 or bf16 inputs hold int8 values exactly too. Blocks add up in int64.
    """

    def __init__(self, torch: Any, w: Any, device: str, backend: str | None) -> None:
        """``backend``: the fused CPU path's intmatmul backend, or None for the torch path's blocks."""
        w = w.detach().to("cpu", torch.float64)  # float32/bf16 -> float64 is exact
        amax = w.abs().amax(dim=1)
        scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))  # one rounding each
        q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
        self.weights = None if backend is None else intmatmul.Weights(torch, q, backend)
        if backend is None:  # the torch path: intmatmul's float32 blocks, on the device
            self.blocks = [part.to(device) for part in intmatmul.Weights(torch, q, "f32").parts]
        self.scale = torch.round(scale * (1 << W_FRAC)).to(torch.int64).to(device)  # exact: power-of-2 product
        self.q, self.scale_cpu = q, self.scale.cpu()
        self.scale_np = self.scale_cpu.numpy()

    def parts(self, torch: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fused path's product of the int8 rows ``x``: its parts and their multipliers (intmatmul)."""
        if self.weights is None:
            raise RuntimeError("this layer was built for the torch path")
        return self.weights.products(torch, x), self.weights.mult

    def __call__(self, torch: Any, x: Any) -> Any:
        """x: int64 (B, K) in Q16 -> int64 (B, N) in Q16."""
        q, amax = quantize_rows(torch, x)
        qf = q.to(torch.float32)
        acc = None
        for i, block in enumerate(self.blocks):
            part = torch.matmul(qf[:, i * EXACT_K : i * EXACT_K + block.shape[0]], block).to(torch.int64)
            acc = part if acc is None else acc + part
        # acc * scale * amax / (127 * 2**24): |acc * scale| < 2**25 * 2**18, times a 15-bit mantissa < 2**58.
        mant, shift = row_factor(torch, amax)
        return (((acc * self.scale) * mant) >> (W_FRAC + shift)).clamp(-CLAMP, CLAMP)
