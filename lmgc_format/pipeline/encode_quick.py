"""The quick level's encoder: every chunk's values as planes under static rANS tables (cm/quick_codec.py),
on threads, at hundreds of MB/s; no trial of the slow models, no filters, no row search."""

from __future__ import annotations

import time
from dataclasses import replace

import zstandard

from lmgc_format.cm import quick_codec
from lmgc_format.cm.pool import ordered_map
from lmgc_format.container.constants import QUICK_CODER, QUICK_PROCEDURE, Codec
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.errors import UnsupportedError
from lmgc_format.events import Started
from lmgc_format.pipeline.encode_job import EncodeResult, Job, build_header, fast_threads
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES
from lmgc_format.pipeline.tally import Tally, read_chunks
from lmgc_format.tensors.plan import ChunkPlan, value_size
from lmgc_format.transforms.shuffle import byte_shuffle

QUICK_ZSTD_LEVEL = 1  # gaps, and integer chunks where exact repeats beat the planes' tables


def encode_quick(job: Job) -> EncodeResult:
    """The quick level: the fast level's chunks, each coded by quick-v1 (zstd -1 beside it on chunks of
    integers and gaps, raw where nothing is smaller)."""
    source, target, layout, opts = job.source, job.target, job.layout, job.opts
    if opts.reference:
        raise UnsupportedError("--reference is coded by the fast and max levels; the quick level codes files alone")
    quick = replace(
        opts, window_bytes=FAST_WINDOW_BYTES, batch=FAST_BATCH, bytes_per_group=0, byte_order="msb_first", filters=False
    )
    plan, forward, rows = plan_for(source, layout, quick, infer_rows=False)
    header = build_header(
        layout,
        quick,
        forward,
        rows,
        head="none",
        procedure=QUICK_PROCEDURE,
        model=None,
        alphabet=None,
        device="cpu",
        coder=dict(QUICK_CODER),
    )
    job.on_event(Started("encode", str(source), layout.data_size))
    writer = ArchiveWriter(target, header, job.overwrite, source if opts.fallback else None)

    def code(item: tuple[ChunkPlan, bytes, bytes]) -> tuple[int, bytes, list[float]]:
        chunk, _, stored = item
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

    try:
        tally = Tally(layout, writer, job.on_event)
        chunks = read_chunks(source, layout, plan, forward, tally)
        for (chunk, raw, _), (codec, payload, bits) in ordered_map(code, chunks, fast_threads(opts), job.cancel):
            tally.add(chunk, raw, codec, payload, bits)
        size, digest = tally.finish(time.monotonic() - job.start)
    except BaseException:
        writer.abort()
        raise
    finally:
        forward.close()
    return tally.result(size, digest, time.monotonic() - job.start)
