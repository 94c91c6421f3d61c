"""Single-pass streaming writer of the compact layout (format 1.4): preamble + header first, payloads as
they come, index + tail last; a stored archive instead when the coded one would be larger than the file."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zlib
from dataclasses import replace
from typing import BinaryIO

from lmgc_format.atomic import AtomicOutput
from lmgc_format.container import compact, strict
from lmgc_format.container.constants import (
    FLAG_COMPACT,
    FLAG_FILTERS,
    FLAG_REFERENCE,
    FLAG_ROWS,
    FLAG_STORED,
    MAJOR,
    MINOR,
    PREAMBLE_SIZE,
    STORED_OVERHEAD,
    Codec,
)
from lmgc_format.container.fixed import Preamble, Tail, preamble_for
from lmgc_format.container.header import ChunkEntry, Header, Index
from lmgc_format.errors import InputError

_PIECE = 1 << 20


class ArchiveWriter:
    """Writes ``header``, then each chunk's payload, then the index. With ``source`` (the file being
    coded) it keeps the promise of docs/FORMAT.md "Stored archives": an archive that would come out
    larger than the file plus the 24-byte preamble is replaced by the file stored as it is.

    ``provisional`` (the LM level): the header is final only once every chunk is coded, because a header
    names a model only when some chunk kept the LM's payload (strict.py). The payloads wait in a spool
    file and the archive is written by :meth:`finish`, with the header without its LM records where no
    chunk is LM-coded (``dropped_lm``). The LM codes ~100 bytes a second: copying its payloads once costs
    nothing beside that."""

    def __init__(
        self,
        target: str | os.PathLike[str],
        header: Header,
        overwrite: bool = False,
        source: str | os.PathLike[str] | None = None,
        provisional: bool = False,
    ) -> None:
        self.target, self.overwrite, self.source = target, overwrite, source
        self.header = header
        self.source_size = header.source_size
        self.stored = False  # set by finish() when the file was stored instead
        self.dropped_lm = False  # set by finish() when the header's LM records were left out
        self.spool: BinaryIO | None = None
        # Opened now either way: the target is checked and the partial file exists before any coding.
        self.out = AtomicOutput(target, overwrite)
        if provisional:
            self.spool = tempfile.TemporaryFile(prefix="lmgc-payloads-")  # closed by finish or abort
            self.offset = 0
        else:
            self._start(header)
        self.entries: list[ChunkEntry] = []

    def _start(self, header: Header) -> None:
        """The preamble and ``header`` written; ``offset`` set after them."""
        raw = compact.header_to_bytes(header)
        try:
            flags = FLAG_COMPACT | (FLAG_FILTERS if header.filters else 0) | (FLAG_ROWS if header.rows else 0)
            flags |= FLAG_REFERENCE if header.reference_tensors else 0
            self.out.write(preamble_for(raw, flags).pack())
            self.out.write(raw)
        except BaseException:  # the caller never gets a writer to abort: clean up here
            self.abort()
            raise
        self.offset = PREAMBLE_SIZE + len(raw)

    def add_chunk(self, codec: int, data_offset: int, data_length: int, payload: bytes, model_bits: int) -> ChunkEntry:
        entry = ChunkEntry(self.offset, codec, data_offset, data_length, len(payload), zlib.crc32(payload), model_bits)
        (self.spool or self.out).write(payload)
        self.offset += len(payload)
        self.entries.append(entry)
        return entry

    def finish(self, index: Index) -> int:
        """Write index and tail, make the file durable and move it into place; returns its size."""
        if self.spool is not None:
            index = self._write_spooled(index)
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

    def _write_spooled(self, index: Index) -> Index:
        """The final header, then the spooled payloads; the index with the offsets they now have."""
        assert self.spool is not None
        header = self.header
        if header.model is not None and not any(e.codec == Codec.LM for e in index.chunks):
            header, index = strict.without_lm(header, index)
            self.dropped_lm = True
        self._start(header)
        shift = self.offset  # where the payloads now start (their offsets were counted from 0)
        self.spool.seek(0)
        for piece in iter(lambda: self.spool.read(_PIECE), b""):  # type: ignore[union-attr]
            self.out.write(piece)
        self.spool.close()
        self.spool = None
        self.offset = shift + sum(e.payload_length for e in index.chunks)
        chunks = tuple(replace(e, frame_offset=e.frame_offset + shift) for e in index.chunks)
        self.entries = list(chunks)
        return replace(index, chunks=chunks)

    def abort(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None
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
