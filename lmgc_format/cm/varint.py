"""LEB128 varints (7 bits a byte, low first, the high bit set on every byte but the last): the lengths and
row lengths inside cm-int-v1 (lm/intchunk.py) and cm-ints-v1 (ints_codec.py) payloads."""

from __future__ import annotations

from lmgc_format.errors import CorruptChunkError


def write(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read(data: bytes, at: int, max_bytes: int, what: str) -> tuple[int, int]:
    """(value, offset after it) of a varint of at most ``max_bytes`` bytes (a value below 2**(7 * max_bytes));
    CorruptChunkError saying ``what`` when it runs longer or past the end."""
    n = shift = 0
    for i in range(at, min(at + max_bytes, len(data))):
        n |= (data[i] & 0x7F) << shift
        shift += 7
        if not data[i] & 0x80:
            return n, i + 1
    raise CorruptChunkError(what)
