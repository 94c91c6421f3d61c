"""zstd decompression that never produces more than asked for, of exactly one frame.

A zstd frame may declare its content size, and python-zstandard's one-shot
``decompress`` then allocates and fills that size whatever ``max_output_size``
says: a crafted 1 KB chunk declaring 1 GiB cost a second of work and 1 GiB of
memory before the length check could refuse it. Reading from a stream reader
stops at the cap instead.

docs/FORMAT.md says a zstd payload is one frame. A stream reader stops after
the first frame and would let a second one, a skippable frame before it, or
bytes after it pass unseen: :func:`one_frame` refuses them, so the same bytes
cannot mean one thing here and another to a reader that reads across frames.
"""

from __future__ import annotations

import zstandard

from lmgc_format.errors import FormatError

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


def one_frame(payload: bytes, limit: int, what: str, content_size: int | None = None) -> bytes:
    """The content of ``payload``, which must be exactly one zstd frame (no skippable frame, nothing after
    it) of at most ``limit`` bytes; with ``content_size``, the frame must declare that size in its header.
    Raises ``FormatError`` naming ``what``, ``zstandard.ZstdError`` for a damaged frame."""
    if payload[:4] != zstandard.FRAME_HEADER:
        raise FormatError(f"{what} is not a zstd frame (a skippable or foreign frame comes first)")
    if content_size is not None:
        declared = zstandard.get_frame_parameters(payload).content_size
        if declared == zstandard.CONTENTSIZE_UNKNOWN:
            raise FormatError(f"{what}: its zstd frame does not declare its content size")
        if declared != content_size:
            raise FormatError(f"{what}: its zstd frame declares {declared:,} bytes, the chunk holds {content_size:,}")
    data = decompress_at_most(payload, limit)
    if len(data) > limit:
        raise FormatError(f"{what} decompresses past {limit:,} bytes")
    # The content is known to be at most ``limit`` bytes: a second pass finds where the frame ends.
    rest = zstandard.ZstdDecompressor().decompressobj()
    rest.decompress(payload)
    if not rest.eof:
        raise FormatError(f"{what}: its zstd frame is cut short")
    if rest.unused_data:
        raise FormatError(f"{what} holds {len(rest.unused_data):,} bytes after its zstd frame (one frame only)")
    return data
