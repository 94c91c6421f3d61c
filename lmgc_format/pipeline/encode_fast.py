"""The fast level's encoder: float chunks by the compiled context-mixing model (cm/), no LM, on threads."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from lmgc_format.cm.pool import ordered_map
from lmgc_format.container import lzma2
from lmgc_format.container.constants import MODEL_FREE_CODERS
from lmgc_format.container.header import Header
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.events import Started
from lmgc_format.pipeline.compiled_chunks import FastContext, code_fast
from lmgc_format.pipeline.encode_job import EncodeOptions, EncodeResult, Job, build_header, fast_threads
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES
from lmgc_format.pipeline.ray_tasks import RayTasks
from lmgc_format.pipeline.tally import Tally, read_chunks
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.tensors.source import SourceLayout
from lmgc_format.transforms.reference import Forward


def encode_fast(job: Job) -> EncodeResult:
    """The fast level: float chunks by the compiled context-mixing model (cm/, cm-fast-v2 unless the options
    ask for cm-fast-v1), no LM, on threads."""
    fast = model_free_options(job.opts)
    plan, forward, rows = plan_for(job.source, job.layout, fast)
    procedure = job.opts.fast_procedure
    header = model_free_header(job.layout, fast, forward, rows, procedure)
    small = job.layout.data_size <= lzma2.SMALL_FILES
    ctx = FastContext(job.layout, frozenset(forward.reference), small, procedure)
    return code_chunks(job, header, plan, forward, code_fast, ctx)


def model_free_options(opts: EncodeOptions, **changes: Any) -> EncodeOptions:
    """``opts`` with the window layout of the levels without a model (quick, fast): large windows, whole
    values, bytes in their order."""
    return replace(
        opts, window_bytes=FAST_WINDOW_BYTES, batch=FAST_BATCH, bytes_per_group=0, byte_order="msb_first", **changes
    )


def model_free_header(
    layout: SourceLayout,
    opts: EncodeOptions,
    forward: Forward,
    rows: tuple[tuple[int, int], ...],
    procedure: str,
) -> Header:
    """The header of an archive of ``procedure`` (quick-v1, cm-fast-v1, cm-fast-v2): no model, no head, the
    procedure's coder record (constants.MODEL_FREE_CODERS)."""
    return build_header(
        layout,
        opts,
        forward,
        rows,
        head="none",
        procedure=procedure,
        model=None,
        alphabet=None,
        device="cpu",
        coder=dict(MODEL_FREE_CODERS[procedure]),
    )


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

        def run(item: tuple[ChunkPlan, bytes, bytes]) -> tuple[int, bytes, list[float]]:
            return code(ctx, item[0], item[2])

        def remote(item: tuple[ChunkPlan, bytes, bytes]) -> Future[tuple[int, bytes, list[float]]]:
            assert tasks is not None
            return tasks.submit(code, ctx, item[0], item[2])

        tally = Tally(layout, writer, job.on_event)
        chunks = read_chunks(source, layout, plan, forward, tally)
        workers = tasks.workers if tasks is not None else fast_threads(opts)
        for (chunk, raw, _), (codec, payload, bits) in ordered_map(
            run, chunks, workers, job.cancel, remote if tasks is not None else None
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
