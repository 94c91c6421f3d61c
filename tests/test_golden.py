"""Committed archives that every future reader must still decode byte-exact (formats 1.0 and 1.1, both procedures)."""

from __future__ import annotations

from pathlib import Path

from lmgc_format.container.constants import MAGIC
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.decoder import DecodeOptions, decode_file
from lmgc_format.models import fingerprint, resolve

DATA = Path(__file__).resolve().parent / "data"


def test_golden_plain_archive_decodes(tmp_path: Path) -> None:
    arc = DATA / "golden_ints.safetensors.lmgc"
    assert arc.read_bytes()[:12] == MAGIC + b"\x01\x00\x00\x00"
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == (DATA / "golden_ints.safetensors").read_bytes()
    with ArchiveReader(arc) as r:
        assert r.version == (1, 0) and r.header.model is None


def test_golden_lm_archive_decodes_with_the_tiny_model(tmp_path: Path, tiny_model: str) -> None:
    arc = DATA / "golden_tiny.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.header.model is not None
        # The tiny model is drawn from numpy's PCG64: same seed, same weights, same fingerprint.
        assert r.header.model.sha256 == fingerprint(resolve(tiny_model))
        assert any(e.codec == 2 for e in r.index.chunks)
        assert r.header.scheme == "comma" and r.header.layout.window_bytes == 32
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == (DATA / "golden_tiny.safetensors").read_bytes()


def test_golden_v1_1_shuffle_archive_decodes(tmp_path: Path) -> None:
    arc = DATA / "golden_shuffle.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.version == (1, 1)
        assert {e.codec for e in r.index.chunks} & {3, 4}  # shuffle+zstd / bitshuffle+zstd
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)  # no LM chunk: no model needed
    assert out.read_bytes() == (DATA / "golden_shuffle.safetensors").read_bytes()


def test_golden_engine_archive_decodes_with_the_tiny_model(tmp_path: Path, tiny_model: str) -> None:
    """Pins procedure lmgc-llama-v1: a change to the engine that moves a bit of its logits fails here."""
    arc = DATA / "golden_engine.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.version == (1, 1)
        assert r.header.layout.procedure == "lmgc-llama-v1"
        assert any(e.codec == 2 for e in r.index.chunks)
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == (DATA / "golden_tiny.safetensors").read_bytes()
