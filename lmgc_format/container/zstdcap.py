"""zstd decompression that never produces more than asked for.

A zstd frame may declare its content size, and python-zstandard's one-shot
``decompress`` then allocates and fills that size whatever ``max_output_size``
says: a crafted 1 KB chunk declaring 1 GiB cost a second of work and 1 GiB of
memory before the length check could refuse it. Reading from a stream reader
stops at the cap instead.
"""

from __future__ import annotations

import zstandard

_PIECE = 1 << 20


def decompress_at_most(payload: bytes, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``payload``'s content: one more than allowed tells the caller that
    the frame holds too much (it raises ``zstandard.ZstdError`` for damage)."""
    with zstandard.ZstdDecompressor().stream_reader(payload) as reader:
        out = bytearray()
        while len(out) <= limit:
            # read() allocates what it is asked for: ask in pieces, not for the whole cap at once
            piece = reader.read(min(limit + 1 - len(out), _PIECE))
            if not piece:
                break
            out += piece
    return bytes(out)
