"""Opening an archive: every length, offset and CRC checked before anything is trusted."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import BinaryIO

from ..errors import CorruptChunkError, FormatError, InputError
from ..filters import TensorFilter, check_filters, mark_plan
from ..plan import ChunkPlan, TooManyChunks, plan_chunks
from ..source import LM_DTYPES, SourceLayout, TensorEntry, parse_header
from .constants import (
    FLAG_FILTERS,
    FLAG_ROWS,
    FOOTER_MAGIC,
    FOOTER_SIZE,
    FRAME_HEAD_SIZE,
    MAX_CHUNKS,
    MAX_INDEX_LEN,
    MAX_PAYLOAD_LEN,
    PREAMBLE_SIZE,
    Codec,
)
from .fixed import Footer, FrameHead, Preamble
from .header import ChunkEntry, Header, Index

_TAIL_SCAN = 1 << 20  # how far from the end a misplaced footer is looked for


class ArchiveReader:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.file: BinaryIO = self.path.open("rb")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{self.path}: is a directory") from None
        except PermissionError:
            raise InputError(f"{self.path}: permission denied") from None
        try:
            self._open()
        except BaseException:
            self.file.close()
            raise

    def _read_at(self, offset: int, length: int) -> bytes:
        self.file.seek(offset)
        data = self.file.read(length)
        if len(data) != length:
            raise FormatError(f"archive is truncated (wanted {length} bytes at offset {offset})")
        return data

    def _open(self) -> None:
        self.size = os.fstat(self.file.fileno()).st_size
        pre = Preamble.unpack(self.file.read(PREAMBLE_SIZE))
        self.version = (pre.major, pre.minor)
        header_end = PREAMBLE_SIZE + pre.header_len
        if header_end + FOOTER_SIZE > self.size:
            raise FormatError(
                f"archive is truncated: header of {pre.header_len} bytes and footer need more than {self.size} bytes"
            )
        raw_header = self._read_at(PREAMBLE_SIZE, pre.header_len)
        if zlib.crc32(raw_header) != pre.header_crc:
            raise FormatError("archive header is damaged (CRC mismatch)")
        self.header = Header.from_bytes(raw_header)
        footer = self._footer()
        index_end = footer.index_offset + footer.index_len
        if footer.index_len > MAX_INDEX_LEN or footer.chunk_count > MAX_CHUNKS:
            raise FormatError("footer declares an index larger than the caps allow")
        if footer.index_offset < header_end or index_end != self.size - FOOTER_SIZE:
            raise FormatError("footer points outside the archive (index offset/length inconsistent)")
        raw_index = self._read_at(footer.index_offset, footer.index_len)
        if zlib.crc32(raw_index) != footer.index_crc:
            raise FormatError("archive index is damaged (CRC mismatch)")
        self.index = Index.from_bytes(raw_index)
        self.layout = self._layout()
        # Every chunk has a frame head of its own: the file's size bounds how many there can be (that the
        # index lists as many is _check_index's to say, once the plan exists).
        if footer.chunk_count * FRAME_HEAD_SIZE > self.size:
            raise FormatError(f"footer lists {footer.chunk_count:,} chunks, more than {self.size:,} bytes can hold")
        try:
            self.plan = plan_chunks(
                self.layout,
                self.header.layout.window_bytes,
                self.header.layout.batch,
                self.header.layout.bytes_per_group,
                self.header.layout.plain_chunk_bytes,
                self._rows(pre.flags),
                max_chunks=footer.chunk_count,
            )
        except TooManyChunks as exc:
            raise FormatError(f"{exc}, the footer lists {footer.chunk_count:,}") from None
        self._check_index(footer, header_end)
        self.filters = self._filters(pre.flags)
        self.plan = mark_plan(self.plan, self.layout, self.filters)

    def _footer(self) -> Footer:
        raw = self._read_at(self.size - FOOTER_SIZE, FOOTER_SIZE)
        if raw.endswith(FOOTER_MAGIC):
            return Footer.unpack(raw)
        # Not at the end: bytes appended after a complete archive (a copy, a concatenation) say so
        tail_start = max(0, self.size - _TAIL_SCAN)
        tail = self._read_at(tail_start, self.size - tail_start)
        at = tail.rfind(FOOTER_MAGIC)
        if at >= 0:
            end = tail_start + at + len(FOOTER_MAGIC)
            raise FormatError(
                f"archive has {self.size - end:,} bytes of trailing data after its footer (which ends at offset "
                f"{end:,}); cut them off to read it"
            )
        return Footer.unpack(raw)

    def _rows(self, flags: int) -> dict[int, int]:
        """The header's row lengths of flat tensors, checked against the tensor table (rows.py)."""
        rows = self.header.rows
        if bool(flags & FLAG_ROWS) != bool(rows) or (rows and self.version < (1, 3)):
            raise FormatError("archive: the rows flag, the header's rows and the format version disagree")
        out: dict[int, int] = {}
        tensors = self.layout.tensors
        for tensor, row in rows:
            if not 0 <= tensor < len(tensors) or tensor in out:
                raise FormatError("header.rows: tensor indices must be in range and distinct")
            t = tensors[tensor]
            if t.dtype not in LM_DTYPES or len(t.shape) != 1 or not 2 <= row <= max(2, t.shape[0] // 2):
                raise FormatError(f"header.rows: tensor {t.name!r} cannot have rows of {row}")
            out[tensor] = row
        return out

    def _filters(self, flags: int) -> tuple[TensorFilter, ...]:
        filters = check_filters(self.header.filters, self.layout, self.header.layout.bytes_per_group)
        if bool(flags & FLAG_FILTERS) != bool(filters) or (filters and self.version < (1, 2)):
            raise FormatError("archive: the filters flag, the header's filters and the format version disagree")
        return filters

    def _layout(self) -> SourceLayout:
        h = self.header
        data_offset = 8 + len(h.source_header)
        if h.source_size < data_offset:
            raise FormatError("header: source size is smaller than its own header")
        try:
            tensors = parse_header(h.source_header, h.source_size - data_offset)
        except InputError as exc:
            raise FormatError(f"header: stored safetensors header is invalid: {exc}") from None
        return SourceLayout(h.source_header, data_offset, h.source_size, tensors)

    def _check_index(self, footer: Footer, header_end: int) -> None:
        chunks = self.index.chunks
        if footer.chunk_count != len(chunks) or len(chunks) != len(self.plan):
            raise FormatError(
                f"index lists {len(chunks)} chunks, footer {footer.chunk_count}, window layout implies {len(self.plan)}"
            )
        if len(self.index.tensor_bits) != len(self.layout.tensors):
            raise FormatError("index: tensor_bits does not match the tensor table")
        pos = header_end
        for entry, plan in zip(chunks, self.plan, strict=True):
            if (entry.data_offset, entry.data_length) != (plan.begin, plan.nbytes):
                raise FormatError(f"index: chunk {plan.index} covers the wrong bytes")
            if entry.codec not in Codec.NAMES or (entry.codec in (Codec.LM, Codec.CM_FAST) and not plan.lm):
                raise FormatError(f"index: chunk {plan.index} has an invalid codec")
            since = Codec.SINCE.get(entry.codec, (1, 0))
            if self.version < since:
                raise FormatError(
                    f"index: chunk {plan.index} uses a format {since[0]}.{since[1]} codec in a {self.version} archive"
                )
            if entry.codec == Codec.LM and self.header.model is None:
                raise FormatError(f"index: chunk {plan.index} needs a model the header does not name")
            if entry.payload_length > MAX_PAYLOAD_LEN:
                raise FormatError(f"index: chunk {plan.index} payload exceeds the cap")
            if entry.frame_offset != pos:
                raise FormatError(f"index: chunk {plan.index} is not where the previous frame ends")
            pos += FRAME_HEAD_SIZE + entry.payload_length
        if pos != footer.index_offset:
            raise FormatError("index: frames do not end where the index begins")

    @property
    def tensors(self) -> tuple[TensorEntry, ...]:
        return self.layout.tensors

    def describe_chunk(self, i: int) -> str:
        plan = self.plan[i]
        names = self.chunk_tensor_names(plan)
        label = (
            ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "") if names else "no tensor"
        )
        return f"chunk {i} (tensor {label}, bytes {plan.begin}..{plan.end})"

    def chunk_tensor_names(self, plan: ChunkPlan) -> list[str]:
        if plan.lm:
            idx = sorted({w.tensor for w in plan.windows})
        else:
            idx = [plan.tensor] if plan.tensor >= 0 else []
        return [self.layout.tensors[i].name for i in idx]

    def read_chunk(self, i: int) -> tuple[ChunkEntry, bytes]:
        """The payload of chunk ``i`` after checking frame head and CRC."""
        entry = self.index.chunks[i]
        try:
            head = FrameHead.unpack(self._read_at(entry.frame_offset, FRAME_HEAD_SIZE), self.describe_chunk(i))
        except FormatError as exc:
            raise CorruptChunkError(f"{exc} -- the chunk is damaged") from None
        expected = FrameHead(
            i,
            entry.codec,
            entry.data_offset,
            entry.data_length,
            entry.payload_length,
            entry.payload_crc,
            entry.model_bits,
        )
        if head != expected:
            raise CorruptChunkError(f"{self.describe_chunk(i)} is damaged: frame head disagrees with the index")
        payload = self._read_at(entry.frame_offset + FRAME_HEAD_SIZE, entry.payload_length)
        if zlib.crc32(payload) != entry.payload_crc:
            raise CorruptChunkError(f"{self.describe_chunk(i)} is damaged (CRC mismatch)")
        return entry, payload

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
