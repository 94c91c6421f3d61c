"""Chunk codec 7, lzma2: a raw LZMA2 stream for small files, exact and bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.container import lzma2
from lmgc_format.container.constants import Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file

DATA = Path(__file__).resolve().parent / "data"


def test_round_trip_plain_and_shuffled() -> None:
    ramp = np.arange(2000, dtype="<i4").tobytes()
    packed = lzma2.compress(ramp, 4)
    assert packed[0] == lzma2.SHUFFLED and len(packed) < len(ramp) // 4
    assert lzma2.decompress(packed, len(ramp), 4) == ramp
    noise = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    assert lzma2.compress(noise, 1)[0] == lzma2.PLAIN
    assert lzma2.decompress(lzma2.compress(noise, 1), len(noise), 1) == noise


@pytest.mark.parametrize("damage", ["mode", "truncated", "trailing", "longer", "shorter", "garbage"])
def test_every_damage_is_a_corrupt_chunk(damage: str) -> None:
    data = bytes(range(256)) * 40
    payload = lzma2.compress(data, 1)
    n = len(data)
    bad = {
        "mode": b"\x05" + payload[1:],
        "truncated": payload[:-4],
        "trailing": payload + b"\x00",
        "longer": payload,
        "shorter": payload,
        "garbage": b"\x00" + bytes(50),
    }[damage]
    n = {"longer": n - 1, "shorter": n + 1}.get(damage, n)
    with pytest.raises(CorruptChunkError):
        lzma2.decompress(bad, n, 1)


def test_small_files_keep_lzma2_where_it_wins_and_decode(tmp_path: Path) -> None:
    """A float16 matrix whose second half copies its first: no context model sees the copy, LZMA2 does."""
    half = np.random.default_rng(1).standard_normal((32, 64)).astype(np.float16)
    src = tmp_path / "r.safetensors"
    save_file({"r": torch.from_numpy(np.concatenate([half, half]))}, str(src))
    arc = tmp_path / "r.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    with ArchiveReader(arc) as r:
        assert [e.codec for e in r.index.chunks] == [Codec.LZMA2]
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()


def test_the_golden_pins_it() -> None:
    with ArchiveReader(DATA / "golden_quant.safetensors.lmgc") as r:
        assert any(e.codec == Codec.LZMA2 for e in r.index.chunks)
