"""Salvage: from an archive with damaged chunks, write the tensors that are intact.

Each chunk carries its own CRC and (for LM chunks) its own range-coder stream, so one
damaged chunk costs only the tensors it touches. What needs the header and index to be
intact (they have their own CRCs): without them nothing can be placed.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from dataclasses import dataclass

from lmgc_format.atomic import AtomicOutput
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError
from lmgc_format.events import EventSink, Notice, Progress, Started, ignore
from lmgc_format.lm.models import LoadedModel
from lmgc_format.pipeline.decoder import ChunkDecoder, DecodeOptions, check_target
from lmgc_format.transforms.filters import restore_tensor


@dataclass(frozen=True)
class LostTensor:
    name: str
    reason: str  # which chunk(s) failed and why


@dataclass(frozen=True)
class SalvageResult:
    kept: tuple[str, ...]
    lost: tuple[LostTensor, ...]
    damaged_chunks: tuple[str, ...]  # one line per damaged chunk
    written: bool  # False when nothing could be kept (no file written)


def _safetensors_bytes(header_obj: dict[str, object], blobs: list[bytes]) -> tuple[bytes, bytes]:
    raw = json.dumps(header_obj, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes with spaces
    return struct.pack("<Q", len(raw)) + raw, b"".join(blobs)


def salvage_file(
    archive: str | os.PathLike[str],
    target: str | os.PathLike[str],
    options: DecodeOptions | None = None,
    *,
    overwrite: bool = False,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    model: LoadedModel | None = None,
) -> SalvageResult:
    """Decode every chunk that can be decoded; write a safetensors file of the intact tensors."""
    opts = options or DecodeOptions()
    with ArchiveReader(archive) as reader:
        check_target(archive, target, overwrite)
        layout = reader.layout
        chunks = ChunkDecoder(reader, opts, on_event, model, cancel)
        on_event(Started("salvage", str(archive), layout.data_size))
        data = bytearray(layout.data_size)
        bad: list[tuple[int, int, str]] = []  # (begin, end, message) of damaged chunks
        for plan in reader.plan:
            try:
                data[plan.begin : plan.end] = chunks.decode(plan.index)
            except CorruptChunkError as exc:
                bad.append((plan.begin, plan.end, str(exc)))
                on_event(Notice(str(exc)))
            on_event(Progress("salvage", plan.end, layout.data_size, 0))
    kept, lost, blobs = [], [], []
    header_obj: dict[str, object] = {}
    metadata = json.loads(layout.header_bytes).get("__metadata__")
    if metadata is not None:
        header_obj["__metadata__"] = metadata
    offset = 0
    kinds = {layout.tensors[f.tensor].name: f.kind for f in reader.filters}
    for t in layout.tensors:
        hits = [msg for b, e, msg in bad if (b < t.end and t.begin < e) or (t.begin == t.end and b <= t.begin < e)]
        if hits:
            lost.append(LostTensor(t.name, "; ".join(hits)))
            continue
        kept.append(t.name)
        header_obj[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        blob = bytes(data[t.begin : t.end])
        blobs.append(restore_tensor(t, kinds[t.name], blob) if t.name in kinds else blob)
        offset += t.nbytes
    written = False
    if kept:
        head, body = _safetensors_bytes(header_obj, blobs)
        with AtomicOutput(target, overwrite) as out:
            out.write(head)
            out.write(body)
            out.commit()
        written = True
    return SalvageResult(tuple(kept), tuple(lost), tuple(m for _, _, m in bad), written)
