"""The quick level's encoder: every chunk's values as planes under static rANS tables (cm/quick_codec.py),
on threads, at hundreds of MB/s; no trial of the slow models, no filters, no row search."""

from __future__ import annotations

from dataclasses import replace

from lmgc_format.container.constants import QUICK_CODER, QUICK_PROCEDURE
from lmgc_format.pipeline.compiled_chunks import code_quick
from lmgc_format.pipeline.encode_fast import code_chunks
from lmgc_format.pipeline.encode_job import EncodeResult, Job, build_header
from lmgc_format.pipeline.file_plan import plan_for, quick_sample_cost
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES


def encode_quick(job: Job) -> EncodeResult:
    """The quick level: the fast level's chunks, each coded by quick-v1 (zstd -1 beside it on chunks of
    integers and gaps, raw where nothing is smaller); with a reference, the tensors whose differences from
    it code smaller by these codecs are stored as differences (transforms/reference.py)."""
    source, layout, opts = job.source, job.layout, job.opts
    quick = replace(
        opts, window_bytes=FAST_WINDOW_BYTES, batch=FAST_BATCH, bytes_per_group=0, byte_order="msb_first", filters=False
    )
    plan, forward, rows = plan_for(source, layout, quick, infer_rows=False, cost=quick_sample_cost)
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
