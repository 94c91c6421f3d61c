"""Make the golden archives (only when the byte format changes on purpose: bump the version).

python -m tests.data.make_golden          # writes golden_engine (format 1.1, procedure lmgc-llama-v1)

The 1.0 goldens (golden_ints, golden_tiny) and the first 1.1 golden (golden_shuffle) are frozen:
``make_v1_0`` and ``make_v1_1`` are kept for the record only (run today they would write files
that name today's version and engine).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from lmgc_format.encoder import EncodeOptions, encode_file
from tests.conftest import gradient_like
from tests.tiny_model import make_tiny_model

HERE = Path(__file__).resolve().parent
GOLDEN_TINY_OPTIONS = {"scheme": "comma", "window_bytes": 32, "batch": 3, "fallback": False}


def make_v1_0() -> None:
    ints = HERE / "golden_ints.safetensors"
    save_file({"counts": torch.arange(64, dtype=torch.int32), "flags": torch.tensor([True, False])}, str(ints))
    encode_file(ints, HERE / "golden_ints.safetensors.lmgc", EncodeOptions(), overwrite=True)
    floats = HERE / "golden_tiny.safetensors"
    save_file(
        {"w": gradient_like((4, 6), 11), "b": gradient_like((4,), 12, torch.bfloat16), "n": torch.arange(3)},
        str(floats),
        metadata={"made_by": "tests/data/make_golden.py"},
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        opts = EncodeOptions(model=str(model), **GOLDEN_TINY_OPTIONS)  # type: ignore[arg-type]
        encode_file(floats, HERE / "golden_tiny.safetensors.lmgc", opts, overwrite=True)


def make_v1_1() -> None:
    """Dense float tensors: the shuffle+zstd codecs of format 1.1 win their chunks."""
    dense = HERE / "golden_shuffle.safetensors"
    rng = torch.Generator().manual_seed(21)
    save_file(
        {
            "w": (torch.randn(24, 16, generator=rng) * 1e-3).contiguous(),
            "h": (torch.randn(40, generator=rng) * 1e-2).to(torch.float16),
            "i": torch.arange(20, dtype=torch.int64),
        },
        str(dense),
    )
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        opts = EncodeOptions(model=str(model), scheme="comma", window_bytes=256, batch=4)
        encode_file(dense, HERE / "golden_shuffle.safetensors.lmgc", opts, overwrite=True)


def make_engine_v1() -> None:
    """golden_tiny's source coded by lmgc's own engine: pins procedure lmgc-llama-v1."""
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp), seed=0)
        opts = EncodeOptions(model=str(model), engine="lmgc", **GOLDEN_TINY_OPTIONS)  # type: ignore[arg-type]
        encode_file(HERE / "golden_tiny.safetensors", HERE / "golden_engine.safetensors.lmgc", opts, overwrite=True)


def main() -> None:
    make_engine_v1()
    for p in sorted(HERE.glob("golden_*")):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
