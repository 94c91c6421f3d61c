"""The byte format: fixed parts, and a reader that rejects what it cannot trust."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from lmgc_format.container.constants import FOOTER_SIZE, FRAME_HEAD_SIZE, MAGIC, PREAMBLE_SIZE, TAIL_SIZE
from lmgc_format.container.fixed import Footer, FrameHead, Preamble, Tail
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, FormatError, LmgcError
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file


def test_fixed_parts_roundtrip() -> None:
    p = Preamble(1, 0, 1234, 0xDEADBEEF)
    raw = p.pack()
    assert len(raw) == PREAMBLE_SIZE and raw[:8] == MAGIC and raw[0] & 0x80
    assert Preamble.unpack(raw) == p
    f = FrameHead(3, 2, 100, 200, 50, 0x1234, 777)
    assert len(f.pack()) == FRAME_HEAD_SIZE
    assert FrameHead.unpack(f.pack(), "x") == f
    ft = Footer(10, 20, 30, 4)
    assert len(ft.pack()) == FOOTER_SIZE and Footer.unpack(ft.pack()) == ft
    tail = Tail(123, 0xFEEDFACE)
    assert len(tail.pack()) == TAIL_SIZE and Tail.unpack(tail.pack()) == tail


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"", "shorter than"),
        (lambda b: b"PK\x03\x04" + b[4:], "wrong magic"),
        (lambda b: b[:8] + struct.pack("<H", 2) + b[10:], "version 2"),
        (lambda b: b[:12] + struct.pack("<I", 0x24) + b[16:], "reserved flags"),
        (lambda b: b[:10] + struct.pack("<H", 3) + b[12:], "cannot set the compact"),
        (lambda b: b[:16] + struct.pack("<I", 0x7FFFFFF) + b[20:], "truncated"),
        (lambda b: b[: PREAMBLE_SIZE + 3] + bytes([b[PREAMBLE_SIZE + 3] ^ 1]) + b[PREAMBLE_SIZE + 4 :], "header"),
        (lambda b: b[:-1], "tail"),
        (lambda b: b[: -TAIL_SIZE - 2] + bytes([b[-TAIL_SIZE - 2] ^ 4]) + b[-TAIL_SIZE - 1 :], "index"),
    ],
)
def test_reader_rejects_malformed_archives(plain_archive: Path, tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.lmgc"
    bad.write_bytes(mutate(plain_archive.read_bytes()))
    with pytest.raises(FormatError, match=message):
        ArchiveReader(bad)


def test_truncation_at_every_point_is_a_clean_error(plain_archive: Path, tmp_path: Path) -> None:
    data = plain_archive.read_bytes()
    bad = tmp_path / "cut.lmgc"
    for cut in range(0, len(data), max(1, len(data) // 97)):
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError):
            ArchiveReader(bad)


def test_flipped_payload_bit_names_the_chunk(plain_archive: Path, tmp_path: Path) -> None:
    with ArchiveReader(plain_archive) as r:
        at = r.payload_offset(0)
    data = bytearray(plain_archive.read_bytes())
    data[at] ^= 0x10
    bad = tmp_path / "flip.lmgc"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.safetensors"
    with pytest.raises(CorruptChunkError, match=r"chunk 0 \(tensor .*bytes 0\.\.\d+\) is damaged"):
        decode_file(bad, out)
    assert not out.exists()
    with pytest.raises(LmgcError):
        decode_file(bad, None)


@pytest.fixture
def plain_archive(tmp_path: Path) -> Path:
    """An archive of integer tensors only: no model involved, fast."""
    import torch
    from safetensors.torch import save_file

    src = tmp_path / "ints.safetensors"
    save_file({"a": torch.arange(300, dtype=torch.int32), "b": torch.ones(10, dtype=torch.int64)}, str(src))
    arc = tmp_path / "ints.lmgc"
    encode_file(src, arc, EncodeOptions(plain_chunk_bytes=256))
    return arc
