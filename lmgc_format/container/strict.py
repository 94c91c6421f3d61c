"""The strict reader's consistency rules (docs/FORMAT.md "Conformance", "What a reader refuses").

Decoding needs only some of an archive's fields; the others (the procedure's name when no chunk needs
it, a model record no chunk uses, the index's counters) were read and ignored, so a damaged or forged
archive could say things no writer says and still pass, and a second implementation could read the
same bytes another way. Here every such field must agree with the chunks, as PNG's and zstd's readers
insist: what the header names, a chunk uses; what a chunk uses, the header names; the counters fit the
payloads. Each refusal is one line that names the field.

Two forms that lmgc 0.1-0.15 wrote are read in archives of format <= 1.5 (LEGACY), so no archive a
user holds stops decoding: an LM level run on a file with no float tensor recorded the LM engine's
name ``lockstep-kv-v1`` and no model; and an LM level whose every LM chunk lost to zstd or raw kept
its model record and token count. From format 1.6 the writer records ``cm-fast-v1`` and no model
for both (pipeline/encode_lm.py, container/writer.py), and a reader refuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from lmgc_format.container.constants import (
    ALPHABET_RULES,
    FAST2_PROCEDURE,
    FAST_PROCEDURE,
    HEADS,
    MODEL_DTYPES,
    MODEL_FREE_CODERS,
    MODEL_KINDS,
    QUICK_PROCEDURE,
    STORED_PROCEDURE,
    Codec,
    lm_coder,
)
from lmgc_format.container.header import Header, Index
from lmgc_format.container.procedures import check_procedure
from lmgc_format.errors import FormatError
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.tensors.serialize import DEFAULT_BYTE_ORDER, DEFAULT_SCHEME
from lmgc_format.tensors.source import SourceLayout

LEGACY = (1, 5)  # the newest format whose archives may hold the two forms of lmgc <= 0.15 above
LEGACY_ENGINE = "lockstep-kv-v1"  # what lmgc <= 0.15 recorded for an LM level with nothing to model
# The most ideal bits a model may assign to one byte of a chunk: the LM codes at most 5 symbols a byte
# (a 1-byte group in the ``0x`` scheme: ``0xAB,``) at most 20 bits each (20-bit quantization), the top
# byte 8 binary decisions at most 16 bits each (16-bit probabilities): 228 < 256.
MAX_MODEL_BITS_PER_BYTE = 256


def check_archive(
    version: tuple[int, int],
    compact: bool,
    header: Header,
    index: Index,
    plan: Sequence[ChunkPlan],
    layout: SourceLayout,
) -> None:
    """Refuse (FormatError, one line naming the field) a coded archive whose records disagree with its
    chunks. ``compact``: the 1.4 layout (its header leaves out what the classic one always wrote)."""
    lay = header.layout
    procedure = lay.procedure
    if procedure == STORED_PROCEDURE:
        raise FormatError("header.p: 'stored' names a stored archive (preamble flag 8), and this one is coded")
    check_procedure(procedure)
    names_lm = procedure not in MODEL_FREE_CODERS
    model = header.model is not None
    lm_chunks = [i for i, e in enumerate(index.chunks) if e.codec == Codec.LM]
    legacy = version <= LEGACY
    if not names_lm and lm_chunks:
        raise FormatError(f"index: chunk {lm_chunks[0]} is coded lm, but procedure {procedure!r} names no LM")
    _check_bound(version, procedure, index)
    lost = legacy and names_lm and model and index.tokens > 0
    if model and not lm_chunks and not lost:
        raise FormatError(f"header.lm: names model {header.model.id!r}, but no chunk is LM-coded")  # type: ignore[union-attr]
    no_float = not any(c.lm for c in plan)
    if names_lm and not lm_chunks and not lost and not (legacy and procedure == LEGACY_ENGINE and no_float):
        raise FormatError(
            f"header.p: procedure {procedure!r} codes no chunk of this archive (one without an LM chunk names "
            f"{FAST_PROCEDURE})"
        )
    _check_records(header, compact, model, names_lm, legacy)
    _check_counters(header, index, plan, layout, bool(lm_chunks), lost)


# The compiled codecs that belong to one model-free procedure: a chunk of one is only in an archive of it.
_BOUND: Final = {Codec.CM_FAST: FAST_PROCEDURE, Codec.QUICK: QUICK_PROCEDURE, Codec.CM_FAST2: FAST2_PROCEDURE}


def _check_bound(version: tuple[int, int], procedure: str, index: Index) -> None:
    """cm-fast-v1, cm-fast-v2 and quick-v1 chunks only under the procedure of their name (each no older
    than its codec), and quick-v1, which codes integers itself, with no cm-ints-v1 chunk."""
    for codec, name in _BOUND.items():
        if procedure == name and version < Codec.SINCE[codec]:
            raise FormatError(f"header.p: procedure {name!r} in an archive of format {version[0]}.{version[1]}")
    for i, e in enumerate(index.chunks):
        bound = _BOUND.get(e.codec)
        if (bound is not None and procedure != bound) or (procedure == QUICK_PROCEDURE and e.codec == Codec.CM_INTS):
            raise FormatError(
                f"index: chunk {i} is coded {Codec.NAMES[e.codec]}, which procedure {procedure!r} does not use"
            )


def _check_records(header: Header, compact: bool, model: bool, names_lm: bool, legacy: bool) -> None:
    """The fields only an LM reads: present exactly with a model, and each one of its enumeration."""
    lay = header.layout
    if lay.head not in (*HEADS, "none"):
        raise FormatError(f"header.hd: unknown head {lay.head!r} (one of {', '.join(HEADS)}, or none)")
    if (lay.head != "none") != model:
        raise FormatError(
            f"header.hd: head {lay.head!r} in an archive without a model"
            if not model
            else "header.hd: a model needs its head (restricted or full)"
        )
    if not model and not legacy:
        if header.scheme != DEFAULT_SCHEME:
            raise FormatError(f"header.s: serialization scheme {header.scheme!r} in an archive without an LM")
        if header.byte_order != DEFAULT_BYTE_ORDER:
            raise FormatError(f"header.o: byte order {header.byte_order!r} in an archive without an LM")
    if compact and not model:
        expected: dict[str, object] = {}
    else:
        expected = lm_coder(lay.procedure) if names_lm else dict(MODEL_FREE_CODERS[lay.procedure])
    if header.coder != expected:
        name = header.coder.get("name")
        raise FormatError(f"header.coder: {name!r} {header.coder!r} is not the coder of procedure {lay.procedure!r}")
    if header.model is not None:
        if header.model.kind not in MODEL_KINDS:
            raise FormatError(f"header.lm.model: unknown kind {header.model.kind!r} ({', '.join(MODEL_KINDS)})")
        if header.model.dtype not in MODEL_DTYPES:
            raise FormatError(f"header.lm.model: unknown dtype {header.model.dtype!r} ({', '.join(MODEL_DTYPES)})")
    if header.alphabet is not None and header.alphabet.rule not in (None, *ALPHABET_RULES):
        raise FormatError(f"header.lm.alphabet: unknown rule {header.alphabet.rule!r} ({', '.join(ALPHABET_RULES)})")


def _check_counters(
    header: Header, index: Index, plan: Sequence[ChunkPlan], layout: SourceLayout, lm: bool, lost: bool
) -> None:
    """The index's counters against the chunks: tokens only with LM chunks, model bits only where a model
    coded, no tensor costing more bits than the payloads that hold it."""
    if lm and index.tokens == 0:
        raise FormatError("index.k: no LM token, but some chunk is LM-coded")
    if not lm and index.tokens and not lost:
        raise FormatError(f"index.k: {index.tokens:,} LM tokens, but no chunk is LM-coded")
    model = header.model is not None
    n = len(layout.tensors)
    payload_bits, model_bits, chunks = [0] * n, [0] * n, [0] * n
    gap_bits = 0
    for i, (entry, chunk) in enumerate(zip(index.chunks, plan, strict=True)):
        if entry.model_bits:
            if not chunk.lm:
                raise FormatError(f"index: chunk {i} has model bits, but no model codes a chunk outside float tensors")
            if entry.codec not in Codec.FLOAT_MODELS and not model:
                raise FormatError(
                    f"index: chunk {i} has model bits, but it is coded {Codec.NAMES[entry.codec]} and no LM coded it"
                )
            if entry.model_bits > MAX_MODEL_BITS_PER_BYTE * entry.data_length:
                raise FormatError(
                    f"index: chunk {i} has {entry.model_bits:,} model bits for {entry.data_length:,} "
                    f"bytes (at most {MAX_MODEL_BITS_PER_BYTE} a byte)"
                )
        tensors = {w.tensor for w in chunk.windows} if chunk.lm else {chunk.tensor}
        for t in tensors:
            if t < 0:
                gap_bits += 8 * entry.payload_length
                continue
            payload_bits[t] += 8 * entry.payload_length
            model_bits[t] += entry.model_bits
            chunks[t] += 1
    names = [t.name for t in layout.tensors]
    for t, bits in enumerate(index.tensor_bits):
        if bits > payload_bits[t] + 1:
            raise FormatError(
                f"index.b: tensor {names[t]!r} is said to cost {bits:,.0f} bits, more than the "
                f"{payload_bits[t]:,} bits of the payloads that hold it"
            )
    if index.gap_bits > gap_bits + 1:
        raise FormatError(
            f"index.g: bytes outside the tensors are said to cost {index.gap_bits:,.0f} bits, more than "
            f"the {gap_bits:,} bits of the payloads that hold them"
        )
    for t, bits in enumerate(index.tensor_model_bits):
        if bits and not model:
            raise FormatError(f"index.lb: LM bits for tensor {names[t]!r} in an archive without an LM")
        if bits > model_bits[t] + chunks[t] + 1:  # each chunk's model bits are rounded
            raise FormatError(
                f"index.lb: tensor {names[t]!r} is said to cost the LM {bits:,.0f} bits, more than "
                f"the {model_bits[t]:,} model bits of its chunks"
            )


def without_lm(header: Header, index: Index) -> tuple[Header, Index]:
    """The writer's half of the rules: the records of an archive no chunk of which the LM kept (each lost to
    zstd, a shuffle, lzma2 or raw), as an archive without an LM says them: procedure cm-fast-v1, no model,
    head, scheme, coder, token count or LM bits."""
    layout = replace(header.layout, head="none", procedure=FAST_PROCEDURE)
    header = replace(
        header,
        layout=layout,
        model=None,
        alphabet=None,
        runtime={},
        coder={},
        scheme=DEFAULT_SCHEME,
        byte_order=DEFAULT_BYTE_ORDER,
    )
    chunks = tuple(replace(c, model_bits=0) for c in index.chunks)
    index = replace(index, chunks=chunks, tokens=0, tensor_model_bits=(0.0,) * len(index.tensor_model_bits))
    return header, index
