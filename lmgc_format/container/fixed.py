"""The fixed-size binary parts of an archive: preamble, frame head, footer."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from lmgc_format.container.constants import (
    FOOTER_MAGIC,
    FOOTER_SIZE,
    FRAME_HEAD_SIZE,
    FRAME_MAGIC,
    KNOWN_FLAGS,
    MAGIC,
    MAJOR,
    MAX_HEADER_LEN,
    MINOR,
    PREAMBLE_SIZE,
    TAIL_MAGIC,
    TAIL_SIZE,
    Codec,
)
from lmgc_format.errors import FormatError

_PREAMBLE = struct.Struct("<8sHHIII")
_FRAME = struct.Struct("<4sIB3xQQIII")  # + head crc u32
_FOOTER = struct.Struct("<QIIII8s")
_TAIL = struct.Struct("<II4s")
assert _PREAMBLE.size == PREAMBLE_SIZE
assert _FRAME.size + 4 == FRAME_HEAD_SIZE
assert _FOOTER.size == FOOTER_SIZE
assert _TAIL.size == TAIL_SIZE


@dataclass(frozen=True)
class Preamble:
    major: int
    minor: int
    header_len: int
    header_crc: int
    flags: int = 0

    def pack(self) -> bytes:
        return _PREAMBLE.pack(MAGIC, self.major, self.minor, self.flags, self.header_len, self.header_crc)

    @classmethod
    def unpack(cls, raw: bytes) -> Preamble:
        if len(raw) < PREAMBLE_SIZE:
            raise FormatError(
                f"not an lmgc archive: {len(raw)} bytes is shorter than the {PREAMBLE_SIZE}-byte preamble"
            )
        magic, major, minor, flags, header_len, header_crc = _PREAMBLE.unpack(raw[:PREAMBLE_SIZE])
        if magic != MAGIC:
            raise FormatError("not an lmgc archive (wrong magic bytes)")
        if major != MAJOR:
            raise FormatError(f"archive format version {major}.{minor} is not supported (this reader knows {MAJOR}.x)")
        if flags & ~KNOWN_FLAGS:
            raise FormatError(f"archive sets reserved flags {flags & ~KNOWN_FLAGS:#x} this reader does not know")
        if header_len > MAX_HEADER_LEN:
            raise FormatError(f"header length {header_len} exceeds the cap of {MAX_HEADER_LEN}")
        return cls(major, minor, header_len, header_crc, flags)


def preamble_for(header: bytes, flags: int = 0) -> Preamble:
    return Preamble(MAJOR, MINOR, len(header), zlib.crc32(header), flags)


@dataclass(frozen=True)
class FrameHead:
    chunk: int
    codec: int
    data_offset: int  # inside the safetensors data section
    data_length: int
    payload_length: int
    payload_crc: int
    model_bits: int  # ideal code length the model assigned (0 for raw/zstd)

    def pack(self) -> bytes:
        body = _FRAME.pack(
            FRAME_MAGIC,
            self.chunk,
            self.codec,
            self.data_offset,
            self.data_length,
            self.payload_length,
            self.payload_crc,
            self.model_bits,
        )
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def unpack(cls, raw: bytes, where: str) -> FrameHead:
        if len(raw) < FRAME_HEAD_SIZE:
            raise FormatError(f"{where}: frame head truncated")
        body, (crc,) = raw[: _FRAME.size], struct.unpack("<I", raw[_FRAME.size : FRAME_HEAD_SIZE])
        if zlib.crc32(body) != crc:
            raise FormatError(f"{where}: frame head fails its CRC")
        magic, chunk, codec, off, length, plen, pcrc, bits = _FRAME.unpack(body)
        if magic != FRAME_MAGIC:
            raise FormatError(f"{where}: no frame magic")
        if codec not in Codec.NAMES:
            raise FormatError(f"{where}: unknown codec id {codec}")
        return cls(chunk, codec, off, length, plen, pcrc, bits)


@dataclass(frozen=True)
class Footer:
    index_offset: int
    index_len: int
    index_crc: int
    chunk_count: int

    def pack(self) -> bytes:
        return _FOOTER.pack(self.index_offset, self.index_len, self.index_crc, self.chunk_count, 0, FOOTER_MAGIC)

    @classmethod
    def unpack(cls, raw: bytes) -> Footer:
        if len(raw) != FOOTER_SIZE:
            raise FormatError("archive is truncated: footer missing")
        off, length, crc, count, reserved, magic = _FOOTER.unpack(raw)
        if magic != FOOTER_MAGIC:
            raise FormatError("archive is truncated or damaged: footer magic missing")
        if reserved:
            raise FormatError("footer reserved field is not zero")
        return cls(off, length, crc, count)


@dataclass(frozen=True)
class Tail:
    """The compact layout's footer (format 1.4): where the index is, from the end of the file."""

    index_len: int
    index_crc: int

    def pack(self) -> bytes:
        return _TAIL.pack(self.index_len, self.index_crc, TAIL_MAGIC)

    @classmethod
    def unpack(cls, raw: bytes) -> Tail:
        if len(raw) != TAIL_SIZE:
            raise FormatError("archive is truncated: tail missing")
        length, crc, magic = _TAIL.unpack(raw)
        if magic != TAIL_MAGIC:
            raise FormatError("archive is truncated or damaged: tail magic missing")
        return cls(length, crc)
