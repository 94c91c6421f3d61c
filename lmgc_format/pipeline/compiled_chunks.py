"""One chunk of the quick and fast levels, coded and decoded by module-level functions: a thread of this
process or a Ray task elsewhere (ray_tasks.py) runs the same code on the same bytes."""

from __future__ import annotations

from dataclasses import dataclass

import zstandard

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm import ints_codec
from lmgc_format.container import lzma2
from lmgc_format.container.constants import FAST2_PROCEDURE, Codec
from lmgc_format.tensors.plan import ChunkPlan, value_size
from lmgc_format.tensors.source import SourceLayout
from lmgc_format.transforms.shuffle import byte_shuffle

FAST_ZSTD_LEVEL = 3  # the fast level's codec for plain chunks (integer tensors, gaps)
QUICK_ZSTD_LEVEL = 1  # the quick level's: gaps, and integer chunks where exact repeats beat the planes' tables


@dataclass(frozen=True)
class FastContext:
    """What the fast level's coding of a chunk needs beyond its bytes."""

    layout: SourceLayout
    reference: frozenset[int]  # tensors stored as differences from a reference (transforms/reference.py)
    small: bool  # the file is small enough for lzma2 (lzma2.SMALL_FILES)
    procedure: str = FAST2_PROCEDURE  # of float chunks: cm-fast-v2 (codec 9) or cm-fast-v1 (codec 5)


def code_fast(ctx: FastContext, chunk: ChunkPlan, stored: bytes) -> tuple[int, bytes, list[float]]:
    """The smallest of the context-mixing codec (float chunks), the integer codec (chunks of integer
    tensors; float chunks that are mostly zeros), zstd, byte shuffle + zstd and raw.
    The zstd passes cost ~4 % of the encode time (a 19 MB SmolLM2 gradient, 2 threads) and win where
    long runs repeat: an embedding's gradient or Adam state whose rows are mostly exact zeros
    (BENCHMARKS.md "Corpus"), which the codec pays for value by value."""
    layout = ctx.layout
    options: list[tuple[int, bytes, list[float]]] = [(Codec.RAW, stored, [])]
    zstd = zstandard.ZstdCompressor(level=FAST_ZSTD_LEVEL)
    options.append((Codec.ZSTD, zstd.compress(stored), []))
    size = value_size(chunk, layout)
    if size > 1:
        options.append((Codec.SHUFFLE_ZSTD, zstd.compress(byte_shuffle(stored, size)), []))
    if chunk.lm and ctx.procedure == FAST2_PROCEDURE:
        from lmgc_format.cm import fast_v2  # numba loads with the first chunk that needs it

        coded = fast_v2.encode_chunk(chunk, layout, stored)
        if coded is not None:
            options.append((Codec.CM_FAST2, *coded))
    elif chunk.lm:
        item_sizes = [t.item_size for t in layout.tensors]
        coded = cm_codec.encode(chunk.windows, chunk.begin, stored, item_sizes)
        if coded is not None:
            options.append((Codec.CM_FAST, *coded))
    # the differences from a reference are small integers: mode 3 codes them as such (cm/ints_codec.py)
    against = chunk.lm and all(w.tensor in ctx.reference for w in chunk.windows)
    ints = ints_codec.encode_chunk(chunk, layout, stored, any_floats=against)
    if ints is not None:
        options.append((Codec.CM_INTS, ints, []))
    if ctx.small:
        options.append((Codec.LZMA2, lzma2.compress(stored, size), []))
    return min(options, key=lambda o: (len(o[1]), o[0]))


def code_quick(layout: SourceLayout, chunk: ChunkPlan, stored: bytes) -> tuple[int, bytes, list[float]]:
    """quick-v1 (zstd -1 beside it on chunks of integers and gaps), or raw where nothing is smaller."""
    from lmgc_format.cm import quick_codec  # numba loads with the first chunk that needs it

    options: list[tuple[int, bytes]] = [(Codec.RAW, stored)]
    planes = quick_codec.encode_chunk(chunk, layout, stored)
    if planes is not None:
        options.append((Codec.QUICK, planes))
    if planes is None or not chunk.lm:
        zstd = zstandard.ZstdCompressor(level=QUICK_ZSTD_LEVEL)
        size = value_size(chunk, layout)
        shuffled = size > 1
        packed = zstd.compress(byte_shuffle(stored, size) if shuffled else stored)
        options.append((Codec.SHUFFLE_ZSTD if shuffled else Codec.ZSTD, packed))
    codec, payload = min(options, key=lambda o: (len(o[1]), o[0]))
    return codec, payload, []


def decode_compiled(codec: int, chunk: ChunkPlan, layout: SourceLayout, payload: bytes) -> bytes:
    """A chunk of a compiled codec (cm-fast-v1, cm-fast-v2, cm-ints-v1, quick-v1); CorruptChunkError where
    the payload is not one its encoder writes."""
    if codec == Codec.CM_FAST2:
        from lmgc_format.cm import fast_v2

        return fast_v2.decode_chunk(chunk, layout, payload)
    if codec == Codec.CM_INTS:
        return ints_codec.decode_chunk(chunk, layout, payload)
    if codec == Codec.QUICK:
        from lmgc_format.cm import quick_codec

        return quick_codec.decode_chunk(chunk, layout, payload)
    item_sizes = [t.item_size for t in layout.tensors]
    return cm_codec.decode(chunk.windows, chunk.begin, payload, chunk.nbytes, item_sizes)
