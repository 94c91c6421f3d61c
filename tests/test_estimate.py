"""bench --estimate: one forward pass per window gives the real encoder's sizes, give or take a few bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from lmgc_format.bench.estimate import TeacherForcedPredictor, estimate_file
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.lm.alphabet import Alphabet, vocabulary_bytes
from lmgc_format.lm.lmchunk import encode_windows
from lmgc_format.lm.models import get
from lmgc_format.lm.predictor import LockstepPredictor
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.plan import plan_chunks
from lmgc_format.tensors.serialize import get_scheme
from lmgc_format.tensors.source import read_layout
from lmgc_tui.cli import cli
from tests.conftest import gradient_like
from tests.test_filters import softmax_head_gradient


@pytest.fixture
def grads(tmp_path: Path) -> Path:
    path = tmp_path / "grads.safetensors"
    save_file(
        {
            "a.weight": gradient_like((12, 10), 3),
            "a.bias": gradient_like((12,), 4),
            "b.weight": gradient_like((40,), 5, torch.bfloat16),
            "steps": torch.arange(7, dtype=torch.int64),
            **softmax_head_gradient(10, 6, 7, torch.float32),  # filtered (filters.py): the estimate must be too
        },
        str(path),
    )
    return path


def _primed(tiny_model: str, path: Path, restricted: bool) -> tuple[TeacherForcedPredictor, list[list[int]]]:
    lm = get(tiny_model)
    scheme = get_scheme("comma")
    alphabet = Alphabet.from_vocabulary(vocabulary_bytes(lm.tokenizer), scheme)
    layout = read_layout(path)
    chunk = next(c for c in plan_chunks(layout, 32, 4, 0) if c.lm)
    raw = path.read_bytes()[layout.data_offset + chunk.begin : layout.data_offset + chunk.end]
    data = [raw[w.begin - chunk.begin : w.end - chunk.begin] for w in chunk.windows]
    predictor = TeacherForcedPredictor(lm, alphabet, restricted)
    seen: list[list[list[int]]] = []

    def prime(symbols: list[list[int]]) -> None:
        seen.append(symbols)
        predictor.prime(symbols)

    # The coder hands the predictor the symbols it will feed, then steps through them.
    _, _, tokens = encode_windows(
        predictor, alphabet, scheme, chunk.windows, data, lm.tokenizer, True, mixing="cm-top-v3", prime=prime
    )
    (symbols,) = seen
    assert predictor.prime(symbols) == sum(map(len, symbols)) == tokens  # primed afresh for the tests below
    return predictor, symbols


@pytest.mark.parametrize("restricted", [True, False])
def test_teacher_forced_rows_are_the_lockstep_predictors_within_float_noise(
    tiny_model: str, grads: Path, restricted: bool
) -> None:
    tf, symbols = _primed(tiny_model, grads, restricted)
    assert tf.head_mode == ("restricted" if restricted else "full")
    lm = get(tiny_model)
    step = LockstepPredictor(lm, Alphabet.from_vocabulary(vocabulary_bytes(lm.tokenizer), get_scheme("comma")))
    step.reset()
    ids = Alphabet.from_vocabulary(vocabulary_bytes(lm.tokenizer), get_scheme("comma")).ids
    feed = [lm.info.bos_id] * len(symbols)
    for t in range(max(map(len, symbols))):
        want, got = step.step(feed), tf.step(feed)
        for i, syms in enumerate(symbols):
            if t < len(syms):
                np.testing.assert_allclose(got[i], want[i], atol=1e-4)
        feed = [ids[s[t]] if t + 1 < len(s) else lm.info.bos_id for s in symbols]


def test_a_token_it_was_not_primed_with_is_refused(tiny_model: str, grads: Path) -> None:
    tf, symbols = _primed(tiny_model, grads, True)
    bos = get(tiny_model).info.bos_id
    tf.step([bos] * len(symbols))
    with pytest.raises(ValueError, match="computed for"):
        tf.step([bos] * len(symbols))  # step 1 must be fed each window's first symbol
    with pytest.raises(ValueError, match="windows"):
        tf.step([bos])


@pytest.mark.parametrize(
    ("scheme", "mixing", "engine"),
    [("comma", True, "lmgc"), ("comma", True, "transformers"), ("none", False, "lmgc"), ("iso", True, "lmgc")],
)
def test_estimate_is_within_a_few_bytes_of_the_real_archive(
    tmp_path: Path, tiny_model: str, grads: Path, scheme: str, mixing: bool, engine: str
) -> None:
    opts = EncodeOptions(
        model=tiny_model, scheme=scheme, mixing=mixing, engine=engine, window_bytes=32, batch=4, fallback=False
    )
    real = encode_file(grads, tmp_path / "x.lmgc", opts)
    est = estimate_file(grads, opts)
    with ArchiveReader(tmp_path / "x.lmgc") as r:
        assert "head.weight" in {r.layout.tensors[f.tensor].name for f in r.filters}
    assert est.data_bytes == real.data_bytes and est.codecs == real.codecs
    assert abs(est.coded_bytes - real.coded_bytes) <= 4 + 0.005 * real.coded_bytes
    assert est.procedure == "teacher-forced" + ("+cm-top-v4" if mixing and scheme != "iso" else "")
    assert est.tokens > 0


def test_portable_estimate_is_the_archive_to_the_byte(tmp_path: Path, tiny_model: str, grads: Path) -> None:
    """The int8 engine's integers do not depend on batching, so the estimate runs the encoder itself."""
    opts = EncodeOptions(model=tiny_model, engine="int8", level="max", window_bytes=32, batch=4, fallback=False)
    real = encode_file(grads, tmp_path / "x.lmgc", opts)
    est = estimate_file(grads, opts)
    assert est.procedure == "lmgc-int8-v1+cm-int-v2"
    assert est.coded_bytes == real.coded_bytes and est.codecs == real.codecs and est.tokens > 0


@pytest.mark.parametrize("mixing", [True, False])
def test_estimate_makes_the_encoders_choice_of_codec_per_chunk(
    tmp_path: Path, tiny_model: str, grads: Path, mixing: bool
) -> None:
    opts = EncodeOptions(model=tiny_model, window_bytes=32, batch=4, mixing=mixing, level="max")
    real = encode_file(grads, tmp_path / "x.lmgc", opts)
    est = estimate_file(grads, opts)
    assert est.codecs == real.codecs
    if mixing:  # the mixer learns the chunk: LM chunks are kept
        assert "lm" in est.codecs
        assert abs(est.coded_bytes - real.coded_bytes) <= 4 + 0.005 * real.coded_bytes
    else:  # the random tiny LM alone loses to zstd everywhere: then every size is exactly the encoder's
        assert "lm" not in est.codecs
        assert est.coded_bytes == real.coded_bytes


def test_cli_bench_estimate_marks_its_rows(tiny_model: str, grads: Path) -> None:
    args = ["bench", str(grads), "--codecs", "zstd-19", "--model", tiny_model, "--window-bytes", "32"]
    res = CliRunner().invoke(
        cli, [*args, "--estimate", "--no-fallback", "--schemes", "comma,none", "--json", "-q"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.output)
    rows = {r["codec"]: r for r in report["results"]}
    lm = rows["lmgc comma (no fallback, estimate)"]
    assert lm["estimate"] and lm["roundtrip"] is None and lm["encode_bps"] is None
    assert "nothing decoded" in lm["note"]
    assert "lmgc none (no fallback, estimate)" in report["lm_vs_best_classical"]
    assert rows["zstd -19"]["roundtrip"] is True
    for bad in (["--speed"], ["--no-lm"]):
        res = CliRunner().invoke(cli, [*args, "--estimate", *bad])
        assert res.exit_code == 2 and "--estimate" in res.output
    res = CliRunner().invoke(cli, [*args, "--positions", "--byte-order", "stored"])
    assert res.exit_code == 2 and "--byte-order" in res.output


def test_positions_estimate_gives_the_coders_bits_per_position(tiny_model: str, grads: Path) -> None:
    from lmgc_format.bench.positions import position_report

    real = position_report(grads, model=tiny_model, window_bytes=32, batch=4)
    est = position_report(grads, model=tiny_model, window_bytes=32, batch=4, estimate=True)
    assert [(r.position, r.nbytes, r.order0_bits) for r in est] == [(r.position, r.nbytes, r.order0_bits) for r in real]
    for r, e in zip(real, est, strict=True):
        assert abs(e.lm_bits - r.lm_bits) <= 0.01 * r.lm_bits + 0.5
    args = ["bench", str(grads), "--positions", "--estimate", "--model", tiny_model, "--window-bytes", "32"]
    res = CliRunner().invoke(cli, [*args, "--batch", "4", "--json", "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.output)
    assert report["estimate"] is True
    assert sum(p["lm_bits_per_byte"] * p["bytes"] for p in report["positions"]) == pytest.approx(
        sum(e.lm_bits for e in est),
        rel=1e-4,  # the JSON rounds bits per byte
    )
