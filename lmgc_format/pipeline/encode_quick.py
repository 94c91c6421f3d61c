"""The quick level's encoder: every chunk's values as planes under static rANS tables (cm/quick_codec.py),
on threads, at hundreds of MB/s; no trial of the slow models, no filters, no row search."""

from __future__ import annotations

from dataclasses import replace

from lmgc_format.container.constants import QUICK_CODER, QUICK_PROCEDURE
from lmgc_format.errors import UnsupportedError
from lmgc_format.pipeline.compiled_chunks import code_quick
from lmgc_format.pipeline.encode_fast import code_chunks
from lmgc_format.pipeline.encode_job import EncodeResult, Job, build_header
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES


def encode_quick(job: Job) -> EncodeResult:
    """The quick level: the fast level's chunks, each coded by quick-v1 (zstd -1 beside it on chunks of
    integers and gaps, raw where nothing is smaller)."""
    source, layout, opts = job.source, job.layout, job.opts
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
    return code_chunks(job, header, plan, forward, code_quick, layout)
