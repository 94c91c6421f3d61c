"""lmgc: lossless compression of neural-network gradients (docs/API.md).

    import lmgc
    blob = lmgc.compress({"w": grad}, level="fast")
    tensors = lmgc.decompress(blob)

The names below are lmgc_format.api's, loaded on first use (importing lmgc stays cheap); the codec for
zarr is ``lmgc.numcodecs.LMGC``.
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
    "verify",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lmgc_format import api

        return getattr(api, name)
    raise AttributeError(f"module 'lmgc' has no attribute {name!r}")
