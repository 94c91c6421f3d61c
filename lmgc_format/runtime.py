"""What the floating-point results of the model depend on, recorded and compared."""

from __future__ import annotations

import importlib.metadata
from typing import Any


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "none"


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
    }


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable list of runtime fields that differ (empty when all match)."""
    out = []
    for key in ("torch", "transformers", "constriction", "numpy", "device", "threads", "cpu_capability"):
        if key in recorded and recorded[key] != current.get(key):
            out.append(f"{key} {recorded[key]} -> {current.get(key)}")
    return out
