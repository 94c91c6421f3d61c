"""How a file is cut before coding: the chunk plan, the zero-sum filters worth keeping and the row
lengths of flat tensors, chosen by reading the file once before the header is written."""

from __future__ import annotations

import os
from collections.abc import Callable

from lmgc_format.cm import codec as cm_codec
from lmgc_format.errors import UnsupportedError
from lmgc_format.pipeline.encode_job import EncodeOptions
from lmgc_format.tensors.plan import ChunkPlan, Window, plan_chunks
from lmgc_format.tensors.source import LM_DTYPES, SourceLayout
from lmgc_format.transforms.filters import ForwardFilter, choose_filters, mark_plan
from lmgc_format.transforms.rows import MIN_VALUES, SAMPLE_VALUES, TRIAL_VALUES, candidate_rows, exponent_fields


def plan_for(
    source: str | os.PathLike[str], layout: SourceLayout, opts: EncodeOptions
) -> tuple[list[ChunkPlan], ForwardFilter, tuple[tuple[int, int], ...]]:
    """The chunk plan, the zero-sum filters worth keeping for this file (none when ``opts.filters``
    is off; filters.py) and the row lengths found for flat tensors (rows.py; header ``rows``), the
    plan's windows marked where a filter stores distances. Reads every float tensor before the
    header is written: once for the filters, and flat ones once more for their rows."""
    with open(source, "rb") as f:

        def read(offset: int, size: int) -> bytes:
            f.seek(layout.data_offset + offset)
            data = f.read(size)
            if len(data) != size:
                raise UnsupportedError(f"{source} changed while being read")
            return data

        rows = flat_rows(layout, read) if opts.bytes_per_group == 0 else ()
        plan = plan_chunks(
            layout, opts.window_bytes, opts.batch, opts.bytes_per_group, opts.plain_chunk_bytes, dict(rows)
        )
        if not opts.filters:
            return plan, ForwardFilter(layout, (), {}), rows
        filters, words = choose_filters(layout, read, opts.bytes_per_group)
    return mark_plan(plan, layout, filters), ForwardFilter(layout, filters, words), rows


def flat_rows(layout: SourceLayout, read: Callable[[int, int], bytes]) -> tuple[tuple[int, int], ...]:
    """Row lengths of flat float tensors that code smaller as rows: for each 1-D tensor, the candidates
    the exponents' autocorrelation suggests (rows.py), each tried with the fast level's model on a
    sample; one is kept when it saves at least 0.5 % of the sample."""
    found = []
    for ti, t in enumerate(layout.tensors):
        if t.dtype not in LM_DTYPES or len(t.shape) != 1 or t.shape[0] < MIN_VALUES:
            continue
        g = t.item_size
        head = read(t.begin, min(t.nbytes, SAMPLE_VALUES * g))
        candidates = [r for r in candidate_rows(exponent_fields(head, g)) if r <= t.shape[0] // 2]
        if not candidates:
            continue
        sample = head[: TRIAL_VALUES * g]

        def cost(row: int, sample: bytes = sample, g: int = g) -> int:
            coded = cm_codec.encode([Window(0, 0, len(sample), g, 0, row, -1)], 0, sample, [g])
            return len(coded[0]) if coded is not None else len(sample)

        base = cost(0)
        best_cost, best = min((cost(r), r) for r in candidates)
        if best_cost <= base * 0.995:
            found.append((ti, best))
    return tuple(found)
