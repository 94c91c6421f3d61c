"""How a file is cut before coding: the chunk plan, the zero-sum filters worth keeping and the row
lengths of flat tensors, chosen by reading the file once before the header is written."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm import ints_codec
from lmgc_format.errors import UnsupportedError
from lmgc_format.pipeline.encode_job import EncodeOptions
from lmgc_format.tensors.plan import ChunkPlan, Window, plan_chunks
from lmgc_format.tensors.source import LM_DTYPES, SourceLayout, TensorEntry
from lmgc_format.transforms.filters import ForwardFilter, TensorFilter, choose_filters, mark_plan
from lmgc_format.transforms.reference import (
    Cost,
    Forward,
    ReferenceDelta,
    choose,
    digest,
    open_reference,
    pairs,
    shuffle_zstd_cost,
)
from lmgc_format.transforms.rows import MIN_VALUES, SAMPLE_VALUES, TRIAL_VALUES, candidate_rows, exponent_fields


def plan_for(
    source: str | os.PathLike[str],
    layout: SourceLayout,
    opts: EncodeOptions,
    infer_rows: bool = True,
    cost: Cost | None = None,
) -> tuple[list[ChunkPlan], Forward, tuple[tuple[int, int], ...]]:
    """The chunk plan, what the codecs see (the zero-sum filters worth keeping for this file, none when
    ``opts.filters`` is off, filters.py; with ``opts.reference``, the tensors that code smaller as differences
    from it, reference.py) and the row lengths found for flat tensors (rows.py; header ``rows``), the
    plan's windows marked where a filter stores distances. Reads every float tensor before the
    header is written: once for the filters, and flat ones once more for their rows (``infer_rows``: the
    rows are tried with the fast level's model; the quick level does not look; ``cost``: what the level's
    codecs make of a sample, for the reference's trial, the fast level's by default). The caller closes the
    returned Forward (it holds the reference file open)."""
    if opts.reference and (opts.bytes_per_group or opts.plain_chunk_bytes % 8):
        raise UnsupportedError(
            "--reference codes whole values: it needs groups of the values' size (bytes per group 0) and "
            "plain chunks of a multiple of 8 bytes"
        )
    with open(source, "rb") as f:

        def read(offset: int, size: int) -> bytes:
            f.seek(layout.data_offset + offset)
            data = f.read(size)
            if len(data) != size:
                raise UnsupportedError(f"{source} changed while being read")
            return data

        rows = flat_rows(layout, read) if opts.bytes_per_group == 0 and infer_rows else ()
        plan = plan_chunks(
            layout, opts.window_bytes, opts.batch, opts.bytes_per_group, opts.plain_chunk_bytes, dict(rows)
        )
        offsets, sha = _reference(layout, read, opts.reference, cost or _sample_cost)
        filters: tuple[TensorFilter, ...] = ()
        words: dict[int, np.ndarray] = {}
        if opts.filters:
            filters, words = choose_filters(layout, read, opts.bytes_per_group)
            filters = tuple(
                f for f in filters if f.tensor not in offsets
            )  # a tensor is filtered or coded against the reference
    against = ReferenceDelta(layout, Path(opts.reference), offsets) if opts.reference and offsets else None
    forward = Forward(ForwardFilter(layout, filters, words), against, sha)
    return mark_plan(plan, layout, filters), forward, rows


def _reference(
    layout: SourceLayout, read: Callable[[int, int], bytes], reference: str | None, cost: Cost
) -> tuple[dict[int, int], bytes]:
    """The tensors worth coding against ``reference`` (tensor -> its reference offset) and the SHA-256 the
    archive records of them."""
    if reference is None:
        return {}, b""
    path, ref_layout = open_reference(reference)
    with open(path, "rb") as ref:
        offsets = choose(layout, read, ref, pairs(layout, ref_layout), cost)
        return offsets, digest(ref, layout, offsets) if offsets else b""


def _cm_cost(sample: bytes, group: int, row: int) -> int | None:
    """Bytes the fast level's context-mixing model spends on ``sample`` as one window of ``group``-byte
    values, ``row`` of them a step along the first axis (0: no grid); None where it does not code it."""
    coded = cm_codec.encode([Window(0, 0, len(sample), group, 0, row, -1)], 0, sample, [group])
    return len(coded[0]) if coded is not None else None


def _sample_cost(sample: bytes, t: TensorEntry, against: bool) -> int:
    """What the fast level's codecs make of a sample of tensor ``t``: the smallest of byte shuffle + zstd and,
    for floats, the context-mixing model (as one window, the tensor's rows: cm/codec.py) and, for
    differences from a reference, the integer model (cm/ints_codec.py mode 3, as encode_fast.py tries it)."""
    best = shuffle_zstd_cost(sample, t)
    if t.dtype in LM_DTYPES:
        g = t.item_size
        row = math.prod(t.shape[1:]) if len(t.shape) >= 2 else 0  # groups a step along the first axis
        coded = _cm_cost(sample, g, row)
        if coded is not None:
            best = min(best, coded)
        if against:
            best = min(best, ints_codec.floats_cost(sample, g, (len(sample) // g // max(row, 1), max(row, 1))))
    return best


def quick_sample_cost(sample: bytes, t: TensorEntry, _against: bool) -> int:
    """What the quick level's codecs make of a sample of tensor ``t`` (plain, or differences from a
    reference: the same coders): the smaller of quick-v1 and byte shuffle + zstd."""
    from lmgc_format.cm import quick_codec

    best = shuffle_zstd_cost(sample, t)
    if t.dtype in quick_codec.FIELDS and len(sample) % t.item_size == 0:
        best = min(best, len(quick_codec.encode(sample, t.dtype)))
    return best


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
            coded = _cm_cost(sample, g, row)
            return coded if coded is not None else len(sample)

        base = cost(0)
        best_cost, best = min((cost(r), r) for r in candidates)
        if best_cost <= base * 0.995:
            found.append((ti, best))
    return tuple(found)
