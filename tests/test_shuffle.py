"""The shuffle transforms of the shuffle+zstd chunk codecs (format 1.1)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zstandard
from safetensors.numpy import save_file

from lmgc_format.container.constants import Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.pipeline.chunk_encoder import choose_codec
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.transforms.shuffle import bit_shuffle, bit_unshuffle, byte_shuffle, byte_unshuffle


@pytest.mark.parametrize("k", [1, 2, 4, 8])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 64, 1001])
def test_shuffles_are_exact_permutations(k: int, n: int) -> None:
    data = os.urandom(n)
    for fwd, back in ((byte_shuffle, byte_unshuffle), (bit_shuffle, bit_unshuffle)):
        out = fwd(data, k)
        assert len(out) == n and back(out, k) == data
        assert sorted(out) == sorted(data) or fwd is bit_shuffle  # byte shuffle moves bytes only


def test_byte_shuffle_groups_byte_positions() -> None:
    assert byte_shuffle(bytes([1, 2, 3, 4, 5, 6, 7]), 2) == bytes([1, 3, 5, 2, 4, 6, 7])
    assert bit_shuffle(bytes([0x80, 0x00, 0x80, 0x00]), 2) == bytes([0xC0, 0, 0, 0])


def dense(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 1e-3).astype(np.float32)


def test_choose_takes_a_shuffle_for_dense_floats() -> None:
    raw = dense(2048).tobytes()
    codec, payload = choose_codec(raw, None, True, value_size=4)
    assert codec in (Codec.SHUFFLE_ZSTD, Codec.BITSHUFFLE_ZSTD)
    assert len(payload) < len(zstandard.ZstdCompressor(level=19).compress(raw))
    assert choose_codec(raw, None, True, value_size=1)[0] in (Codec.RAW, Codec.ZSTD)


def test_dense_file_roundtrips_through_shuffle_chunks(tmp_path: Path, tiny_model: str) -> None:
    """Plain chunks cut mid-value (``plain_chunk_bytes`` not a multiple of 8) cannot be cm-ints-v1: the
    shuffles code them, and they decode through the whole pipeline."""
    src = tmp_path / "dense.safetensors"
    save_file(
        {"w": dense(1500, 1), "h": dense(300, 2).astype(np.float16), "i": np.arange(500, dtype=np.int64)}, str(src)
    )
    arc, out = tmp_path / "dense.lmgc", tmp_path / "out.safetensors"
    opts = EncodeOptions(model=tiny_model, window_bytes=256, batch=4, level="max", plain_chunk_bytes=1996)
    encode_file(src, arc, opts)
    with ArchiveReader(arc) as r:
        codecs = {e.codec for e in r.index.chunks}
        assert r.version >= (1, 1)  # the shuffle codecs came with 1.1
    assert codecs & {Codec.SHUFFLE_ZSTD, Codec.BITSHUFFLE_ZSTD}
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()
