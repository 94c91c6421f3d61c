"""The safetensors habits, on ``.lmgc`` files: ``save_file``, ``load_file`` and ``safe_open``.

    import lmgc
    lmgc.save_file({"w": grad_w, "b": grad_b}, "grads.lmgc", metadata={"step": "100"})
    tensors = lmgc.load_file("grads.lmgc", device="cpu")       # what safetensors.torch.load_file gives
    with lmgc.safe_open("grads.lmgc", framework="pt") as f:
        f.keys(), f.metadata()
        w = f.get_tensor("w")                                    # decodes only the chunks w's bytes lie in

``load_file`` decodes the whole archive and checks the original file's SHA-256, like ``decompress``.
``get_tensor`` decodes only the chunks that hold the tensor's bytes, each checked by its CRC-32; the
whole file's SHA-256 cannot be checked from a part of it (verify the archive for that).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import InputError, UnsupportedError
from lmgc_format.events import ignore
from lmgc_format.pipeline.decoder import ChunkDecoder, DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import encode_file
from lmgc_format.tensors.source import TensorEntry
from lmgc_format.transforms.filters import restore_tensor

__all__ = ["load_file", "safe_open", "save_file"]
FRAMEWORKS = ("pt", "np")


def save_file(
    tensors: Mapping[str, Any],
    filename: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
    **options: Any,
) -> None:
    """``safetensors.torch.save_file``, compressed: ``tensors`` (torch tensors or numpy arrays) and the
    string ``metadata`` into the archive ``filename`` (replaced if it exists, as safetensors does).
    ``options`` are the encoder's (``level="fast"``, ``model``, ...)."""
    from lmgc_format.api import _encode_options, _save

    opts = _encode_options(options)
    if metadata is not None and not (
        isinstance(metadata, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise UnsupportedError("metadata must map strings to strings (as in safetensors)")
    with tempfile.TemporaryDirectory(prefix="lmgc-") as tmp:
        source = Path(tmp) / "tensors.safetensors"
        _save(tensors, source, metadata)
        encode_file(source, filename, opts, overwrite=True)


def load_file(filename: str | os.PathLike[str], device: str = "cpu", *, model: str | None = None) -> dict[str, Any]:
    """``safetensors.torch.load_file`` of the file the archive holds: the same names, dtypes, shapes and
    bytes, on ``device``; the whole file's SHA-256 checked first. ``safe_open(...).metadata()`` gives the
    ``__metadata__``."""
    from safetensors.torch import load_file as load_pt

    with tempfile.TemporaryDirectory(prefix="lmgc-") as tmp:
        target = Path(tmp) / "out.safetensors"
        decode_file(filename, target, DecodeOptions(model=model))
        return dict(load_pt(str(target), device=device))


class TensorSlice:
    """What ``safe_open(...).get_slice(name)`` gives: the shape and dtype without decoding anything, and
    ``[...]`` indexing (which decodes the tensor's chunks once)."""

    def __init__(self, handle: SafeOpen, entry: TensorEntry) -> None:
        self._handle, self._entry = handle, entry

    def get_shape(self) -> list[int]:
        return list(self._entry.shape)

    def get_dtype(self) -> str:
        return self._entry.dtype

    def __getitem__(self, index: Any) -> Any:
        return self._handle.get_tensor(self._entry.name)[index]


class SafeOpen:
    """An open archive, read tensor by tensor (``safe_open``)."""

    def __init__(
        self, filename: str | os.PathLike[str], framework: str, device: str = "cpu", model: str | None = None
    ) -> None:
        if framework not in FRAMEWORKS:
            raise UnsupportedError(f"framework must be one of {', '.join(FRAMEWORKS)}, not {framework!r}")
        if framework == "np" and device != "cpu":
            raise UnsupportedError('framework="np" gives arrays on the CPU: device must be "cpu"')
        self.framework, self.device, self.model = framework, device, model
        self.reader = ArchiveReader(filename)
        self._chunks: ChunkDecoder | None = None
        self._entries = {t.name: t for t in self.reader.tensors}
        self._indices = {t.name: i for i, t in enumerate(self.reader.tensors)}
        self._filters = {f.tensor: f.kind for f in self.reader.filters}
        source = json.loads(self.reader.layout.header_bytes)
        self._metadata: dict[str, str] | None = source.get("__metadata__")

    def keys(self) -> list[str]:
        """The tensor names, in the order safetensors' ``safe_open`` gives them (sorted)."""
        return sorted(self._entries)

    def metadata(self) -> dict[str, str] | None:
        return None if self._metadata is None else dict(self._metadata)

    def _entry(self, name: str) -> TensorEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise InputError(f"no tensor named {name!r} in {self.reader.path} ({len(self._entries)} tensors)")
        return entry

    def get_slice(self, name: str) -> TensorSlice:
        return TensorSlice(self, self._entry(name))

    def stored_bytes(self, entry: TensorEntry) -> tuple[bytes, int]:
        """The tensor's original bytes, from only the chunks that hold them; and how many chunks that was."""
        if self._chunks is None:
            self._chunks = ChunkDecoder(self.reader, DecodeOptions(model=self.model), ignore, None, None)
        parts, used = [], 0
        for plan in self.reader.plan:
            lo, hi = max(plan.begin, entry.begin), min(plan.end, entry.end)
            if lo >= hi:
                continue
            data = self._chunks.decode(plan.index)
            parts.append(data[lo - plan.begin : hi - plan.begin])
            used += 1
        stored = b"".join(parts)
        index = self._indices[entry.name]
        if index in self._filters:  # stored as line differences: the whole tensor is here, undo them
            stored = restore_tensor(entry, self._filters[index], stored)
        return stored, used

    def get_tensor(self, name: str) -> Any:
        """The tensor ``name`` as safetensors gives it (torch on ``device``, or numpy), decoding only the
        chunks its bytes lie in (each checked by its CRC-32)."""
        entry = self._entry(name)
        data, _ = self.stored_bytes(entry)
        # One tensor as a safetensors blob: safetensors' own loader makes the dtype and shape exactly its own.
        head = json.dumps({name: {"dtype": entry.dtype, "shape": list(entry.shape), "data_offsets": [0, len(data)]}})
        blob = struct.pack("<Q", len(head)) + head.encode() + data
        if self.framework == "np":
            from safetensors.numpy import load as load_np

            try:
                return load_np(blob)[name]
            except (KeyError, TypeError, ValueError):  # safetensors.numpy knows no bfloat16 (numpy has none)
                raise UnsupportedError(
                    f'{name!r} is {entry.dtype}, which numpy cannot hold: open with framework="pt"'
                ) from None
        from safetensors.torch import load as load_pt

        return load_pt(blob)[name].to(self.device)

    def close(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        self.reader.close()

    def __enter__(self) -> SafeOpen:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def safe_open(
    filename: str | os.PathLike[str], framework: str = "pt", device: str = "cpu", *, model: str | None = None
) -> SafeOpen:
    """``safetensors.safe_open`` for an archive: ``keys()``, ``metadata()``, ``get_tensor(name)``,
    ``get_slice(name)``; use it in a ``with`` block (or call ``close()``)."""
    return SafeOpen(filename, framework, device, model)
