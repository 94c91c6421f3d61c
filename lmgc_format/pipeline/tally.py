"""The encoder's running account: each chunk read and written, the source's SHA-256, bits per tensor,
codec counts and progress, ending in the index and the result."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from lmgc_format.cm import ints_codec
from lmgc_format.container.constants import Codec
from lmgc_format.container.header import Index
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.errors import UnsupportedError
from lmgc_format.events import ChunkDone, EventSink, Finished, Notice, Progress
from lmgc_format.pipeline.encode_job import EncodeResult
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.tensors.source import SourceLayout
from lmgc_format.transforms.reference import Forward


def read_chunks(
    source: str | os.PathLike[str], layout: SourceLayout, plan: list[ChunkPlan], forward: Forward, tally: Tally
) -> Iterator[tuple[ChunkPlan, bytes, bytes]]:
    """Each chunk's source bytes and what the codecs see (``stored``: raw, unless filtered), in file
    order; the file's header goes into the tally's SHA-256 first (chunks follow as they are written)."""
    with open(source, "rb") as f:
        tally.sha.update(f.read(layout.data_offset))
        for chunk in plan:
            f.seek(layout.data_offset + chunk.begin)
            raw = f.read(chunk.nbytes)
            if len(raw) != chunk.nbytes:
                raise UnsupportedError(f"{source} changed while being read")
            yield chunk, raw, forward.apply(chunk.begin, raw)


class Tally:
    """What the encoder learns while it writes chunks: the source's SHA-256, bits per tensor,
    codec counts and progress; ends in the index and the result."""

    def __init__(self, layout: SourceLayout, writer: ArchiveWriter, on_event: EventSink) -> None:
        self.layout, self.writer, self.on_event = layout, writer, on_event
        self.sha = hashlib.sha256()
        self.tensor_bits = [0.0] * len(layout.tensors)
        self.tensor_model_bits = [0.0] * len(layout.tensors)
        self.gap_bits = 0.0
        self.tokens = 0
        self.codecs: dict[str, int] = {}
        self.done_bytes = 0

    def add(self, chunk: ChunkPlan, raw: bytes, codec: int, payload: bytes, window_bits: list[float]) -> None:
        """Write one chunk (``raw``: its source bytes) and account for it."""
        layout = self.layout
        self.sha.update(raw)
        entry = self.writer.add_chunk(codec, chunk.begin, chunk.nbytes, payload, round(sum(window_bits)))
        if codec not in (Codec.CM_FAST, Codec.CM_FAST2):  # the LM's ideal bits, whichever codec was kept
            for w, b in zip(chunk.windows, window_bits, strict=False):
                self.tensor_model_bits[w.tensor] += b
        if codec == Codec.CM_INTS and chunk.lm:  # floats as integers: each window's stream length says its share
            window_bits = ints_codec.window_bits(payload)
        shares = _attribute(chunk, codec, len(payload) * 8, window_bits)
        for ti, bits in shares.items():
            if ti >= 0:
                self.tensor_bits[ti] += bits
            else:
                self.gap_bits += bits
        name = Codec.NAMES[codec]
        self.codecs[name] = self.codecs.get(name, 0) + 1
        self.done_bytes += chunk.nbytes
        self.on_event(
            ChunkDone(
                chunk.index,
                name,
                chunk.begin,
                chunk.nbytes,
                entry.payload_length,
                tuple(
                    (layout.tensors[ti].name if ti >= 0 else "(gap)", nbytes, shares[ti])
                    for ti, nbytes in _bytes_by_tensor(chunk).items()
                ),
            )
        )
        self.on_event(Progress("encode", self.done_bytes, layout.data_size, self.tokens))

    def finish(self, seconds: float) -> tuple[int, bytes]:
        """Write the index and footer: the archive's size and the source's SHA-256."""
        digest = self.sha.digest()
        index = Index(
            tuple(self.writer.entries),
            tuple(self.tensor_bits),
            tuple(self.tensor_model_bits),
            self.gap_bits,
            digest,
            self.tokens,
            seconds,
        )
        return self.writer.finish(index), digest

    def result(self, size: int, digest: bytes, seconds: float) -> EncodeResult:
        layout = self.layout
        tokens = self.tokens
        if self.writer.dropped_lm:  # the LM ran, but its archive holds no LM payload: no LM speed to report
            tokens = 0
            self.on_event(
                Notice(
                    "the LM lost to the model-free codecs on every chunk: the archive names no model and "
                    "decodes without one"
                )
            )
        self.on_event(Finished("encode", layout.file_size, size, digest.hex(), seconds, tokens))
        coded = sum(e.payload_length for e in self.writer.entries)
        return EncodeResult(
            layout.file_size,
            size,
            digest.hex(),
            seconds,
            tokens,
            self.codecs,
            layout.data_size,
            coded,
            stored=self.writer.stored,
        )


def _bytes_by_tensor(chunk: ChunkPlan) -> dict[int, int]:
    if not chunk.lm:
        return {chunk.tensor: chunk.nbytes}
    out: dict[int, int] = {}
    for w in chunk.windows:
        out[w.tensor] = out.get(w.tensor, 0) + w.nbytes
    return out


def _attribute(chunk: ChunkPlan, codec: int, payload_bits: int, window_bits: list[float]) -> dict[int, float]:
    """Split a chunk's real coded bits over its tensors: by model bits for LM chunks, by bytes otherwise."""
    if codec in (*Codec.FLOAT_MODELS, Codec.CM_INTS) and chunk.lm and sum(window_bits) > 0:
        total = sum(window_bits)
        out: dict[int, float] = {}
        for w, b in zip(chunk.windows, window_bits, strict=True):
            out[w.tensor] = out.get(w.tensor, 0.0) + payload_bits * b / total
        return out
    sizes = _bytes_by_tensor(chunk)
    return {ti: payload_bits * n / chunk.nbytes for ti, n in sizes.items()}
