"""Chunk codec 7, ``lzma2``: a raw LZMA2 stream (xz's coder without xz's container), for small files.

Long exact repeats (rows of a small quantized matrix that are copies up to sign, packed sign rows, empty
embedding rows) are what LZ77 finds and a context model pays for value by value; on files of a few
kilobytes xz's container (~60 bytes) would eat the gain, so the stream is raw. Payload: one mode byte (0:
the chunk's bytes as they are, 1: byte-shuffled by the chunk's value size, transforms/shuffle.py), then
the LZMA2 stream of preset 9 extreme with a 1 MiB dictionary (docs/FORMAT.md "Frame"). Decoding stops at
the chunk's length plus one byte, whatever the stream claims.
"""

from __future__ import annotations

import lzma

from lmgc_format.errors import CorruptChunkError
from lmgc_format.transforms.shuffle import byte_shuffle, byte_unshuffle

DICT_SIZE = 1 << 20
# The encoders try it on every chunk of files whose data section is at most this large (xz -9e's coder runs
# ~1 MB/s: a second or two at most there; a policy of the encoders, not of the format).
SMALL_FILES = 1 << 20
_ENCODE = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": DICT_SIZE}]
_DECODE = [{"id": lzma.FILTER_LZMA2, "dict_size": DICT_SIZE}]
PLAIN, SHUFFLED = 0, 1


def compress(data: bytes, value_size: int) -> bytes:
    """The smaller of the plain and (for values of more than one byte) the byte-shuffled stream."""
    best = bytes([PLAIN]) + lzma.compress(data, format=lzma.FORMAT_RAW, filters=_ENCODE)
    if value_size > 1:
        shuffled = bytes([SHUFFLED]) + lzma.compress(byte_shuffle(data, value_size), lzma.FORMAT_RAW, filters=_ENCODE)
        if len(shuffled) < len(best):
            best = shuffled
    return best


def decompress(payload: bytes, nbytes: int, value_size: int) -> bytes:
    """The chunk's ``nbytes`` bytes; CorruptChunkError for an unknown mode, a damaged stream, one that holds
    more or less than the chunk, or bytes after its end."""
    if not payload or payload[0] not in (PLAIN, SHUFFLED):
        raise CorruptChunkError("lzma2 payload has an unknown mode")
    d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_DECODE)
    try:
        data = d.decompress(payload[1:], max_length=nbytes + 1)
    except lzma.LZMAError as exc:
        raise CorruptChunkError(f"lzma2 stream is damaged ({exc})") from None
    if len(data) != nbytes or not d.eof or d.unused_data:
        raise CorruptChunkError(f"lzma2 stream does not hold exactly the chunk's {nbytes} bytes")
    return byte_unshuffle(data, value_size) if payload[0] == SHUFFLED else data
