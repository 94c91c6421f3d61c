"""Magic numbers, versions, fixed sizes and safety caps of the .lmgc format v1."""

from __future__ import annotations

from typing import Final

# PNG-style: a non-ASCII first byte catches 7-bit channels, CR LF catches
# newline translation, 0x1A stops `type` on DOS.
MAGIC = b"\x89LMGC\r\n\x1a"
FRAME_MAGIC = b"LMGf"
FOOTER_MAGIC = b"LMGCEND\x00"

MAJOR = 1
# 1.1 added the shuffle+zstd chunk codecs (3, 4); 1.2 the zero-sum filters (header `filters`); 1.3 the fast
# level's context-mixing codec (5)
MINOR = 3

# Preamble flags: a bit a reader does not know makes it refuse the archive (PNG's critical
# chunks): an older reader that ignored what the bit announces would decode wrong bytes.
FLAG_FILTERS = 1  # some tensors are stored filtered (header `filters`, filters.py); format 1.2
FLAG_ROWS = 2  # some flat tensors are coded as rows of an inferred length (header `rows`, rows.py); format 1.3
KNOWN_FLAGS = FLAG_FILTERS | FLAG_ROWS

PREAMBLE_SIZE = 24  # magic 8, major u16, minor u16, flags u32, header_len u32, header_crc u32
# magic 4, chunk u32, codec u8, pad 3, data_offset u64, data_length u64,
# payload_len u32, payload_crc u32, model_bits u32, head_crc u32
FRAME_HEAD_SIZE = 44
FOOTER_SIZE = 32  # index_offset u64, index_len u32, index_crc u32, chunk_count u32, reserved u32, magic 8

# Caps a reader enforces before allocating anything (docs/FORMAT.md, "Limits").
MAX_HEADER_LEN = 128 << 20
MAX_INDEX_LEN = 256 << 20
MAX_PAYLOAD_LEN = 1 << 30
MAX_CHUNKS = 50_000_000


class Codec:
    RAW = 0
    ZSTD = 1
    LM = 2
    SHUFFLE_ZSTD = 3  # byte shuffle by the chunk's value size, then zstd (format 1.1)
    BITSHUFFLE_ZSTD = 4  # bit shuffle by the chunk's value size, then zstd (format 1.1)
    CM_FAST = 5  # float windows by the compiled context-mixing model cm-fast-v1, no LM (format 1.3; cm/)

    NAMES: Final = {
        RAW: "raw",
        ZSTD: "zstd",
        LM: "lm",
        SHUFFLE_ZSTD: "shuffle+zstd",
        BITSHUFFLE_ZSTD: "bitshuffle+zstd",
        CM_FAST: "cm-fast-v1",
    }
    # The oldest format version in which each codec may appear.
    SINCE: Final = {SHUFFLE_ZSTD: (1, 1), BITSHUFFLE_ZSTD: (1, 1), CM_FAST: (1, 3)}
