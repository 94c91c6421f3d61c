"""``LMGC``, a zarr 3 array-to-bytes codec (name ``lmgc``): zarr 3 arrays stored with lmgc.

zarr hands an array-to-bytes codec each chunk with its dtype and shape, so a chunk is stored as a bare
payload (lmgc_format/bare.py, docs/FORMAT.md "Bare tensors"): the fast level's chunks with a few bytes
of their own and none of an archive's header. zarr records the codec in the array's metadata
(``{"name": "lmgc", "configuration": {"level": "fast"}}``) and finds it again by that name in a new
process through the ``zarr.codecs`` entry point this package declares.

    import zarr, lmgc.zarr
    z = zarr.create_array(store, shape=(4096, 4096), chunks=(256, 4096), dtype="f4",
                          serializer=lmgc.zarr.LMGC(level="fast"))

For zarr format 2 arrays, ``lmgc.numcodecs.LMGC`` is the (bytes-to-bytes) compressor.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

from lmgc_format import bare
from lmgc_format.errors import UnsupportedError

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec

NAME = "lmgc"
LEVELS = ("fast",)  # a chunk payload records no model: the LM level would need one per chunk
# numpy's dtypes as safetensors names them (what bare payloads are coded as; little-endian)
DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8", "bool": "BOOL",
}  # fmt: skip


def _dtype(native: np.dtype[Any]) -> str:
    name = DTYPES.get(native.name)
    if name is None:
        raise UnsupportedError(
            f"lmgc's zarr codec stores numeric arrays; dtype {native} is not one ({', '.join(DTYPES)})"
        )
    return name


@dataclass(frozen=True)
class LMGC(ArrayBytesCodec):
    """Lossless gradient compression as zarr 3's array-to-bytes codec. ``level``: "fast" (the only
    level a chunk can record); ``threads``: the fast level's threads per chunk (default: one per CPU)."""

    is_fixed_size = False

    level: str = "fast"
    threads: int | None = None

    def __init__(self, *, level: str = "fast", threads: int | None = None) -> None:
        if level not in LEVELS:
            raise UnsupportedError(f"zarr chunks are coded at the {' or '.join(LEVELS)} level, not {level!r}")
        if threads is not None and (type(threads) is not int or threads < 1):
            raise UnsupportedError(f"threads must be a positive integer, not {threads!r}")
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "threads", threads)

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, configuration = parse_named_configuration(data, NAME, require_configuration=False)
        return cls(**(configuration or {}))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        config: dict[str, JSON] = {"level": self.level}
        if self.threads is not None:
            config["threads"] = self.threads
        return {"name": NAME, "configuration": config}

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        _dtype(np.dtype(dtype.to_native_dtype()))  # refuse a dtype when the array is made, not at the first write

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        arr = chunk_array.as_numpy_array()
        name = _dtype(arr.dtype)
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        payload = bare.encode(arr.tobytes(), name, arr.shape, self.threads)
        return chunk_spec.prototype.buffer.from_bytes(payload)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        native = np.dtype(chunk_spec.dtype.to_native_dtype())
        shape = tuple(chunk_spec.shape)
        data = bare.decode(chunk_bytes.to_bytes(), _dtype(native), shape)
        arr = np.frombuffer(data, dtype=native.newbyteorder("<")).astype(native, copy=False).reshape(shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(arr.copy())

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable size (is_fixed_size is False): zarr never asks


register_codec(NAME, LMGC)
