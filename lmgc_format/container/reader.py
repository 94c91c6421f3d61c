"""Opening an archive: every length, offset and CRC checked before anything is trusted."""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import BinaryIO

from lmgc_format.container import compact, strict
from lmgc_format.container.constants import (
    FLAG_COMPACT,
    FLAG_FILTERS,
    FLAG_REFERENCE,
    FLAG_ROWS,
    FLAG_STORED,
    FOOTER_MAGIC,
    FOOTER_SIZE,
    FRAME_HEAD_SIZE,
    MAX_CHUNKS,
    MAX_INDEX_LEN,
    MAX_PAYLOAD_LEN,
    PREAMBLE_SIZE,
    STORED_PROCEDURE,
    TAIL_MAGIC,
    TAIL_SIZE,
    Codec,
)
from lmgc_format.container.fixed import Footer, FrameHead, Preamble, Tail
from lmgc_format.container.header import ChunkEntry, Header, Index, WindowLayout
from lmgc_format.errors import CorruptChunkError, FormatError, InputError
from lmgc_format.tensors.plan import ChunkPlan, TooManyChunks, dtype_runs, int_tensor, plan_chunks
from lmgc_format.tensors.serialize import DEFAULT_BYTE_ORDER, DEFAULT_SCHEME
from lmgc_format.tensors.source import LM_DTYPES, MAX_SAFETENSORS_HEADER, SourceLayout, TensorEntry, parse_header
from lmgc_format.transforms.filters import TensorFilter, check_filters, mark_plan

_TAIL_SCAN = 1 << 20  # how far from the end a misplaced footer is looked for
_STORED_CHUNK = 1 << 20  # how a stored archive's data is cut into (raw) chunks for the decoder


_PREAD = hasattr(os, "pread")  # POSIX; elsewhere a lock keeps seek and read together


class ArchiveReader:
    # What opening found: the records (the same for every layout), the chunk plan they imply, and the
    # byte counts of the parts around the payloads (``parts``: preamble, header, frame heads, index, footer).
    header: Header
    index: Index
    layout: SourceLayout
    plan: list[ChunkPlan]
    filters: tuple[TensorFilter, ...]
    parts: dict[str, int]
    head_size: int  # bytes of frame head before each payload: 44 in format 1.0-1.3, none since
    flags: int  # the preamble's

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
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
        """``length`` bytes at ``offset``: safe from any thread (the decoder's threads read their own chunks)."""
        if _PREAD:
            data = os.pread(self.file.fileno(), length, offset)
        else:
            with self._lock:
                self.file.seek(offset)
                data = self.file.read(length)
        if len(data) != length:
            raise FormatError(f"archive is truncated (wanted {length} bytes at offset {offset})")
        return data

    def _open(self) -> None:
        self.size = os.fstat(self.file.fileno()).st_size
        pre = Preamble.unpack(self.file.read(PREAMBLE_SIZE))
        self.version = (pre.major, pre.minor)
        self.flags = pre.flags
        if pre.flags & (FLAG_COMPACT | FLAG_STORED) and self.version < (1, 4):
            raise FormatError(f"archive: format {pre.major}.{pre.minor} cannot set the compact or stored flag")
        if pre.flags & FLAG_STORED:
            if pre.flags != FLAG_STORED:
                raise FormatError("archive: a stored archive sets no other flag")
            self._open_stored(pre)
            return
        compact_layout = bool(pre.flags & FLAG_COMPACT)
        self.head_size = 0 if compact_layout else FRAME_HEAD_SIZE
        end_size = TAIL_SIZE if compact_layout else FOOTER_SIZE
        header_end = PREAMBLE_SIZE + pre.header_len
        if header_end + end_size > self.size:
            raise FormatError(
                f"archive is truncated: header of {pre.header_len} bytes and footer need more than {self.size} bytes"
            )
        raw_header = self._read_at(PREAMBLE_SIZE, pre.header_len)
        if zlib.crc32(raw_header) != pre.header_crc:
            raise FormatError("archive header is damaged (CRC mismatch)")
        self.header = compact.header_from_bytes(raw_header) if compact_layout else Header.from_bytes(raw_header)
        self.layout = self._layout()
        rows = self._rows(pre.flags)
        if compact_layout:
            index_offset, count = self._compact_index(header_end, rows)
        else:
            index_offset, count = self._classic_index(header_end, rows)
        self.parts = {
            "preamble": PREAMBLE_SIZE,
            "header": pre.header_len,
            "frame_heads": count * self.head_size,
            "index": self.size - end_size - index_offset,
            "footer": end_size,
        }
        self._check_index(count, header_end, index_offset)
        strict.check_archive(self.version, compact_layout, self.header, self.index, self.plan, self.layout)
        self.filters = self._filters(pre.flags)
        self._check_reference(pre.flags)
        self.plan = mark_plan(self.plan, self.layout, self.filters)

    def _plan(self, rows: dict[int, int], count: int) -> None:
        lay = self.header.layout
        try:
            self.plan = plan_chunks(
                self.layout,
                lay.window_bytes,
                lay.batch,
                lay.bytes_per_group,
                lay.plain_chunk_bytes,
                rows,
                max_chunks=count,
            )
        except TooManyChunks as exc:
            raise FormatError(f"{exc}, the index lists {count:,}") from None

    def _classic_index(self, header_end: int, rows: dict[int, int]) -> tuple[int, int]:
        """Format 1.0-1.3: the 32-byte footer, the msgpack index with every offset, frame heads."""
        footer = Footer.unpack(self._end(FOOTER_MAGIC, FOOTER_SIZE))
        index_end = footer.index_offset + footer.index_len
        if footer.index_len > MAX_INDEX_LEN or footer.chunk_count > MAX_CHUNKS:
            raise FormatError("footer declares an index larger than the caps allow")
        if footer.index_offset < header_end or index_end != self.size - FOOTER_SIZE:
            raise FormatError("footer points outside the archive (index offset/length inconsistent)")
        raw_index = self._read_at(footer.index_offset, footer.index_len)
        if zlib.crc32(raw_index) != footer.index_crc:
            raise FormatError("archive index is damaged (CRC mismatch)")
        self.index = Index.from_bytes(raw_index)
        # Every chunk has a frame head of its own: the file's size bounds how many there can be (that the
        # index lists as many is _check_index's to say, once the plan exists).
        if footer.chunk_count * FRAME_HEAD_SIZE > self.size:
            raise FormatError(f"footer lists {footer.chunk_count:,} chunks, more than {self.size:,} bytes can hold")
        if footer.chunk_count != len(self.index.chunks):
            raise FormatError(f"index lists {len(self.index.chunks)} chunks, footer {footer.chunk_count}")
        self._plan(rows, footer.chunk_count)
        return footer.index_offset, footer.chunk_count

    def _compact_index(self, header_end: int, rows: dict[int, int]) -> tuple[int, int]:
        """Format 1.4: the 12-byte tail, the compact index; offsets follow from the plan and the lengths."""
        tail = Tail.unpack(self._end(TAIL_MAGIC, TAIL_SIZE))
        index_offset = self.size - TAIL_SIZE - tail.index_len
        if tail.index_len > MAX_INDEX_LEN or index_offset < header_end:
            raise FormatError("tail points outside the archive (index length inconsistent)")
        raw_index = self._read_at(index_offset, tail.index_len)
        if zlib.crc32(raw_index) != tail.index_crc:
            raise FormatError("archive index is damaged (CRC mismatch)")
        chunk_rows, rest = compact.index_from_bytes(raw_index)
        self._plan(rows, len(chunk_rows))
        if len(chunk_rows) != len(self.plan):
            raise FormatError(f"index lists {len(chunk_rows)} chunks, the window layout implies {len(self.plan)}")
        entries, pos = [], header_end
        for (codec, length, crc, bits), plan in zip(chunk_rows, self.plan, strict=True):
            entries.append(ChunkEntry(pos, codec, plan.begin, plan.nbytes, length, crc, bits))
            pos += length
        self.index = Index(tuple(entries), **rest)
        return index_offset, len(entries)

    def _open_stored(self, pre: Preamble) -> None:
        """Format 1.4 flag 8: the original file follows the preamble. One pass checks the preamble's CRC and
        gives the same records as a coded archive of raw chunks, so every reader path works unchanged."""
        body = self.size - PREAMBLE_SIZE
        if pre.header_len:
            raise FormatError("stored archive: the preamble's header length must be 0")
        if body < 8:
            raise FormatError("stored archive is truncated: no safetensors header")
        (json_len,) = struct.unpack("<Q", self._read_at(PREAMBLE_SIZE, 8))
        if 8 + json_len > body or json_len > MAX_SAFETENSORS_HEADER:
            raise FormatError("stored archive: the safetensors header runs past the end of the file")
        self.head_size = 0
        self.header = Header(
            created_by="",
            source_header=self._read_at(PREAMBLE_SIZE + 8, json_len),
            source_size=body,
            scheme=DEFAULT_SCHEME,
            byte_order=DEFAULT_BYTE_ORDER,
            layout=WindowLayout(_STORED_CHUNK, 1, 0, _STORED_CHUNK, "none", STORED_PROCEDURE),
            model=None,
            alphabet=None,
            runtime={},
            coder={},
        )
        self.layout = layout = self._layout()
        self._plan({}, body // _STORED_CHUNK + 2 * len(layout.tensors) + 2)
        base = PREAMBLE_SIZE + layout.data_offset
        prefix = self._read_at(PREAMBLE_SIZE, layout.data_offset)  # the length and the JSON header
        crc, sha = zlib.crc32(prefix), hashlib.sha256(prefix)
        entries = []
        for plan in self.plan:
            data = self._read_at(base + plan.begin, plan.nbytes)
            crc, part = zlib.crc32(data, crc), zlib.crc32(data)
            sha.update(data)
            entries.append(ChunkEntry(base + plan.begin, Codec.RAW, plan.begin, plan.nbytes, plan.nbytes, part, 0))
        if crc != pre.header_crc:
            raise FormatError("stored archive is damaged (CRC mismatch)")
        tensor_bytes = sum(t.nbytes for t in layout.tensors)
        self.index = Index(
            tuple(entries),
            tuple(8.0 * t.nbytes for t in layout.tensors),
            (0.0,) * len(layout.tensors),
            8.0 * (layout.data_size - tensor_bytes),
            sha.digest(),
            0,
            0.0,
        )
        self.parts = {"preamble": PREAMBLE_SIZE, "header": 0, "frame_heads": 0, "index": 0, "footer": 0}
        self.filters = ()
        self.plan = mark_plan(self.plan, layout, ())

    @property
    def stored(self) -> bool:
        return self.header.layout.procedure == STORED_PROCEDURE

    @property
    def overhead(self) -> int:
        """Bytes of the archive that are not chunk payloads (their parts: ``parts``)."""
        return sum(self.parts.values())

    def _end(self, magic: bytes, size: int) -> bytes:
        """The footer (``size`` bytes ending in ``magic``) at the end of the file; bytes appended after a
        complete archive (a copy, a concatenation) are named as such."""
        raw = self._read_at(self.size - size, size)
        if raw.endswith(magic):
            return raw
        tail_start = max(0, self.size - _TAIL_SCAN)
        tail = self._read_at(tail_start, self.size - tail_start)
        at = tail.rfind(magic)
        if at >= 0:
            end = tail_start + at + len(magic)
            raise FormatError(
                f"archive has {self.size - end:,} bytes of trailing data after its footer (which ends at offset "
                f"{end:,}); cut them off to read it"
            )
        return raw

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

    def _check_reference(self, flags: int) -> None:
        """Format 1.6: the reference flag iff the header's ``x``; its tensors in the table, not filtered."""
        tensors = self.header.reference_tensors
        if bool(flags & FLAG_REFERENCE) != bool(tensors) or (tensors and self.version < (1, 6)):
            raise FormatError("archive: the reference flag, the header's reference and the format version disagree")
        if tensors and tensors[-1] >= len(self.layout.tensors):
            raise FormatError("header.x: a tensor coded against the reference is not in the tensor table")
        filtered = {f.tensor for f in self.filters}.intersection(tensors)
        if filtered:
            name = self.layout.tensors[min(filtered)].name
            raise FormatError(f"header.x: tensor {name!r} is both filtered and coded against the reference")

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

    def _check_index(self, count: int, header_end: int, index_offset: int) -> None:
        chunks = self.index.chunks
        if count != len(chunks) or len(chunks) != len(self.plan):
            raise FormatError(
                f"index lists {len(chunks)} chunks, footer {count}, window layout implies {len(self.plan)}"
            )
        if len(self.index.tensor_bits) != len(self.layout.tensors):
            raise FormatError("index: tensor_bits does not match the tensor table")
        pos = header_end
        for entry, plan in zip(chunks, self.plan, strict=True):
            if (entry.data_offset, entry.data_length) != (plan.begin, plan.nbytes):
                raise FormatError(f"index: chunk {plan.index} covers the wrong bytes")
            if entry.codec not in Codec.NAMES or (entry.codec in Codec.FLOAT_MODELS and not plan.lm):
                raise FormatError(f"index: chunk {plan.index} has an invalid codec")
            if entry.codec == Codec.CM_INTS and not plan.lm and int_tensor(plan, self.layout) is None:
                raise FormatError(f"index: chunk {plan.index} codes cm-ints-v1 outside an integer tensor")
            if entry.codec in (Codec.QUICK, Codec.CM_FAST2) and dtype_runs(plan, self.layout) is None:
                raise FormatError(
                    f"index: chunk {plan.index} codes {Codec.NAMES[entry.codec]} outside whole numeric values"
                )
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
            pos += self.head_size + entry.payload_length
        if pos != index_offset:
            raise FormatError("index: frames do not end where the index begins")

    def peek_payload(self, i: int, n: int) -> bytes:
        """The first ``n`` bytes (at most) of chunk ``i``'s payload, not checked by its CRC: for descriptions
        (``inspect``), never for decoding."""
        return self._read_at(self.payload_offset(i), min(n, self.index.chunks[i].payload_length))

    def payload_offset(self, i: int) -> int:
        """Where chunk ``i``'s payload starts in the file."""
        return self.index.chunks[i].frame_offset + self.head_size

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
        """The payload of chunk ``i`` after checking its frame head (format 1.0-1.3) and CRC."""
        entry = self.index.chunks[i]
        if self.head_size:
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
        payload = self._read_at(self.payload_offset(i), entry.payload_length)
        if zlib.crc32(payload) != entry.payload_crc:
            raise CorruptChunkError(f"{self.describe_chunk(i)} is damaged (CRC mismatch)")
        return entry, payload

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
