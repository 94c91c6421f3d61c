"""Magic numbers, versions, fixed sizes and safety caps of the .lmgc format v1."""

from __future__ import annotations

from typing import Final

from lmgc_format.tensors import source

MAGIC: Final = source.LMGC_MAGIC  # the archive's first 8 bytes (source.py says why it is owned there)
FRAME_MAGIC = b"LMGf"
FOOTER_MAGIC = b"LMGCEND\x00"

MAJOR = 1
# 1.1 added the shuffle+zstd chunk codecs (3, 4); 1.2 the zero-sum filters (header `filters`); 1.3 the fast
# level's context-mixing codec (5); 1.4 the compact layout (flag 4) and stored archives (flag 8); 1.5 the
# integer codec cm-ints-v1 (6) and lzma2 (7); 1.6 nothing new to read, but the header says only what the
# chunks use (strict.py: a 1.6 archive gets no leniency for what lmgc <= 0.15 wrote); 1.7 the quick level:
# chunk codec 8 (quick-v1) and the level procedure of that name; 1.8 the fast level's cm-fast-v2: chunk
# codec 9 and the level procedure of that name
MINOR = 8

# Preamble flags: a bit a reader does not know makes it refuse the archive (PNG's critical
# chunks): an older reader that ignored what the bit announces would decode wrong bytes.
FLAG_FILTERS = 1  # some tensors are stored filtered (header `filters`, filters.py); format 1.2
FLAG_ROWS = 2  # some flat tensors are coded as rows of an inferred length (header `rows`, rows.py); format 1.3
# Format 1.4: the compact layout (compact.py: small header and index, no frame heads, a 12-byte tail);
# every new archive sets it, or else FLAG_STORED.
FLAG_COMPACT = 4
# Format 1.4: the original file follows the preamble as it is (nothing could be gained); the preamble's
# header length is 0 and its CRC covers the file.
FLAG_STORED = 8
# Format 1.6: some tensors are stored as differences from a reference file's (header ``x``;
# transforms/reference.py): a reader that ignored it would give back the differences.
FLAG_REFERENCE = 16
KNOWN_FLAGS = FLAG_FILTERS | FLAG_ROWS | FLAG_COMPACT | FLAG_STORED | FLAG_REFERENCE

PREAMBLE_SIZE = 24  # magic 8, major u16, minor u16, flags u32, header_len u32, header_crc u32
# magic 4, chunk u32, codec u8, pad 3, data_offset u64, data_length u64,
# payload_len u32, payload_crc u32, model_bits u32, head_crc u32
FRAME_HEAD_SIZE = 44
FOOTER_SIZE = 32  # index_offset u64, index_len u32, index_crc u32, chunk_count u32, reserved u32, magic 8
TAIL_MAGIC = b"LMGe"
TAIL_SIZE = 12  # compact layout's footer: index_len u32, index_crc u32, magic 4
STORED_OVERHEAD = PREAMBLE_SIZE  # what a stored archive adds to the file: the worst-case expansion
STORED_PROCEDURE = "stored"
# What an LM-level header's ``coder`` says (coder.py's coder, for people); the compact layout leaves it out
# when it is this and a reader puts it back.
LM_CODER: Final = {
    "name": "constriction-range-categorical",
    "quant_bits": 20,
    "quantization": "softmax-f64-floor-plus-one",
}  # the procedure a stored archive's header reads as (no chunk is modelled)
# cm-int-v2 codes an LM chunk as one binary arithmetic stream (intchunk.py, cm/binary.py), not with constriction.
BINARY_LM_CODER: Final = {"name": "binary-arithmetic-32", "probability_bits": 16}
FAST_PROCEDURE = "cm-fast-v1"  # the procedure of an archive no chunk of which needs a model (cm/codec.py's NAME)
# What a classic (1.3) fast-level header's ``coder`` says; the compact layout never writes it.
FAST_CODER: Final = {"name": "binary-arithmetic-32", "probability_bits": 16, "model": FAST_PROCEDURE}
QUICK_PROCEDURE = "quick-v1"  # the quick level's procedure (cm/quick_codec.py's NAME): no model, codec 8
# What a classic-layout quick-level header's ``coder`` says; the compact layout never writes it.
QUICK_CODER: Final = {"name": "rans-static-16", "probability_bits": 12, "model": QUICK_PROCEDURE}
FAST2_PROCEDURE = "cm-fast-v2"  # the fast level's procedure since format 1.8 (cm/fast_v2.py's NAME): codec 9
FAST2_CODER: Final = {"name": "binary-arithmetic-32+rans-static-16", "probability_bits": 16, "model": FAST2_PROCEDURE}
# The procedures of archives with no LM, and what their classic-layout headers' ``coder`` says.
MODEL_FREE_CODERS: Final = {FAST_PROCEDURE: FAST_CODER, QUICK_PROCEDURE: QUICK_CODER, FAST2_PROCEDURE: FAST2_CODER}
# What a model record and an alphabet record may say (lm/models.py's kinds and dtypes, lm/alphabet.py's rules;
# tests/test_strict.py checks they agree): a reader refuses anything else.
MODEL_KINDS: Final = ("packaged", "hf-dir", "gguf")
MODEL_DTYPES: Final = ("float32", "bfloat16")
ALPHABET_RULES: Final = ("ordinary-first", "lowest-id")
HEADS: Final = ("restricted", "full")  # how an LM computed logits over the alphabet; "none" without an LM


def lm_coder(procedure: str) -> dict[str, object]:
    """What the header's ``coder`` says of an LM procedure by default (the compact layout writes it only when
    it is something else)."""
    return dict(BINARY_LM_CODER if procedure.endswith("+cm-int-v2") else LM_CODER)


# The window layout's ranges (docs/FORMAT.md "Limits"): the encoder's options, the CLI's and the reader's.
MAX_WINDOW_BYTES = 1 << 20
MAX_BATCH = 4096
MAX_BYTES_PER_GROUP = 64

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
    CM_INTS = 6  # a plain chunk of an integer tensor by the compiled decision model cm-ints-v1 (format 1.5)
    LZMA2 = 7  # a raw LZMA2 stream, plain or byte-shuffled (format 1.5; container/lzma2.py)
    QUICK = 8  # a chunk's values as planes under static rANS tables, quick-v1 (format 1.7; cm/quick_codec.py)
    CM_FAST2 = 9  # float windows: their top ten bits by cm-fast-v1's model, planes below (format 1.8; cm/fast_v2.py)

    NAMES: Final = {
        RAW: "raw",
        ZSTD: "zstd",
        LM: "lm",
        SHUFFLE_ZSTD: "shuffle+zstd",
        BITSHUFFLE_ZSTD: "bitshuffle+zstd",
        CM_FAST: "cm-fast-v1",
        CM_INTS: "cm-ints-v1",
        LZMA2: "lzma2",
        QUICK: QUICK_PROCEDURE,
        CM_FAST2: FAST2_PROCEDURE,
    }
    # The oldest format version in which each codec may appear.
    SINCE: Final = {
        SHUFFLE_ZSTD: (1, 1),
        BITSHUFFLE_ZSTD: (1, 1),
        CM_FAST: (1, 3),
        CM_INTS: (1, 5),
        LZMA2: (1, 5),
        QUICK: (1, 7),
        CM_FAST2: (1, 8),
    }
    # The codecs that model float windows: only in chunks of float windows, and the ones whose chunks carry
    # model bits in an archive without an LM (reader.py, strict.py, pipeline/tally.py).
    FLOAT_MODELS: Final = (LM, CM_FAST, CM_FAST2)
