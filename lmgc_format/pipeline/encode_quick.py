"""The quick level's encoder: every chunk's values as planes under static rANS tables (cm/quick_codec.py),
on threads, at hundreds of MB/s; no trial of the slow models, no filters, no row search."""

from __future__ import annotations

from lmgc_format.container.constants import QUICK_PROCEDURE
from lmgc_format.pipeline.compiled_chunks import code_quick
from lmgc_format.pipeline.encode_fast import code_chunks, model_free_header, model_free_options
from lmgc_format.pipeline.encode_job import EncodeResult, Job
from lmgc_format.pipeline.file_plan import plan_for, quick_sample_cost


def encode_quick(job: Job) -> EncodeResult:
    """The quick level: the fast level's chunks, each coded by quick-v1 (zstd -1 beside it on chunks of
    integers and gaps, raw where nothing is smaller); with a reference, the tensors whose differences from
    it code smaller by these codecs are stored as differences (transforms/reference.py)."""
    quick = model_free_options(job.opts, filters=False)
    plan, forward, rows = plan_for(job.source, job.layout, quick, infer_rows=False, cost=quick_sample_cost)
    header = model_free_header(job.layout, quick, forward, rows, QUICK_PROCEDURE)
    return code_chunks(job, header, plan, forward, code_quick, job.layout)
