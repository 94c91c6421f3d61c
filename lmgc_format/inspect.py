"""A JSON-ready description of an archive (``lmgc-tui inspect``), read without any model."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from lmgc_format.cm import ints_codec
from lmgc_format.container import compact
from lmgc_format.container.constants import FLAG_COMPACT, MODEL_FREE_CODERS, Codec
from lmgc_format.container.header import Header
from lmgc_format.container.procedures import portable
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.tensors.source import INT_DTYPES, LM_DTYPES


def _per_byte(bits: float, nbytes: int) -> float | None:
    return round(bits / nbytes, 4) if nbytes else None


def _table_bytes(r: ArchiveReader) -> int:
    """What the source description (tensor table, or the safetensors JSON when it is not canonical) adds
    to the header as stored: the header's size with it minus without it."""
    h: Header = r.header
    if r.stored:
        return 8 + len(h.source_header)
    if r.flags & FLAG_COMPACT:
        return compact.header_blob_size(h) - compact.header_blob_size(h, with_source=False)
    return len(h.to_bytes()) - len(replace(h, source_header=b"").to_bytes())


# What a tensor is, as people who send gradients name it, from how its chunks were coded (docs/FORMAT.md
# "How an integer chunk is coded": the cm-ints-v1 mode byte) and its shape.
_MODE_NAMES = {
    ints_codec.MODE_VALUES: "quantized values",
    ints_codec.MODE_GAPS: "sorted indices",
    ints_codec.MODE_BITS: "packed bits",
}


def representations(r: ArchiveReader) -> list[str]:
    """Per tensor: ``quantized values`` (integers coded as values), ``sorted indices`` (coded as gaps),
    ``packed bits``, ``sparse floats`` (mostly exact zeros, coded as integers: under 4 bits a value),
    ``scales`` (a float vector with one value per row of an integer matrix in the file), ``floats`` or
    ``integers`` (coded otherwise). Reads one byte of each cm-ints-v1 payload, nothing else."""
    modes: dict[int, set[int]] = {}
    for i, (entry, plan) in enumerate(zip(r.index.chunks, r.plan, strict=True)):
        if entry.codec == Codec.CM_INTS and entry.payload_length:
            mode = r.peek_payload(i, 1)[0]
            for tensor in {w.tensor for w in plan.windows} if plan.lm else {plan.tensor}:
                modes.setdefault(tensor, set()).add(mode)
    rows = {t.shape[0] for t in r.layout.tensors if t.dtype in INT_DTYPES and len(t.shape) >= 2}
    out = []
    for ti, (t, bits) in enumerate(zip(r.layout.tensors, r.index.tensor_bits, strict=True)):
        seen = modes.get(ti, set())
        values = t.nbytes // t.item_size
        if t.dtype in INT_DTYPES:
            out.append(_MODE_NAMES.get(min(seen), "integers") if seen else "integers")
        elif ints_codec.MODE_FLOATS in seen and values and bits < 4 * values:
            out.append("sparse floats")
        elif t.dtype in LM_DTYPES and len(t.shape) == 1 and t.shape[0] in rows:
            out.append("scales")
        else:
            out.append("floats")
    return out


def describe_archive(path: str | os.PathLike[str]) -> dict[str, Any]:
    with ArchiveReader(path) as r:
        h, idx = r.header, r.index
        codecs: dict[str, int] = {}
        for e in idx.chunks:
            codecs[Codec.NAMES[e.codec]] = codecs.get(Codec.NAMES[e.codec], 0) + 1
        data_bytes = r.layout.data_size
        lm_bytes = sum(t.nbytes for t, b in zip(r.layout.tensors, idx.tensor_model_bits, strict=True) if b)
        coded_bits = sum(idx.tensor_bits) + idx.gap_bits
        kinds = representations(r)
        tensors = [
            {
                "name": t.name,
                "dtype": t.dtype,
                "shape": list(t.shape),
                "representation": kind,
                "bytes": t.nbytes,
                "coded_bits": round(bits, 1),
                "bits_per_byte": _per_byte(bits, t.nbytes),
                "bits_per_value": _per_byte(bits, t.nbytes // t.item_size),
                "percent": round(100 * bits / 8 / t.nbytes, 2) if t.nbytes else None,
                # what the LM coder spent (ideal code length), whichever codec was kept
                "lm_bits_per_byte": _per_byte(lm_bits, t.nbytes) if lm_bits else None,
            }
            for t, kind, bits, lm_bits in zip(
                r.layout.tensors, kinds, idx.tensor_bits, idx.tensor_model_bits, strict=True
            )
        ]
        return {
            "file": str(path),
            "format_version": f"{r.version[0]}.{r.version[1]}",
            "created_by": h.created_by,
            "archive_size": r.size,
            "source": {
                "size": h.source_size,
                "sha256": idx.sha256.hex(),
                "header_bytes": len(h.source_header),
                "data_bytes": data_bytes,
                "tensor_count": len(r.layout.tensors),
            },
            "model": None if h.model is None else dict(h.model.__dict__),
            "serialization": {
                "scheme": h.scheme,
                "byte_order": h.byte_order,
                "bytes_per_group": h.layout.bytes_per_group,
                "alphabet_size": h.alphabet.size if h.alphabet else 0,
            },
            "windows": {
                "window_bytes": h.layout.window_bytes,
                "batch": h.layout.batch,
                "plain_chunk_bytes": h.layout.plain_chunk_bytes,
                "head": h.layout.head,
                "procedure": h.layout.procedure,
            },
            # the compact layout leaves a model-free archive's coder out: its procedure says it
            "coder": h.coder or dict(MODEL_FREE_CODERS.get(h.layout.procedure, {})),
            "stored": r.stored,
            # Every byte that is not a chunk payload, by part (docs/FORMAT.md "Overhead")
            "overhead": {"total": r.overhead, **r.parts, "tensor_table": _table_bytes(r)},
            # Decodes byte-exact on any machine: no chunk depends on an LM's float arithmetic (docs/FORMAT.md
            # "Reproducibility"); the fast level and the classical codecs are exact everywhere.
            "portable": portable({e.codec for e in idx.chunks}, h.layout.procedure),
            "filters": [{"tensor": r.layout.tensors[f.tensor].name, "kind": f.kind} for f in r.filters],
            "rows": [{"tensor": r.layout.tensors[t].name, "row": row} for t, row in r.header.rows],
            # Coded against a reference file (transforms/reference.py): its SHA-256 over these tensors' bytes
            "reference": None
            if not h.reference_tensors
            else {
                "sha256": h.reference_sha256.hex(),
                "tensors": [r.layout.tensors[t].name for t in h.reference_tensors],
            },
            "runtime": h.runtime,
            "totals": {
                "percent_of_original": round(100 * r.size / h.source_size, 3) if h.source_size else None,
                "data_bits_per_byte": _per_byte(coded_bits, data_bytes),
                "lm_tokens": idx.tokens,
                "lm_bits_per_byte": _per_byte(sum(idx.tensor_model_bits), lm_bytes),
                "encode_seconds": round(idx.seconds, 3),
                "chunks": len(idx.chunks),
                "codecs": codecs,
            },
            "tensors": tensors,
            "chunks": [
                {
                    "index": i,
                    "codec": Codec.NAMES[e.codec],
                    "frame_offset": e.frame_offset,
                    "data_offset": e.data_offset,
                    "data_length": e.data_length,
                    "payload_length": e.payload_length,
                    "model_bits": e.model_bits,
                    "crc32": f"{e.payload_crc:08x}",
                }
                for i, e in enumerate(idx.chunks)
            ],
        }
