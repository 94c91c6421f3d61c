"""Reading and validating a safetensors file without trusting it.

We never let the safetensors library interpret the data: lmgc needs the exact
bytes (header JSON with its padding, gaps, every byte of data) so that the
decoder can give back an identical file.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from lmgc_format.errors import InputError

# Caps (documented in docs/FORMAT.md): the header of a safetensors file is
# JSON and must fit in memory; 100 MB is what the safetensors library allows.
MAX_SAFETENSORS_HEADER = 100_000_000
MAX_TENSORS = 200_000  # checkpoint shards hold thousands; a million took ~13 s to parse
MAX_RANK = 64
# An .lmgc archive's first 8 bytes, owned here (the lowest module that reads them: it refuses an archive
# given as input) and re-exported as container.constants.MAGIC. PNG-style: a non-ASCII first byte
# catches 7-bit channels, CR LF catches newline translation, 0x1A stops `type` on DOS.
LMGC_MAGIC = b"\x89LMGC\r\n\x1a"

DTYPE_SIZES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
# Floating-point dtypes go through the language model; the rest are stored
# with the fallback codec.
LM_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})
# Integer tensors (quantized values, indices, packed bits): what the cm-ints-v1 codec takes (cm/ints_codec.py).
INT_DTYPES = frozenset({"I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL"})


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offset inside the data section
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def item_size(self) -> int:
        return DTYPE_SIZES[self.dtype]


@dataclass(frozen=True)
class SourceLayout:
    """What a safetensors file is made of: header bytes verbatim + tensor table."""

    header_bytes: bytes  # the JSON exactly as stored, padding included
    data_offset: int  # 8 + len(header_bytes)
    file_size: int
    tensors: tuple[TensorEntry, ...]  # sorted by begin

    @property
    def data_size(self) -> int:
        return self.file_size - self.data_offset


def parse_header(header_bytes: bytes, data_size: int) -> tuple[TensorEntry, ...]:
    """Validate a safetensors JSON header against the data size; return tensors by offset."""
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"safetensors header is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    names: set[str] = set()

    objects = 0

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        nonlocal objects
        objects += 1  # one JSON object per tensor: stop counting past the cap, not after parsing them all
        if objects > MAX_TENSORS + 2:
            raise InputError(f"safetensors header lists more than {MAX_TENSORS:,} entries (the cap)")
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                raise InputError(f"safetensors header names {key!r} twice")
            seen[key] = value
        return seen

    def bounded_int(digits: str) -> int:
        # Offsets and shapes fit in 20 digits; a 5,000-digit number would hit Python's int-digit limit
        # (a ValueError) or cost quadratic time before any check could refuse it.
        if len(digits.lstrip("-")) > 20:
            raise InputError(f"safetensors header holds a {len(digits)}-digit number: no tensor table needs one")
        return int(digits)

    try:
        obj = json.loads(text, object_pairs_hook=no_duplicates, parse_int=bounded_int)
    except json.JSONDecodeError as exc:
        raise InputError(f"safetensors header is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:  # "[[[[…" a hundred thousand deep: json recurses per level
        raise InputError("safetensors header is nested too deeply to be a tensor table") from None
    if not isinstance(obj, dict):
        raise InputError("safetensors header is not a JSON object")
    if len(obj) > MAX_TENSORS:
        raise InputError(f"safetensors header lists {len(obj)} entries (cap {MAX_TENSORS})")
    tensors: list[TensorEntry] = []
    for name, spec in obj.items():
        if name == "__metadata__":
            if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
                raise InputError("safetensors __metadata__ must map strings to strings")
            continue
        if not isinstance(spec, dict):
            raise InputError(f"tensor {name!r}: entry is not an object")
        dtype = spec.get("dtype")
        shape = spec.get("shape")
        offsets = spec.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise InputError(f"tensor {name!r}: unknown dtype {dtype!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InputError(f"tensor {name!r}: shape must be a list of non-negative integers")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise InputError(f"tensor {name!r}: data_offsets must be two integers")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise InputError(
                f"tensor {name!r}: data_offsets [{begin}, {end}] outside the data section (0..{data_size})"
            )
        expected = math.prod(shape) * DTYPE_SIZES[dtype]
        if end - begin != expected:
            raise InputError(
                f"tensor {name!r}: {dtype} {shape} needs {expected} bytes but data_offsets give {end - begin}"
            )
        names.add(name)
        tensors.append(TensorEntry(name, dtype, tuple(shape), begin, end))
    tensors.sort(key=lambda t: (t.begin, t.end))
    for prev, cur in itertools.pairwise(tensors):
        if cur.begin < prev.end:
            raise InputError(f"tensors {prev.name!r} and {cur.name!r} overlap")
    return tuple(tensors)


def read_layout(path: str | os.PathLike[str]) -> SourceLayout:
    """Read and validate the header of a safetensors file (no tensor data is read)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise InputError(f"{p}: too short to be a safetensors file ({size} bytes)")
            if prefix == LMGC_MAGIC:
                raise InputError(f"{p} is an lmgc archive, not a safetensors file: use `lmgc-tui decompress`")
            (n,) = struct.unpack("<Q", prefix)
            if n > MAX_SAFETENSORS_HEADER:
                raise InputError(f"{p}: safetensors header of {n} bytes exceeds the cap of {MAX_SAFETENSORS_HEADER}")
            if 8 + n > size:
                raise InputError(f"{p}: safetensors header length {n} runs past the end of the file ({size} bytes)")
            header = f.read(n)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    try:
        tensors = parse_header(header, size - 8 - n)
    except InputError as exc:  # every input error names the file
        raise InputError(f"{p}: {exc}") from None
    return SourceLayout(header_bytes=header, data_offset=8 + n, file_size=size, tensors=tensors)
