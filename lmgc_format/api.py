"""lmgc as a library: compress tensors held in memory, and the file commands the CLI runs.

    import lmgc
    blob = lmgc.compress({"fc.weight": grad_w, "fc.bias": grad_b}, level="fast")   # torch or numpy
    back = lmgc.decompress(blob)                     # {"fc.weight": np.ndarray, ...}, byte for byte
    back = lmgc.decompress(blob, framework="pt")     # torch tensors

The codecs read their input more than once (the filters and rows are chosen
before the header is written), so tensors pass through a safetensors file in a
temporary directory; memory holds one chunk at a time beyond the caller's own
tensors and the returned bytes. Progress reaches ``on_event`` as the typed events
the app uses (lmgc_format.events); ``cancel`` (a ``threading.Event``) stops the work
with CancelledError. Every failure is an :class:`~lmgc_format.errors.LmgcError`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lmgc_format.errors import UnsupportedError
from lmgc_format.events import EventSink, ignore
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import DecodeOptions, DecodeResult, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, EncodeResult, encode_file

__all__ = ["compress", "compress_file", "decompress", "decompress_file", "inspect", "verify"]


def _encode_options(options: Mapping[str, Any]) -> EncodeOptions:
    known = {f.name for f in fields(EncodeOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UnsupportedError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return EncodeOptions(**options)


def _save(tensors: Mapping[str, Any], path: Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` (torch tensors on any device, numpy arrays, contiguous or not) as safetensors."""
    import torch
    from safetensors.torch import save_file

    if not isinstance(tensors, Mapping) or not tensors:
        raise UnsupportedError("compress takes a non-empty mapping of names to tensors or arrays")
    out: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise UnsupportedError(f"tensor names must be strings, not {type(name).__name__}")
        if isinstance(value, torch.Tensor):
            out[name] = value.detach().to("cpu").contiguous()
        elif isinstance(value, np.ndarray):
            out[name] = torch.from_numpy(np.ascontiguousarray(value))
        else:
            raise UnsupportedError(f"{name!r}: a torch.Tensor or numpy.ndarray, not {type(value).__name__}")
    try:
        save_file(out, str(path), metadata=None if metadata is None else dict(metadata))
    except (ValueError, TypeError) as exc:  # e.g. tensors that share memory, an unsupported dtype
        raise UnsupportedError(f"cannot store these tensors as safetensors: {exc}") from None


Reference = Mapping[str, Any] | str | os.PathLike[str] | None


@contextlib.contextmanager
def _reference_path(reference: Reference, tmp: Path) -> Iterator[str | None]:
    """A reference given as tensors (saved as safetensors in ``tmp``) or as a safetensors file's path."""
    if reference is None or isinstance(reference, (str, os.PathLike)):
        yield None if reference is None else str(reference)
        return
    path = tmp / "reference.safetensors"
    _save(reference, path)
    yield str(path)


def compress(
    tensors: Mapping[str, Any],
    *,
    reference: Reference = None,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    **options: Any,
) -> bytes:
    """A ``.lmgc`` archive of ``tensors`` (name -> torch.Tensor or numpy.ndarray, any dtype safetensors
    stores; CUDA and non-contiguous tensors too). ``options`` are :class:`EncodeOptions` fields:
    ``level="auto"`` (default) / ``"quick"`` / ``"fast"`` / ``"max"``, ``model``, ``threads``, ``time_budget``, ...
    ``reference``: tensors (or a safetensors file) the receiver holds too, the previous step: tensors paired
    by name, shape and dtype are coded against it where that is smaller; decompress needs the same."""
    opts = _encode_options(options)
    with tempfile.TemporaryDirectory(prefix="lmgc-") as tmp:
        source, target = Path(tmp) / "tensors.safetensors", Path(tmp) / "tensors.lmgc"
        _save(tensors, source)
        with _reference_path(reference, Path(tmp)) as ref:
            if ref is not None:
                opts = replace(opts, reference=ref)
            encode_file(source, target, opts, on_event=on_event, cancel=cancel)
        return target.read_bytes()


def decompress(
    data: bytes,
    *,
    framework: str = "np",
    model: str | None = None,
    reference: Reference = None,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """The tensors of a ``.lmgc`` archive held in memory: numpy arrays (``framework="np"``) or torch
    tensors (``"pt"``), byte for byte what was compressed. bfloat16 needs ``"pt"`` (numpy has none)."""
    if framework not in ("np", "pt"):
        raise UnsupportedError('framework must be "np" or "pt"')
    with tempfile.TemporaryDirectory(prefix="lmgc-") as tmp:
        archive, target = Path(tmp) / "in.lmgc", Path(tmp) / "out.safetensors"
        archive.write_bytes(bytes(data))
        with _reference_path(reference, Path(tmp)) as ref:
            opts = DecodeOptions(model=model, reference=ref)
            decode_file(archive, target, opts, on_event=on_event, cancel=cancel)
        if framework == "pt":
            from safetensors.torch import load_file as load_pt

            return dict(load_pt(str(target)))
        from safetensors.numpy import load_file as load_np

        try:
            return dict(load_np(str(target)))
        except (TypeError, ValueError) as exc:
            raise UnsupportedError(f'{exc}: decompress with framework="pt"') from None


PathOrFile = str | os.PathLike[str] | BinaryIO


@contextlib.contextmanager
def _as_paths(source: PathOrFile, target: PathOrFile) -> Iterator[tuple[Path, Path]]:
    """Paths for the codecs, which read their input more than once and write their output atomically:
    a file object given as the source is copied to a temporary file first, one given as the target
    receives the finished output afterwards (streamed in pieces, never held whole)."""
    with tempfile.TemporaryDirectory(prefix="lmgc-") as tmp:
        if isinstance(source, (str, os.PathLike)):
            src = Path(source)
        else:
            src = Path(tmp) / "in"
            with open(src, "wb") as f:
                shutil.copyfileobj(source, f)
        dst = Path(target) if isinstance(target, (str, os.PathLike)) else Path(tmp) / "out"
        yield src, dst
        if not isinstance(target, (str, os.PathLike)):
            with open(dst, "rb") as f:
                shutil.copyfileobj(f, target)


def compress_file(
    source: PathOrFile,
    target: PathOrFile,
    *,
    overwrite: bool = False,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    **options: Any,
) -> EncodeResult:
    """``lmgc-tui compress SOURCE -o TARGET``: a safetensors file into an archive (written atomically).
    Either may be a path or a binary file object."""
    opts = _encode_options(options)
    with _as_paths(source, target) as (src, dst):
        return encode_file(src, dst, opts, overwrite=overwrite, on_event=on_event, cancel=cancel)


def decompress_file(
    archive: PathOrFile,
    target: PathOrFile,
    *,
    overwrite: bool = False,
    model: str | None = None,
    reference: str | os.PathLike[str] | None = None,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
) -> DecodeResult:
    """``lmgc-tui decompress ARCHIVE -o TARGET``: the original file, byte for byte (written atomically).
    Either may be a path or a binary file object; ``reference``: the file it was coded against, if any."""
    opts = DecodeOptions(model=model, reference=None if reference is None else str(reference))
    with _as_paths(archive, target) as (src, dst):
        return decode_file(src, dst, opts, overwrite=overwrite, on_event=on_event, cancel=cancel)


def verify(
    archive: str | os.PathLike[str],
    *,
    model: str | None = None,
    reference: str | os.PathLike[str] | None = None,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
) -> DecodeResult:
    """``lmgc-tui verify``: decode in memory, check every CRC and the SHA-256 (raises unless intact)."""
    opts = DecodeOptions(model=model, reference=None if reference is None else str(reference))
    return decode_file(archive, None, opts, on_event=on_event, cancel=cancel)


def inspect(archive: str | os.PathLike[str]) -> dict[str, Any]:
    """``lmgc-tui inspect --json``: what the archive holds, read without any model."""
    return describe_archive(archive)
