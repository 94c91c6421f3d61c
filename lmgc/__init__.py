"""lmgc: lossless compression of neural-network gradients (docs/API.md).

    import lmgc
    blob = lmgc.compress({"w": grad}, level="fast")
    tensors = lmgc.decompress(blob)
    lmgc.save_file({"w": grad}, "grads.lmgc"); lmgc.load_file("grads.lmgc")   # safetensors' habits
    with lmgc.safe_open("grads.lmgc", framework="pt") as f: w = f.get_tensor("w")

The names below are lmgc_format.api's and lmgc_format.safe's, loaded on first use (importing lmgc stays
cheap); the codecs for zarr are ``lmgc.zarr.LMGC`` (zarr 3) and ``lmgc.numcodecs.LMGC`` (zarr 2).
"""

from __future__ import annotations

from typing import Any

from lmgc_format import __version__
from lmgc_format.errors import LmgcError

__all__ = [
    "LmgcError",
    "__version__",
    "compress",
    "compress_file",
    "decompress",
    "decompress_file",
    "inspect",
    "load_file",
    "safe_open",
    "save_file",
    "verify",
]
_SAFE = ("load_file", "safe_open", "save_file")


def __getattr__(name: str) -> Any:
    if name in _SAFE:
        from lmgc_format import safe

        return getattr(safe, name)
    if name in __all__:
        from lmgc_format import api

        return getattr(api, name)
    raise AttributeError(f"module 'lmgc' has no attribute {name!r}")
