"""The fast level's encoder: float chunks by the compiled context-mixing model (cm/), no LM, on threads."""

from __future__ import annotations

import time
from dataclasses import replace

import zstandard

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm import ints_codec
from lmgc_format.cm.pool import ordered_map
from lmgc_format.container import lzma2
from lmgc_format.container.constants import Codec
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.events import Started
from lmgc_format.pipeline.encode_job import EncodeResult, Job, build_header, fast_threads
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES
from lmgc_format.pipeline.tally import Tally, read_chunks
from lmgc_format.tensors.plan import ChunkPlan, value_size
from lmgc_format.transforms.shuffle import byte_shuffle

FAST_ZSTD_LEVEL = 3  # the fast level's codec for plain chunks (integer tensors, gaps)


def encode_fast(job: Job) -> EncodeResult:
    """The fast level: float chunks by the compiled context-mixing model (cm/), no LM, on threads."""
    source, target, layout, opts = job.source, job.target, job.layout, job.opts
    overwrite, on_event, cancel, start = job.overwrite, job.on_event, job.cancel, job.start
    fast = replace(opts, window_bytes=FAST_WINDOW_BYTES, batch=FAST_BATCH, bytes_per_group=0, byte_order="msb_first")
    plan, forward, rows = plan_for(source, layout, fast)
    header = build_header(
        layout,
        fast,
        forward,
        rows,
        head="none",
        procedure=cm_codec.NAME,
        model=None,
        alphabet=None,
        device="cpu",
        coder=dict(cm_codec.CODER),
    )
    on_event(Started("encode", str(source), layout.data_size))
    item_sizes = [t.item_size for t in layout.tensors]
    small = layout.data_size <= lzma2.SMALL_FILES  # long exact repeats: what lzma2 finds, the models pay for
    writer = ArchiveWriter(target, header, overwrite, source if opts.fallback else None)

    def code(item: tuple[ChunkPlan, bytes, bytes]) -> tuple[int, bytes, list[float]]:
        """The smallest of the context-mixing codec (float chunks), the integer codec (chunks of integer
        tensors; float chunks that are mostly zeros), zstd, byte shuffle + zstd and raw.
        The zstd passes cost ~4 % of the encode time (a 19 MB SmolLM2 gradient, 2 threads) and win where
        long runs repeat: an embedding's gradient or Adam state whose rows are mostly exact zeros
        (BENCHMARKS.md "Corpus"), which the codec pays for value by value."""
        chunk, _, stored = item
        options: list[tuple[int, bytes, list[float]]] = [(Codec.RAW, stored, [])]
        zstd = zstandard.ZstdCompressor(level=FAST_ZSTD_LEVEL)
        options.append((Codec.ZSTD, zstd.compress(stored), []))
        size = value_size(chunk, layout)
        if size > 1:
            options.append((Codec.SHUFFLE_ZSTD, zstd.compress(byte_shuffle(stored, size)), []))
        if chunk.lm:
            coded = cm_codec.encode(chunk.windows, chunk.begin, stored, item_sizes)
            if coded is not None:
                options.append((Codec.CM_FAST, *coded))
        # the differences from a reference are small integers: mode 3 codes them as such (cm/ints_codec.py)
        against = chunk.lm and all(w.tensor in forward.reference for w in chunk.windows)
        ints = ints_codec.encode_chunk(chunk, layout, stored, any_floats=against)
        if ints is not None:
            options.append((Codec.CM_INTS, ints, []))
        if small:
            options.append((Codec.LZMA2, lzma2.compress(stored, size), []))
        return min(options, key=lambda o: (len(o[1]), o[0]))

    try:
        tally = Tally(layout, writer, on_event)
        chunks = read_chunks(source, layout, plan, forward, tally)
        for (chunk, raw, _), (codec, payload, bits) in ordered_map(code, chunks, fast_threads(opts), cancel):
            tally.add(chunk, raw, codec, payload, bits)
        size, digest = tally.finish(time.monotonic() - start)
    except BaseException:
        writer.abort()
        raise
    finally:
        forward.close()
    return tally.result(size, digest, time.monotonic() - start)
