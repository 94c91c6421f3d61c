"""Single-pass streaming writer: preamble + header first, frames as they come, index + footer last."""

from __future__ import annotations

import os
import zlib

from ..atomic import AtomicOutput
from .constants import FLAG_FILTERS, FLAG_ROWS, FRAME_HEAD_SIZE, PREAMBLE_SIZE
from .fixed import Footer, FrameHead, preamble_for
from .header import ChunkEntry, Header, Index


class ArchiveWriter:
    def __init__(self, target: str | os.PathLike[str], header: Header, overwrite: bool = False) -> None:
        raw = header.to_bytes()
        self.out = AtomicOutput(target, overwrite)
        try:
            flags = (FLAG_FILTERS if header.filters else 0) | (FLAG_ROWS if header.rows else 0)
            self.out.write(preamble_for(raw, flags).pack())
            self.out.write(raw)
        except BaseException:  # the caller never gets a writer to abort: clean up here
            self.out.abort()
            raise
        self.offset = PREAMBLE_SIZE + len(raw)
        self.entries: list[ChunkEntry] = []

    def add_chunk(self, codec: int, data_offset: int, data_length: int, payload: bytes, model_bits: int) -> ChunkEntry:
        head = FrameHead(
            chunk=len(self.entries),
            codec=codec,
            data_offset=data_offset,
            data_length=data_length,
            payload_length=len(payload),
            payload_crc=zlib.crc32(payload),
            model_bits=model_bits,
        )
        entry = ChunkEntry(self.offset, codec, data_offset, data_length, len(payload), head.payload_crc, model_bits)
        self.out.write(head.pack())
        self.out.write(payload)
        self.offset += FRAME_HEAD_SIZE + len(payload)
        self.entries.append(entry)
        return entry

    def finish(self, index: Index) -> int:
        """Write index and footer, make the file durable and move it into place; returns its size."""
        raw = index.to_bytes()
        footer = Footer(self.offset, len(raw), zlib.crc32(raw), len(index.chunks))
        self.out.write(raw)
        self.out.write(footer.pack())
        self.out.commit()
        return self.offset + len(raw) + len(footer.pack())

    def abort(self) -> None:
        self.out.abort()
