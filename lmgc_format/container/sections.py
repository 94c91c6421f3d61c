"""msgpack sections (header and index): packing, and unpacking that trusts nothing.

No ext types, no object hooks, string map keys only, every container and
string bounded; the schema is then checked field by field so the rest of the
code can rely on types.
"""

from __future__ import annotations

from typing import Any

import msgpack

from lmgc_format.errors import FormatError


def pack(obj: dict[str, Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(raw: bytes, what: str) -> dict[str, Any]:
    limit = len(raw)
    try:
        obj = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=limit,
            max_str_len=min(limit, 1 << 20),
            max_array_len=limit,
            max_map_len=min(limit, 1 << 16),
            max_ext_len=0,
        )
    except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError, TypeError) as exc:
        raise FormatError(f"{what} is not valid msgpack: {str(exc) or type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise FormatError(f"{what} is not a msgpack map")
    return obj


def field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """Fetch ``obj[key]`` and check its type (bool is not accepted as int)."""
    if key not in obj:
        raise FormatError(f"{what}: field {key!r} missing")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise FormatError(f"{what}: field {key!r} has the wrong type")
    if not isinstance(value, kinds):
        raise FormatError(f"{what}: field {key!r} has the wrong type ({type(value).__name__})")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise FormatError(f"{what}: field {key!r} is negative")
    return value
