"""What distributed and federated training send instead of dense floats, made from a float gradient.

Each function takes one float tensor and returns the tensors a sender would put on the wire, named
after it (``name.q``, ``name.scale``, ...). Seeded, so the corpus is the same on every run.

* ``int8_row``: int8 values with one fp32 scale per row (``max|row| / 127``), round to nearest;
* ``qsgd``: QSGD-style stochastic levels -7..7 stored as int8, one fp32 L2 norm per bucket of 512;
* ``signs``: signSGD, ``np.packbits`` of the signs (uint8) and one fp32 scale (mean |g|);
* ``topk_i64``: top 1 % by magnitude, sorted int64 indices into the flat tensor, fp32 values;
* ``topk_i32``: top 5 %, sorted int32 indices, bf16 values;
* ``topk_dense``: top 1 % written back dense (99 % exact zeros), fp32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Tensors = dict[str, torch.Tensor]


def _rows(g: torch.Tensor) -> torch.Tensor:
    """The tensor as a matrix: its first axis by the rest (a vector is one row)."""
    return g.reshape(1, -1) if g.dim() < 2 else g.reshape(g.shape[0], -1)


def int8_row(name: str, g: torch.Tensor, seed: int) -> Tensors:
    m = _rows(g.float())
    scale = m.abs().amax(dim=1, keepdim=True) / 127
    q = torch.where(scale > 0, torch.round(m / scale.clamp(min=1e-38)), torch.zeros_like(m))
    return {f"{name}.q": q.clamp(-127, 127).to(torch.int8).reshape(g.shape), f"{name}.scale": scale.reshape(-1)}


def qsgd(name: str, g: torch.Tensor, seed: int, levels: int = 7, bucket: int = 512) -> Tensors:
    flat = g.float().reshape(-1)
    pad = (-flat.numel()) % bucket
    buckets = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, bucket)
    norm = buckets.norm(dim=1, keepdim=True)
    rng = torch.Generator().manual_seed(seed)
    u = torch.rand(buckets.shape, generator=rng)
    level = torch.floor(buckets.abs() / norm.clamp(min=1e-38) * levels + u).clamp(max=levels)
    q = (torch.sign(buckets) * level).reshape(-1)[: flat.numel()]
    return {f"{name}.q": q.to(torch.int8).reshape(g.shape), f"{name}.norm": norm.reshape(-1)}


def signs(name: str, g: torch.Tensor, seed: int) -> Tensors:
    flat = g.float().reshape(-1)
    bits = np.packbits((flat >= 0).numpy().astype(np.uint8))
    return {f"{name}.signs": torch.from_numpy(bits), f"{name}.scale": flat.abs().mean().reshape(1)}


def _topk(g: torch.Tensor, share: float) -> tuple[torch.Tensor, torch.Tensor]:
    flat = g.float().reshape(-1)
    k = max(1, int(flat.numel() * share))
    idx = torch.sort(torch.topk(flat.abs(), k).indices).values
    return idx, flat[idx]


def topk_i64(name: str, g: torch.Tensor, seed: int) -> Tensors:
    idx, vals = _topk(g, 0.01)
    return {f"{name}.idx": idx.to(torch.int64), f"{name}.val": vals}


def topk_i32(name: str, g: torch.Tensor, seed: int) -> Tensors:
    idx, vals = _topk(g, 0.05)
    return {f"{name}.idx": idx.to(torch.int32), f"{name}.val": vals.to(torch.bfloat16)}


def topk_dense(name: str, g: torch.Tensor, seed: int) -> Tensors:
    idx, vals = _topk(g, 0.01)
    dense = torch.zeros(g.numel(), dtype=torch.float32)
    dense[idx] = vals
    return {name: dense.reshape(g.shape)}


REPRESENTATIONS: dict[str, Callable[[str, torch.Tensor, int], Tensors]] = {
    "int8_row": int8_row,
    "qsgd": qsgd,
    "signs": signs,
    "topk_i64": topk_i64,
    "topk_i32": topk_i32,
    "topk_dense": topk_dense,
}


def represent(kind: str, grads: dict[str, torch.Tensor], seed: int = 0) -> Tensors:
    """Every float tensor of ``grads`` in representation ``kind``; other tensors are left out."""
    out: Tensors = {}
    for i, (name, g) in enumerate(grads.items()):
        if g.is_floating_point() and g.numel() > 0:
            out.update(REPRESENTATIONS[kind](name, g.detach().cpu(), seed + i))
    return {k: v.contiguous() for k, v in out.items()}
