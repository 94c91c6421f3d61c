"""One tensor coded with no container: what the zarr 3 codec stores per chunk (docs/FORMAT.md "Bare tensors").

zarr's metadata already holds a chunk's dtype and shape; an archive's preamble, header, tensor table,
index and tail (~200 bytes) would say them again in every chunk. A bare payload keeps only what the
dtype and shape do not say: whether the tensor is filtered or coded as rows (and how), each chunk's
codec and payload length (the last length is what is left), and a CRC-32 of the tensor's bytes in place
of the archive's SHA-256. The chunks themselves are the fast level's, byte for byte: encoding runs the
ordinary encoder on a one-tensor file, decoding rebuilds that archive and runs the ordinary decoder, so
every check of the strict reader (container/strict.py) applies to a bare payload too.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from lmgc_format.cm import varint
from lmgc_format.container.canonical import rebuild
from lmgc_format.container.constants import FAST2_PROCEDURE, FAST_PROCEDURE
from lmgc_format.container.header import Header, Index, WindowLayout
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.errors import CorruptChunkError, FormatError, UnsupportedError
from lmgc_format.events import ignore
from lmgc_format.pipeline.decoder import ChunkDecoder, DecodeOptions
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES
from lmgc_format.tensors.plan import PLAIN_CHUNK_BYTES, plan_chunks
from lmgc_format.tensors.serialize import DEFAULT_BYTE_ORDER, DEFAULT_SCHEME
from lmgc_format.tensors.source import DTYPE_SIZES, LM_DTYPES, SourceLayout, parse_header
from lmgc_format.transforms.filters import KINDS, InverseFilter

# The first byte's high 5 bits: a bare lmgc tensor, and its layout: the fast level's procedure and how many
# bits of each chunk table entry say its codec. Layout 1 (lmgc 0.16-0.17): cm-fast-v1, 3 bits (codecs 0-7);
# layout 2 (lmgc 0.18, what encode writes): cm-fast-v2, 4 bits (its codec is 9).
TAG, TAG2 = 0xA0, 0xA8
_LAYOUTS = {TAG: (FAST_PROCEDURE, 3), TAG2: (FAST2_PROCEDURE, 4)}
FILTERED, ROWS, STORED = 1, 2, 4  # the first byte's low 3 bits
NAME = "t"  # the tensor's name in the one-tensor file the codecs see (names no longer matter once coded)


def _file(dtype: str, shape: Sequence[int], data: bytes) -> bytes:
    header = rebuild([[NAME, dtype, list(shape)]], None)
    return struct.pack("<Q", len(header)) + header + data


def _check(dtype: str, shape: Sequence[int], nbytes: int | None = None) -> int:
    if dtype not in DTYPE_SIZES:
        raise UnsupportedError(f"lmgc codes numeric tensors; dtype {dtype!r} is not one ({', '.join(DTYPE_SIZES)})")
    size = DTYPE_SIZES[dtype]
    for n in shape:
        size *= n
    if nbytes is not None and nbytes != size:
        raise UnsupportedError(f"{nbytes:,} bytes are not a {dtype} tensor of shape {tuple(shape)} ({size:,} bytes)")
    return size


def encode(
    data: bytes, dtype: str, shape: Sequence[int], threads: int | None = None, procedure: str = FAST2_PROCEDURE
) -> bytes:
    """The bare payload of the tensor ``data`` (``dtype``: a safetensors dtype such as ``F32``): layout 2
    (cm-fast-v2), or layout 1 as lmgc 0.16-0.17 wrote it with ``procedure`` cm-fast-v1."""
    tag = next(t for t, (name, _) in _LAYOUTS.items() if name == procedure)
    _check(dtype, shape, len(data))
    crc = struct.pack("<I", zlib.crc32(data))
    with tempfile.TemporaryDirectory(prefix="lmgc-bare-") as tmp:
        source, target = Path(tmp) / "t.safetensors", Path(tmp) / "t.lmgc"
        source.write_bytes(_file(dtype, shape, data))
        encode_file(source, target, EncodeOptions(level="fast", threads=threads, fast_procedure=procedure))
        codec_bits = _LAYOUTS[tag][1]
        with ArchiveReader(target) as r:
            if r.stored:
                return bytes([tag | STORED]) + crc + data
            lay = r.header.layout
            if (lay.window_bytes, lay.batch, lay.bytes_per_group, lay.plain_chunk_bytes) != _LAYOUT:
                raise UnsupportedError("the fast level's window layout changed: bare payloads cannot say it")
            flags, extra = 0, b""
            if r.header.filters:
                flags |= FILTERED
                extra += bytes([KINDS.index(r.header.filters[0][1])])
            if r.header.rows:
                flags |= ROWS
                extra += varint.write(r.header.rows[0][1])
            table, payloads = bytearray(), []
            for i, entry in enumerate(r.index.chunks):
                payloads.append(r.read_chunk(i)[1])
                if i < len(r.index.chunks) - 1:
                    table += varint.write(entry.payload_length << codec_bits | entry.codec)
                else:
                    table.append(entry.codec)
    return bytes([tag | flags]) + extra + bytes(table) + crc + b"".join(payloads)


_LAYOUT = (FAST_WINDOW_BYTES, FAST_BATCH, 0, PLAIN_CHUNK_BYTES)


def decode(payload: bytes, dtype: str, shape: Sequence[int]) -> bytes:
    """The tensor's bytes from its bare payload; FormatError (or CorruptChunkError) for anything else,
    a payload of another codec included."""
    parsed = _parse(payload, dtype, shape)
    if isinstance(parsed, bytes):
        return parsed
    header, plan, chunks, crc, at = parsed
    with tempfile.TemporaryDirectory(prefix="lmgc-bare-") as tmp:
        target = Path(tmp) / "t.lmgc"
        writer = ArchiveWriter(target, header)
        try:
            for (codec, length), (begin, nbytes) in zip(chunks, plan, strict=True):
                writer.add_chunk(codec, begin, nbytes, payload[at : at + length], 0)
                at += length
            writer.finish(Index(tuple(writer.entries), (0.0,), (0.0,), 0.0, bytes(32), 0, 0.0))
        except BaseException:
            writer.abort()
            raise
        with ArchiveReader(target) as r:
            decoder = ChunkDecoder(r, DecodeOptions(), ignore, None, None)
            try:
                restore = InverseFilter(r.layout, r.filters)
                data = b"".join(restore.feed(p.begin, decoder.decode(p.index)) for p in r.plan)
            finally:
                decoder.close()
    if zlib.crc32(data) != crc:
        raise CorruptChunkError("lmgc tensor is damaged: it does not decode to its CRC-32")
    return data


def overhead(payload: bytes, dtype: str, shape: Sequence[int]) -> int:
    """The bytes of a bare payload that are not the coded chunks' (its flags, table and CRC-32)."""
    parsed = _parse(payload, dtype, shape)
    return 5 if isinstance(parsed, bytes) else parsed[4]


_Parsed = tuple[Header, list[tuple[int, int]], list[tuple[int, int]], int, int]


def _parse(payload: bytes, dtype: str, shape: Sequence[int]) -> bytes | _Parsed:
    """A stored tensor's bytes; or the archive header a payload implies, its chunk plan, each chunk's
    (codec, length), the CRC-32, and where the coded chunks start."""
    size = _check(dtype, shape)
    if not payload or payload[0] & 0xF8 not in _LAYOUTS:
        first = f"0x{payload[0]:02x}" if payload else "nothing"
        raise FormatError(f"not an lmgc tensor (its first byte is {first}): written by another codec?")
    flags, at = payload[0] & 7, 1
    procedure, codec_bits = _LAYOUTS[payload[0] & 0xF8]
    if flags & STORED:
        if flags != STORED or len(payload) != 5 + size:
            raise FormatError(f"a stored lmgc tensor of {size:,} bytes is {len(payload) - 5:,} bytes long")
        data = payload[5:]
        if zlib.crc32(data) != struct.unpack_from("<I", payload, 1)[0]:
            raise CorruptChunkError("stored lmgc tensor is damaged (CRC mismatch)")
        return data
    filters: tuple[tuple[int, str], ...] = ()
    rows: tuple[tuple[int, int], ...] = ()
    if flags & FILTERED:
        if at >= len(payload) or payload[at] >= len(KINDS):
            raise FormatError("lmgc tensor: unknown filter kind")
        filters, at = ((0, KINDS[payload[at]]),), at + 1
    if flags & ROWS:
        row, at = varint.read(payload, at, 9, "lmgc tensor: its row length is cut short")
        if len(shape) != 1 or dtype not in LM_DTYPES or not 2 <= row <= max(2, shape[0] // 2):
            raise FormatError(f"lmgc tensor: a {dtype} tensor of shape {tuple(shape)} cannot have rows of {row}")
        rows = ((0, row),)
    source = rebuild([[NAME, dtype, list(shape)]], None)
    header = Header(
        created_by="",
        source_header=source,
        source_size=8 + len(source) + size,
        scheme=DEFAULT_SCHEME,
        byte_order=DEFAULT_BYTE_ORDER,
        layout=WindowLayout(*_LAYOUT, "none", procedure),
        model=None,
        alphabet=None,
        runtime={},
        coder={},
        filters=filters,
        rows=rows,
    )
    plan = _plan(header)
    chunks, crc, at = _table(payload, at, plan, codec_bits)
    return header, plan, chunks, crc, at


def _plan(header: Header) -> list[tuple[int, int]]:
    """(begin, length) of every chunk the header implies (tensors/plan.py, as a reader derives it)."""
    data_offset = 8 + len(header.source_header)
    tensors = parse_header(header.source_header, header.source_size - data_offset)
    layout = SourceLayout(header.source_header, data_offset, header.source_size, tensors)
    chunks = plan_chunks(layout, *_LAYOUT, dict(header.rows))
    return [(c.begin, c.nbytes) for c in chunks]


def _table(
    payload: bytes, at: int, plan: list[tuple[int, int]], codec_bits: int
) -> tuple[list[tuple[int, int]], int, int]:
    """Each chunk's (codec, payload length), the CRC-32, and where the payloads start."""
    out, lengths = [], 0
    if not plan:
        raise FormatError("lmgc tensor: a tensor with no bytes is stored, not coded")
    for _ in plan[:-1]:
        word, at = varint.read(payload, at, 5, "lmgc tensor: its chunk table is cut short")
        out.append((word & (1 << codec_bits) - 1, word >> codec_bits))
        lengths += word >> codec_bits
    if at + 5 > len(payload):
        raise FormatError("lmgc tensor: its chunk table is cut short")
    last = payload[at]
    (crc,) = struct.unpack_from("<I", payload, at + 1)
    at += 5
    rest = len(payload) - at - lengths
    if rest < 0 or last >> codec_bits:
        raise FormatError("lmgc tensor: its chunk table does not fit its length")
    out.append((last, rest))
    return out, crc, at
