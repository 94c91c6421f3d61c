from __future__ import annotations

import os
import subprocess
import sys
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


def other_machine_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh process that computes like another machine: SIMD dispatch forced down
    in torch, oneDNN, MKL and numpy, one thread, a generic numba target (shared/tools/as-other-machine's
    settings)."""
    return dict(
        os.environ,
        ATEN_CPU_CAPABILITY="default",
        ONEDNN_MAX_CPU_ISA="SSE41",
        MKL_ENABLE_INSTRUCTIONS="SSE4_2",
        NPY_DISABLE_CPU_FEATURES="AVX2 FMA3 AVX512F AVX512CD AVX512_SKX",
        OMP_NUM_THREADS="1",
        NUMBA_CPU_NAME="generic",
        NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
    )


def decode_as_other_machine(archive: Path, tmp_path: Path) -> bytes:
    """What a fresh process with :func:`other_machine_env` decodes ``archive`` to (one decoding thread)."""
    out = tmp_path / "other-machine.safetensors"
    code = (
        "import sys; from lmgc_format.pipeline.decoder import DecodeOptions, decode_file; "
        "decode_file(sys.argv[1], sys.argv[2], DecodeOptions(fast_threads=1))"
    )
    env = other_machine_env(tmp_path)
    subprocess.run([sys.executable, "-c", code, str(archive), str(out)], check=True, env=env, cwd=ROOT, timeout=600)
    return out.read_bytes()


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


@pytest.fixture
def plain_archive(tmp_path: Path) -> Path:
    """Integer tensors only (no model, fast), several chunks."""
    from lmgc_format.pipeline.encoder import EncodeOptions, encode_file

    src = tmp_path / "ints.safetensors"
    save_file(
        {
            "a": torch.arange(300, dtype=torch.int32),
            "b": torch.ones(10, dtype=torch.int64),
            "c": torch.zeros(70, dtype=torch.int16),
        },
        str(src),
    )
    arc = tmp_path / "ints.lmgc"
    encode_file(src, arc, EncodeOptions(plain_chunk_bytes=256, model=None))
    return arc
