"""The fast level's encoder: float chunks by the compiled context-mixing model (cm/), no LM, on threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm.pool import ordered_map
from lmgc_format.container import lzma2
from lmgc_format.container.header import Header
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.events import Started
from lmgc_format.pipeline.compiled_chunks import FastContext, code_fast
from lmgc_format.pipeline.encode_job import EncodeResult, Job, build_header, fast_threads
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES
from lmgc_format.pipeline.ray_tasks import RayTasks
from lmgc_format.pipeline.tally import Tally, read_chunks
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.transforms.reference import Forward


def encode_fast(job: Job) -> EncodeResult:
    """The fast level: float chunks by the compiled context-mixing model (cm/), no LM, on threads."""
    source, layout, opts = job.source, job.layout, job.opts
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
    ctx = FastContext(layout, frozenset(forward.reference), layout.data_size <= lzma2.SMALL_FILES)
    return code_chunks(job, header, plan, forward, code_fast, ctx)


def code_chunks(
    job: Job,
    header: Header,
    plan: list[ChunkPlan],
    forward: Forward,
    code: Callable[[Any, ChunkPlan, bytes], tuple[int, bytes, list[float]]],
    ctx: Any,
) -> EncodeResult:
    """Write the archive of ``header``: every chunk of ``plan`` coded by ``code(ctx, chunk, bytes)``, a
    module-level function (compiled_chunks.py) run on this process's threads, or with ``--ray`` by Ray
    actors (ray_tasks.py); chunks are written in file order. Closes ``forward``."""
    source, layout, opts = job.source, job.layout, job.opts
    job.on_event(Started("encode", str(source), layout.data_size))
    writer = ArchiveWriter(job.target, header, job.overwrite, source if opts.fallback else None)
    tasks: RayTasks | None = None
    try:
        tasks = RayTasks(opts.ray, opts.workers) if opts.ray is not None else None
        remote = tasks.submit if tasks is not None else None

        def run(item: tuple[ChunkPlan, bytes, bytes]) -> tuple[int, bytes, list[float]]:
            return code(ctx, item[0], item[2])

        def submit(item: tuple[ChunkPlan, bytes, bytes]) -> Future[tuple[int, bytes, list[float]]]:
            assert remote is not None
            return remote(code, ctx, item[0], item[2])

        tally = Tally(layout, writer, job.on_event)
        chunks = read_chunks(source, layout, plan, forward, tally)
        workers = tasks.workers if tasks is not None else fast_threads(opts)
        for (chunk, raw, _), (codec, payload, bits) in ordered_map(
            run, chunks, workers, job.cancel, submit if tasks is not None else None
        ):
            tally.add(chunk, raw, codec, payload, bits)
        size, digest = tally.finish(time.monotonic() - job.start)
    except BaseException:
        writer.abort()
        raise
    finally:
        forward.close()
        if tasks is not None:
            tasks.close()
    return tally.result(size, digest, time.monotonic() - job.start)
