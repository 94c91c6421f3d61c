from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.tiny_model import make_tiny_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0))


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-model-other"), seed=1))


def gradient_like(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Small, heavy-tailed values with some exact zeros, like a ReLU net's gradient."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=shape) * 1e-3
    x[rng.random(shape) < 0.2] = 0.0
    return torch.from_numpy(x.astype(np.float32)).to(dtype)


@pytest.fixture
def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "grads.safetensors"
    save_file(
        {
            "layer.weight": gradient_like((6, 8), 1),
            "layer.bias": gradient_like((6,), 2),
            "steps": torch.arange(5, dtype=torch.int64),
        },
        str(path),
    )
    return path
