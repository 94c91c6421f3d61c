"""What the floating-point results of the model depend on, recorded and compared."""

from __future__ import annotations

import hashlib
import importlib.metadata
from typing import Any


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def float_probe(device: str) -> str:
    """16 hex digits of SHA-256 over a fixed set of float32 and bfloat16 matmuls on ``device``.

    Two machines can report the same versions and ``cpu_capability`` and still
    round differently (another BLAS kernel, blocking or reduction order: seen on
    2026-11-26, when archives written on an AMD EPYC host did not decode on an
    Intel Xeon one, both AVX512). Equal probes do not prove equal model outputs, but a different
    probe says the decoder will almost surely not reproduce the encoder's.
    """
    import torch

    digest = hashlib.sha256()
    for dtype in (torch.float32, torch.bfloat16):
        for m, k, n in ((1, 576, 576), (16, 576, 1536), (16, 1536, 576), (7, 64, 300)):
            a = _probe_values(m * k).reshape(m, k).to(device=device, dtype=dtype)
            b = _probe_values(k * n, 7).reshape(k, n).to(device=device, dtype=dtype)
            with torch.inference_mode():
                digest.update((a @ b).float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _probe_values(n: int, salt: int = 0) -> Any:
    import torch

    i = torch.arange(n, dtype=torch.int64) + salt
    return ((i * 2654435761) % 65521).to(torch.float32) / 65521.0 - 0.5  # full mantissas, exact on every host


def describe(device: str) -> dict[str, Any]:
    import torch

    return {
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "constriction": _version("constriction"),
        "numpy": _version("numpy"),
        "device": device,
        "threads": int(torch.get_num_threads()),
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "float_probe": float_probe(device),
    }


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable list of runtime fields that differ (empty when all match)."""
    out = []
    for key in ("torch", "transformers", "constriction", "numpy", "device", "threads", "cpu_capability", "float_probe"):
        if key in recorded and recorded[key] != current.get(key):
            out.append(f"{key} {recorded[key]} -> {current.get(key)}")
    return out
