"""Single-pass streaming writer of the compact layout (format 1.4): preamble + header first, payloads as
they come, index + tail last; a stored archive instead when the coded one would be larger than the file."""

from __future__ import annotations

import hashlib
import os
import zlib

from lmgc_format.atomic import AtomicOutput
from lmgc_format.container import compact
from lmgc_format.container.constants import (
    FLAG_COMPACT,
    FLAG_FILTERS,
    FLAG_ROWS,
    FLAG_STORED,
    MAJOR,
    MINOR,
    PREAMBLE_SIZE,
    STORED_OVERHEAD,
)
from lmgc_format.container.fixed import Preamble, Tail, preamble_for
from lmgc_format.container.header import ChunkEntry, Header, Index
from lmgc_format.errors import InputError

_PIECE = 1 << 20


class ArchiveWriter:
    """Writes ``header``, then each chunk's payload, then the index. With ``source`` (the file being
    coded) it keeps the promise of docs/FORMAT.md "Stored archives": an archive that would come out
    larger than the file plus the 24-byte preamble is replaced by the file stored as it is."""

    def __init__(
        self,
        target: str | os.PathLike[str],
        header: Header,
        overwrite: bool = False,
        source: str | os.PathLike[str] | None = None,
    ) -> None:
        raw = compact.header_to_bytes(header)
        self.target, self.overwrite, self.source = target, overwrite, source
        self.source_size = header.source_size
        self.stored = False  # set by finish() when the file was stored instead
        self.out = AtomicOutput(target, overwrite)
        try:
            flags = FLAG_COMPACT | (FLAG_FILTERS if header.filters else 0) | (FLAG_ROWS if header.rows else 0)
            self.out.write(preamble_for(raw, flags).pack())
            self.out.write(raw)
        except BaseException:  # the caller never gets a writer to abort: clean up here
            self.out.abort()
            raise
        self.offset = PREAMBLE_SIZE + len(raw)
        self.entries: list[ChunkEntry] = []

    def add_chunk(self, codec: int, data_offset: int, data_length: int, payload: bytes, model_bits: int) -> ChunkEntry:
        entry = ChunkEntry(self.offset, codec, data_offset, data_length, len(payload), zlib.crc32(payload), model_bits)
        self.out.write(payload)
        self.offset += len(payload)
        self.entries.append(entry)
        return entry

    def finish(self, index: Index) -> int:
        """Write index and tail, make the file durable and move it into place; returns its size."""
        raw = compact.index_to_bytes(index)
        tail = Tail(len(raw), zlib.crc32(raw)).pack()
        size = self.offset + len(raw) + len(tail)
        if self.source is not None and size > STORED_OVERHEAD + self.source_size:
            self.out.abort()
            self.stored = True
            return write_stored(self.target, self.source, self.overwrite, index.sha256)[0]
        self.out.write(raw)
        self.out.write(tail)
        self.out.commit()
        return size

    def abort(self) -> None:
        self.out.abort()


def write_stored(
    target: str | os.PathLike[str], source: str | os.PathLike[str], overwrite: bool, sha256: bytes | None = None
) -> tuple[int, bytes]:
    """``source`` stored in an archive: the preamble (flag 8, its CRC over the file) and the file; returns
    the archive's size and the file's SHA-256. Refuses when that is not ``sha256`` (the file changed after
    the encoder read it)."""
    crc = 0
    with open(source, "rb") as fh:
        for piece in iter(lambda: fh.read(_PIECE), b""):
            crc = zlib.crc32(piece, crc)
    out = AtomicOutput(target, overwrite)
    try:
        out.write(Preamble(MAJOR, MINOR, 0, crc, FLAG_STORED).pack())
        digest, again, size = hashlib.sha256(), 0, 0
        with open(source, "rb") as fh:
            for piece in iter(lambda: fh.read(_PIECE), b""):
                digest.update(piece)
                again = zlib.crc32(piece, again)
                size += len(piece)
                out.write(piece)
        if again != crc or (sha256 is not None and digest.digest() != sha256):
            raise InputError(f"{source}: the file changed while it was being compressed; nothing was written")
        out.commit()
    except BaseException:
        out.abort()
        raise
    return STORED_OVERHEAD + size, digest.digest()
