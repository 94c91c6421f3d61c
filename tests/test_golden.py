"""Committed archives that every future reader must still decode byte-exact (formats 1.0 to 1.2, both engines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmgc_format.container.constants import MAGIC
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.lm.models import fingerprint, resolve
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from tests.data.make_golden import GOLDEN_SOURCES, logits_fingerprint

DATA = Path(__file__).resolve().parent / "data"


def test_golden_plain_archive_decodes(tmp_path: Path) -> None:
    arc = DATA / "golden_ints.safetensors.lmgc"
    assert arc.read_bytes()[:12] == MAGIC + b"\x01\x00\x00\x00"
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == (DATA / "golden_ints.safetensors").read_bytes()
    with ArchiveReader(arc) as r:
        assert r.version == (1, 0) and r.header.model is None


def test_golden_v1_0_lm_archive_reads(tiny_model: str) -> None:
    """The 1.0 LM golden's container still parses. Its chunks are not decoded: the machine that wrote
    it (2026-11-25, AMD EPYC) rounded the tiny model's logits differently from the Intel hosts of
    2026-11-26, and its fingerprint was not recorded (tests/data/make_golden.py); the 1.1 LM goldens
    below pin decoding."""
    arc = DATA / "golden_tiny.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.version == (1, 0)
        assert r.header.model is not None
        # The tiny model is drawn from numpy's PCG64: same seed, same weights, same fingerprint.
        assert r.header.model.sha256 == fingerprint(resolve(tiny_model))
        assert any(e.codec == 2 for e in r.index.chunks)
        assert r.header.scheme == "comma" and r.header.layout.window_bytes == 32
        assert r.header.layout.procedure == "lockstep-kv-v1"


def test_golden_v1_1_shuffle_archive_decodes(tmp_path: Path) -> None:
    arc = DATA / "golden_shuffle.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.version == (1, 1)
        assert {e.codec for e in r.index.chunks} & {3, 4}  # shuffle+zstd / bitshuffle+zstd
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)  # no LM chunk: no model needed
    assert out.read_bytes() == (DATA / "golden_shuffle.safetensors").read_bytes()


@pytest.mark.parametrize(
    ("name", "procedure"),
    [
        ("golden_engine.safetensors.lmgc", "lmgc-llama-v1"),
        ("golden_lockstep.safetensors.lmgc", "lockstep-kv-v1"),
        ("golden_mix.safetensors.lmgc", "lmgc-llama-v1+cm-mix-v1"),
        ("golden_top.safetensors.lmgc", "lmgc-llama-v1+cm-top-v1"),
        ("golden_top2.safetensors.lmgc", "lmgc-llama-v1+cm-top-v2"),
        ("golden_top3.safetensors.lmgc", "lmgc-llama-v1+cm-top-v3"),
        ("golden_filters.safetensors.lmgc", "lmgc-llama-v1+cm-top-v3"),
        ("golden_top4.safetensors.lmgc", "lmgc-llama-v1+cm-top-v4"),
    ],
)
def test_golden_lm_archive_decodes(tmp_path: Path, tiny_model: str, name: str, procedure: str) -> None:
    """Pins each procedure: a change to an engine, the quantization or the mixing that moves one bit fails here."""
    arc = DATA / name
    # Format 1.2: these pin the zero-sum filters too (golden_top4: with the fits of cm-top-v4).
    filtered = name in ("golden_filters.safetensors.lmgc", "golden_top4.safetensors.lmgc")
    with ArchiveReader(arc) as r:
        assert r.version == ((1, 2) if filtered else (1, 1))
        assert {f.kind for f in r.filters} == ({"sum-first-axis-v1", "sum-last-axis-v1"} if filtered else set())
        assert r.header.layout.procedure == procedure
        assert any(e.codec == 2 for e in r.index.chunks)
    engine = procedure.partition("+")[0]
    recorded = json.loads((DATA / "golden_floats.json").read_text())[engine]
    if logits_fingerprint(tiny_model, engine) != recorded:
        pytest.skip(
            f"this machine computes the tiny model's {engine} logits differently from the machine that wrote "
            "the goldens, so no LM archive of that machine can decode here (docs/FORMAT.md, Reproducibility)"
        )
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == (DATA / GOLDEN_SOURCES.get(name, "golden_tiny.safetensors")).read_bytes()


def test_golden_portable_lm_archive_decodes_everywhere(tmp_path: Path, tiny_model: str) -> None:
    """lmgc-int8-v1+cm-int-v1 (lmgc 0.12): integer arithmetic only, so it never skips: it decodes on every
    host, CI included, and pins every bit of the portable engine, its mixing and the top-byte stream."""
    arc = DATA / "golden_int8.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.header.layout.procedure == "lmgc-int8-v1+cm-int-v1"
        assert sum(e.codec == 2 for e in r.index.chunks) >= 3
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == (DATA / "golden_fast.safetensors").read_bytes()


def test_golden_portable_v2_archive_decodes_everywhere(tmp_path: Path, tiny_model: str) -> None:
    """lmgc-int8-v1+cm-int-v2 (lmgc 0.14, the default): one binary arithmetic stream per LM chunk. Integer
    arithmetic only: it decodes on every host, and is smaller than the same chunks in cm-int-v1 (same model,
    same windows: only the framing and the top-byte parameters differ)."""
    arc = DATA / "golden_int8_v2.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert r.header.layout.procedure == "lmgc-int8-v1+cm-int-v2"
        assert r.header.coder["name"] == "binary-arithmetic-32"
        v2 = [r.read_chunk(i)[1] for i, e in enumerate(r.index.chunks) if e.codec == 2]
    with ArchiveReader(DATA / "golden_int8.safetensors.lmgc") as r:
        v1 = [r.read_chunk(i)[1] for i, e in enumerate(r.index.chunks) if e.codec == 2]
    assert len(v2) == len(v1) >= 3 and sum(map(len, v2)) < sum(map(len, v1))
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == (DATA / "golden_fast.safetensors").read_bytes()


def test_golden_portable_v2_archive_is_what_this_machine_writes(tmp_path: Path, tiny_model: str) -> None:
    """The encoder still writes golden_int8_v2's LM chunks byte for byte: a change to the engine, the mixer,
    the kernel's parameters or the stream fails here, on every host."""
    from tests.data.make_golden import GOLDEN_INT8_OPTIONS

    arc = tmp_path / "again.lmgc"
    opts = EncodeOptions(model=tiny_model, **GOLDEN_INT8_OPTIONS)  # type: ignore[arg-type]
    encode_file(DATA / "golden_fast.safetensors", arc, opts)
    chunks = []
    for path in (arc, DATA / "golden_int8_v2.safetensors.lmgc"):
        with ArchiveReader(path) as r:
            # the LM chunks: the plain chunk of golden_fast's integer tensor is cm-ints-v1's since lmgc 0.15
            chunks.append([r.read_chunk(i)[1] for i, e in enumerate(r.index.chunks) if e.codec == 2])
    assert chunks[0] and chunks[0] == chunks[1]


def test_cm_int_v1_still_writes_golden_int8s_chunks(
    tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """intchunk keeps cm-int-v1's encoder beside its decoder: asked for that procedure, the encoder writes
    golden_int8's LM chunks byte for byte (lmgc 0.12-0.13's), so the old framing stays specified by code
    that runs."""
    from lmgc_format.pipeline import encode_lm
    from tests.data.make_golden import GOLDEN_INT8_OPTIONS

    monkeypatch.setattr(encode_lm, "PORTABLE_MIXING", "cm-int-v1")
    arc = tmp_path / "v1.lmgc"
    encode_file(DATA / "golden_fast.safetensors", arc, EncodeOptions(model=tiny_model, **GOLDEN_INT8_OPTIONS))  # type: ignore[arg-type]
    chunks = []
    for path in (arc, DATA / "golden_int8.safetensors.lmgc"):
        with ArchiveReader(path) as r:
            assert r.header.layout.procedure == "lmgc-int8-v1+cm-int-v1"
            # the LM chunks: the plain chunk of golden_fast's integer tensor is cm-ints-v1's since lmgc 0.15
            chunks.append([r.read_chunk(i)[1] for i, e in enumerate(r.index.chunks) if e.codec == 2])
    assert chunks[0] == chunks[1]
