"""``LMGC``, a numcodecs codec (id ``lmgc``): zarr and other numcodecs users store float arrays with lmgc.

Each buffer numcodecs hands over (a zarr chunk) is coded as one tensor, with its shape, so the row x
column fits see the chunk's matrix rows; the fast level by default (megabytes per second, portable).

    import zarr, lmgc.numcodecs
    z = zarr.create_array(store, shape=(4096, 4096), chunks=(1024, 1024), dtype="f4",
                          compressors=None, filters=None, serializer=..., zarr_format=2,
                          compressor=lmgc.numcodecs.LMGC())      # see docs/API.md for zarr 2 and 3
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy
from numcodecs.registry import register_codec

from lmgc_format.api import compress, decompress


class LMGC(Codec):  # type: ignore[misc]  # numcodecs ships no type information
    """Lossless gradient compression for numcodecs/zarr. ``level``: "fast" (default), "quick", "auto" or "max"."""

    codec_id = "lmgc"

    def __init__(self, level: str = "fast", threads: int | None = None) -> None:
        self.level = level
        self.threads = threads

    def encode(self, buf: Any) -> bytes:
        arr = np.asarray(buf)
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        return compress({"chunk": arr}, level=self.level, threads=self.threads)

    def decode(self, buf: Any, out: Any = None) -> Any:
        data = ensure_contiguous_ndarray(buf).tobytes()
        arr = decompress(data)["chunk"]
        if out is None:
            return arr
        return ndarray_copy(arr, out)

    def get_config(self) -> dict[str, Any]:
        return {"id": self.codec_id, "level": self.level, "threads": self.threads}

    def __repr__(self) -> str:
        return f"LMGC(level={self.level!r})"


register_codec(LMGC)
