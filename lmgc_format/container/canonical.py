"""A safetensors header as its writer would produce it, so an archive can store the tensor table
instead of the JSON (format 1.4, docs/FORMAT.md "The source description").

safetensors' own writer (the Rust crate behind ``safetensors.torch.save_file`` and friends) emits
compact JSON: ``__metadata__`` first when there is any, then every tensor in data order as
``{"dtype":…,"shape":[…],"data_offsets":[begin,end]}`` with offsets that follow each other from 0,
no spaces, non-ASCII as UTF-8, then spaces up to a multiple of 8 bytes. ``rebuild`` writes exactly
that from a table; ``table_of`` returns the table only when rebuilding gives back the very bytes,
so an archive never depends on this guess being right: a header written any other way is stored.
"""

from __future__ import annotations

import json
from typing import Any

from lmgc_format.tensors.source import DTYPE_SIZES

# One entry per tensor, in data order: [name, dtype, shape]
Table = list[list[Any]]


def rebuild(table: Table, metadata: dict[str, str] | None) -> bytes:
    """The safetensors JSON header (with its padding) of ``table``; offsets from dtypes and shapes."""
    obj: dict[str, Any] = {}
    if metadata is not None:
        obj["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape in table:
        count = 1
        for n in shape:
            count *= n
        end = offset + count * DTYPE_SIZES[dtype]
        obj[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def table_of(header_json: bytes) -> tuple[Table, dict[str, str] | None] | None:
    """(table, metadata) when ``rebuild`` gives back ``header_json`` byte for byte, else None."""
    try:
        obj = json.loads(header_json)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    metadata = obj.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        return None
    try:
        specs = sorted(obj.items(), key=lambda kv: kv[1]["data_offsets"][0])
        table: Table = [[name, spec["dtype"], list(spec["shape"])] for name, spec in specs]
        if rebuild(table, metadata) != header_json:
            return None
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    return table, metadata
