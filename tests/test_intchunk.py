"""The portable LM procedure end to end: lmgc-int8-v1+cm-int-v1 archives decode byte-exact anywhere."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.container.constants import Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import ModelMismatchError, UnsupportedError
from lmgc_format.inspect import describe_archive as describe
from lmgc_format.lm.intmix import DigitMixer
from lmgc_format.pipeline.decoder import DecodeOptions, _check_engine, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from tests.conftest import ROOT, gradient_like, other_machine_env

PORTABLE = "lmgc-int8-v1+cm-int-v2"


def _int8(model: str, **kw: object) -> EncodeOptions:
    base: dict[str, object] = {"model": model, "engine": "int8", "level": "max", "window_bytes": 64, "batch": 3,
                               "fallback": False}  # fmt: skip
    base.update(kw)
    return EncodeOptions(**base)  # type: ignore[arg-type]


def _source(path: Path) -> Path:
    save_file(
        {
            "fc.bias": gradient_like((6,), 1),
            "fc.weight": gradient_like((6, 10), 2),
            "h.weight": gradient_like((5, 7), 3, torch.bfloat16),
            "f16": gradient_like((9,), 4, torch.float16),
            "f64": gradient_like((5,), 5).to(torch.float64),
            "steps": torch.arange(4, dtype=torch.int64),
        },
        str(path),
    )
    return path


def _roundtrip(tmp_path: Path, src: Path, opts: EncodeOptions) -> Path:
    arc = tmp_path / "a.lmgc"
    encode_file(src, arc, opts, overwrite=True)
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=opts.model), overwrite=True)
    assert out.read_bytes() == src.read_bytes()
    return arc


@pytest.mark.parametrize("scheme", ["comma", "0x", "none"])
def test_portable_archive_roundtrips_and_says_so(tmp_path: Path, tiny_model: str, scheme: str) -> None:
    arc = _roundtrip(tmp_path, _source(tmp_path / "g.safetensors"), _int8(tiny_model, scheme=scheme))
    with ArchiveReader(arc) as r:
        assert r.header.layout.procedure == PORTABLE
        assert any(e.codec == Codec.LM for e in r.index.chunks)
        assert len(r.header.runtime["engine_sha256"]) == 16
    assert describe(arc)["portable"] is True


def test_values_cut_by_the_group_size_roundtrip(tmp_path: Path, tiny_model: str) -> None:
    """Groups of 3 bytes over 4-byte floats: no whole values, so no top bytes apart; every digit coded."""
    _roundtrip(tmp_path, _source(tmp_path / "g.safetensors"), _int8(tiny_model, bytes_per_group=3, window_bytes=40))


def test_float_procedure_is_not_portable(tmp_path: Path, tiny_model: str) -> None:
    src = _source(tmp_path / "g.safetensors")
    arc = tmp_path / "f.lmgc"
    encode_file(src, arc, _int8(tiny_model, engine="lmgc"))
    assert describe(arc)["portable"] is False


def test_non_hex_scheme_is_refused(tmp_path: Path, tiny_model: str) -> None:
    with pytest.raises(UnsupportedError, match="hex scheme"):
        encode_file(_source(tmp_path / "g.safetensors"), tmp_path / "x.lmgc", _int8(tiny_model, scheme="iso"))


def test_portable_archive_decodes_as_another_machine(tmp_path: Path, tiny_model: str) -> None:
    """Encode with this machine's threads; decode in a fresh process with SIMD dispatch forced down and
    one thread (shared/tools/as-other-machine's settings), no --force: byte-exact."""
    src = _source(tmp_path / "g.safetensors")
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, _int8(tiny_model, threads=2))
    out = tmp_path / "out.safetensors"
    env = other_machine_env(tmp_path)
    code = (
        "import sys; from lmgc_format.pipeline.decoder import DecodeOptions, decode_file; "
        "decode_file(sys.argv[1], sys.argv[2], DecodeOptions(model=sys.argv[3], threads=1))"
    )
    subprocess.run([sys.executable, "-c", code, str(arc), str(out), tiny_model], check=True, env=env, cwd=ROOT,
                   timeout=600)  # fmt: skip
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


@pytest.mark.slow
def test_workers_give_the_same_chunks_and_decode_with_any_count(tmp_path: Path, tiny_model: str) -> None:
    src = _source(tmp_path / "g.safetensors")
    one, two = tmp_path / "one.lmgc", tmp_path / "two.lmgc"
    encode_file(src, one, _int8(tiny_model, window_bytes=32, batch=2))
    encode_file(src, two, _int8(tiny_model, window_bytes=32, batch=2, workers=2))
    with ArchiveReader(one) as a, ArchiveReader(two) as b:
        assert [a.read_chunk(i)[1] for i in range(len(a.plan))] == [b.read_chunk(i)[1] for i in range(len(b.plan))]
    for workers in (1, 3):
        out = tmp_path / f"out{workers}.safetensors"
        decode_file(two, out, DecodeOptions(model=tiny_model, workers=workers))
        assert out.read_bytes() == src.read_bytes()


def test_a_different_engine_digest_is_refused() -> None:
    class Engine:
        digest = "ab" * 32

    _check_engine({"engine_sha256": "ab" * 8}, Engine(), False, lambda e: None)  # type: ignore[arg-type]
    with pytest.raises(ModelMismatchError, match="other integers"):
        _check_engine({"engine_sha256": "cd" * 8}, Engine(), False, lambda e: None)  # type: ignore[arg-type]
    notes: list[object] = []
    _check_engine({"engine_sha256": "cd" * 8}, Engine(), True, notes.append)  # type: ignore[arg-type]
    assert notes


def test_mixer_frequencies_are_valid_and_learn() -> None:
    mixer = DigitMixer()
    rng = np.random.default_rng(0)
    first = None
    for _ in range(200):
        logits = rng.integers(-(5 << 16), 5 << 16, size=(4, 16))
        keys = [(2, 0)] * 4
        contexts = [[(0, 2), (1, 2, (3,)), (2, 2, (1, 2))] for _ in range(4)]
        freqs = mixer.mix(logits, keys, contexts)
        assert freqs.dtype == np.int64 and (freqs >= 1).all() and (freqs.sum(axis=1) == 1 << 20).all()
        if first is None:
            first = freqs[0, 7]
        mixer.update([7, 7, 7, 7])  # always digit 7 in this context: the counts learn it
    assert freqs[0, 7] > first and freqs[0, 7] > (1 << 19)


def test_the_encoder_reads_windows_whole_and_writes_what_stepping_writes(
    tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """intchunk's encoder takes the engine's forward() (teacher forcing); the archive is the one a
    stepping encoder writes, byte for byte, and it decodes (the decoder steps)."""
    from lmgc_format.lm import intchunk

    def payloads(path: Path) -> list[bytes]:  # the header records when it was written: compare the chunks
        with ArchiveReader(path) as r:
            return [r.read_chunk(i)[1] for i in range(len(r.index.chunks))]

    src = _source(tmp_path / "g.safetensors")
    whole = payloads(_roundtrip(tmp_path, src, _int8(tiny_model)))
    calls: list[int] = []
    real = intchunk._read_whole

    def stepping(predictor: object, alphabet: object, symbols: list[list[int]], check: object = None) -> object:
        calls.append(len(symbols))
        assert real(predictor, alphabet, symbols) is not predictor  # type: ignore[arg-type]  # it would read whole
        return predictor

    monkeypatch.setattr(intchunk, "_read_whole", stepping)
    stepped = tmp_path / "stepped.lmgc"
    encode_file(src, stepped, _int8(tiny_model))
    assert calls and payloads(stepped) == whole


def test_cancel_stops_the_encoder_inside_a_forward(tmp_path: Path, tiny_model: str) -> None:
    """Reading a chunk whole takes seconds on a real model: the cancel event is checked between layers."""
    from lmgc_format.errors import CancelledError
    from lmgc_format.lm.alphabet import Alphabet
    from lmgc_format.lm.intengine import IntLlamaEngine
    from lmgc_format.lm.models import get
    from lmgc_format.tensors.serialize import get_scheme

    lm = get(tiny_model, "float32")
    alphabet = Alphabet.for_tokenizer(lm.tokenizer, get_scheme("comma"))
    engine = IntLlamaEngine(lm, alphabet)
    assert lm.model.config.num_hidden_layers >= 2
    layers = []

    def check() -> None:
        layers.append(1)
        raise CancelledError("cancelled")

    with pytest.raises(CancelledError):
        engine.forward([[lm.info.bos_id] * 5], check)
    assert layers == [1]  # after the first layer, not after the whole pass
