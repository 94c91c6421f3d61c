"""The bench harness: sizes come from real round trips, failures are flagged, not ranked."""

from __future__ import annotations

import gzip
import json
import lzma
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from click.testing import CliRunner

from lmgc_format.bench.classical import Classical, Unavailable, by_name
from lmgc_format.bench.runner import BenchOptions, LmSetting, bench_file, run_classical
from lmgc_format.errors import UnsupportedError
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_tui.bench_view import bench_markdown
from lmgc_tui.cli import cli

DATA = bytes(range(256)) * 8 + b"\0" * 1000


def test_classical_sizes_are_the_codecs_own() -> None:
    r = run_classical(by_name(["zstd -19"])[0], DATA, "U8")
    assert r.roundtrip and r.ranked
    assert r.size == len(zstandard.ZstdCompressor(level=19).compress(DATA))
    assert r.percent == pytest.approx(100 * r.size / len(DATA))
    x = run_classical(by_name(["xz-9e"])[0], DATA, "U8")
    assert x.size == len(lzma.compress(DATA, preset=9 | lzma.PRESET_EXTREME))


def test_a_codec_that_loses_bytes_is_flagged_and_not_ranked() -> None:
    lossy = Classical("lossy", lambda d, _t: gzip.compress(d), lambda p, _t, _n: gzip.decompress(p)[:-1] + b"x")
    r = run_classical(lossy, DATA, "U8")
    assert r.roundtrip is False and not r.ranked and "not ranked" in r.note


def test_missing_or_unsuitable_codec_is_reported_as_skipped() -> None:
    def unavailable(_d: bytes, _t: str) -> bytes:
        raise Unavailable("needs the 'nothing' package")

    r = run_classical(Classical("ghost", unavailable, lambda p, _t, _n: p), DATA, "U8")
    assert r.roundtrip is None and r.size is None and r.note.startswith("skipped")
    fp = run_classical(by_name(["fpzip"])[0], DATA, "BF16")
    assert fp.roundtrip is None and ("BF16" in fp.note or "package" in fp.note)


def test_unknown_codec_name_is_an_error() -> None:
    with pytest.raises(UnsupportedError, match="unknown codec"):
        by_name(["gzip-9", "lz77000"])


def test_lm_result_is_a_verified_round_trip_of_the_real_encoder(
    tmp_path: Path, tiny_model: str, small_file: Path
) -> None:
    setting = LmSetting(EncodeOptions(model=tiny_model, window_bytes=32, level="max"))
    report = bench_file(small_file, BenchOptions(by_name(["gzip-9", "zstd-19"]), [setting]))
    names = [r.codec for r in report.results]
    assert names == ["gzip -9", "zstd -19", "lmgc comma"]
    lm = report.results[-1]
    assert lm.roundtrip is True and lm.decode_bps and lm.encode_bps
    # the size is what the encoder really wrote for the tensor data (it is deterministic)
    res = encode_file(small_file, tmp_path / "x.lmgc", EncodeOptions(model=tiny_model, window_bytes=32, level="max"))
    assert lm.size == res.coded_bytes
    best = report.best_classical()
    assert best is not None and best.codec in ("gzip -9", "zstd -19")
    obj = report.to_obj()
    assert obj["lm_vs_best_classical"]["lmgc comma"] == pytest.approx(lm.size / best.size, abs=1e-4)
    md = bench_markdown([report])
    assert "| **lmgc comma** |" in md and "gzip -9" in md


def test_cli_bench_json(tiny_model: str, small_file: Path) -> None:
    res = CliRunner().invoke(
        cli,
        [
            "bench",
            str(small_file),
            "--codecs",
            "gzip-9,zstd-19",
            "--model",
            tiny_model,
            "--window-bytes",
            "32",
            "--schemes",
            "comma,space",
            "--json",
            "-q",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.output)
    # --levels fast,max by default: the fast level's row, then one per scheme for the LM
    assert [r["codec"] for r in report["results"]] == ["gzip -9", "zstd -19", "lmgc comma", "lmgc space", "lmgc fast"]
    assert all(r["roundtrip"] for r in report["results"])
    assert "cm-fast-v2" in report["results"][-1]["note"]
    res = CliRunner().invoke(
        cli,
        ["bench", str(small_file), "--codecs", "zstd-19", "--levels", "fast", "--json", "-q"],
        catch_exceptions=False,
    )
    assert [r["codec"] for r in json.loads(res.output)[0]["results"]] == ["zstd -19", "lmgc fast"]
    res = CliRunner().invoke(cli, ["bench", str(small_file), "--levels", "fastest"])
    assert res.exit_code == 2 and "fastest" in res.output
    res = CliRunner().invoke(cli, ["bench", str(small_file), "--schemes", "hexy"])
    assert res.exit_code == 2 and "unknown scheme" in res.output


def test_cli_bench_speed_runs_both_engines_side_by_side(tiny_model: str, small_file: Path, tmp_path: Path) -> None:
    from lmgc_format.bench.speed import measure

    saved = tmp_path / "speed.json"
    args = ["bench", str(small_file), "--speed", "--model", tiny_model, "--window-bytes", "32", "--batch", "4"]
    res = CliRunner().invoke(
        cli, [*args, "--engines", "lmgc,transformers", "--dtypes", "float32", "--json", "-q", "--save", str(saved)]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert json.loads(saved.read_text()) == rows
    assert [(r["engine"], r["procedure"]) for r in rows] == [
        ("lmgc", "lmgc-llama-v1+cm-top-v4"),
        ("transformers", "lockstep-kv-v1+cm-top-v4"),
    ]
    for r in rows:
        assert r["roundtrip"] and r["tokens"] > 100 and r["encode_s"] > 0 and r["decode_s"] > 0
        assert r["encode_tok_s"] == pytest.approx(r["tokens"] / r["encode_s"], rel=1e-3)
    # Same model, same windows, every chunk LM-coded: the two engines' sizes agree closely.
    assert abs(rows[0]["coded_bytes"] - rows[1]["coded_bytes"]) <= 0.01 * rows[1]["coded_bytes"] + 8
    direct = measure(small_file, "lmgc", "float32", model=tiny_model, window_bytes=32, batch=4)
    assert direct.tokens == rows[0]["tokens"] and direct.coded_bytes == rows[0]["coded_bytes"]
    res = CliRunner().invoke(cli, [*args, "--engines", "warp"])
    assert res.exit_code == 2 and "choose from" in res.output


def test_positions_report_adds_up_to_the_lm_code_length(tiny_model: str, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from lmgc_format.bench.positions import SEPARATOR, position_report
    from tests.conftest import gradient_like

    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((10, 9), 21)}, str(src))
    rows = position_report(src, model=tiny_model, window_bytes=64, batch=3)
    assert [r.position for r in rows] == [0, 1, 2, 3, SEPARATOR]
    assert all(r.nbytes == 90 for r in rows[:4]) and rows[4].nbytes == 90 - 6  # a comma between values, 6 windows
    # The per-position bits add up to the code length the encoder reports for the same windows.
    arc = tmp_path / "g.lmgc"
    # The report reads the float procedure (mixing.py's mixer): compare with an archive of the same.
    opts = EncodeOptions(model=tiny_model, window_bytes=64, batch=3, fallback=False, engine="lmgc")
    result = encode_file(src, arc, opts)
    assert sum(r.lm_bits for r in rows) == pytest.approx(result.coded_bytes * 8, rel=0.05)
    # Order-0 entropy of a byte position is what the data says, computed independently.
    values = gradient_like((10, 9), 21).numpy().view("u1").reshape(-1, 4)[:, ::-1]
    for p in range(4):
        _, counts = np.unique(values[:, p], return_counts=True)
        entropy = float(-(counts * np.log2(counts / counts.sum())).sum())
        assert rows[p].order0_bits == pytest.approx(entropy)
    args = ["--positions", "--model", tiny_model, "--window-bytes", "64", "--batch", "3", "--json", "-q"]
    res = CliRunner().invoke(cli, ["bench", str(src), *args])
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.output)
    assert [p["position"] for p in report["positions"]] == [0, 1, 2, 3, "separator"]
    assert report["mixing"] is True and report["top_byte"] is True
    res = CliRunner().invoke(cli, ["bench", str(src), *args, "--no-top-byte"])
    assert res.exit_code == 0, res.output
    (mixed,) = json.loads(res.output)
    assert mixed["mixing"] is True and mixed["top_byte"] is False
    # The top byte's bits come from the byte model with it, from the LM's tokens without it.
    assert mixed["positions"][0]["lm_bits_per_byte"] != report["positions"][0]["lm_bits_per_byte"]
    res = CliRunner().invoke(cli, ["bench", str(src), *args, "--no-mix"])
    assert res.exit_code == 0, res.output
    (alone,) = json.loads(res.output)
    assert alone["mixing"] is False and alone["top_byte"] is False

    def total(rep: dict[str, Any]) -> float:
        return sum(p["lm_bits_per_byte"] * p["bytes"] for p in rep["positions"])

    # The grammar mask alone makes separators all but free (every other token keeps frequency 1
    # of 2**20); the mixed code is shorter in all.
    assert alone["positions"][-1]["lm_bits_per_byte"] > 0.01 > 0.001 > report["positions"][-1]["lm_bits_per_byte"]
    assert total(report) < total(alone)


def test_cli_bench_models_side_by_side(tiny_model: str, other_tiny_model: str, small_file: Path) -> None:
    args = ["bench", str(small_file), "--codecs", "zstd-19", "--window-bytes", "32", "--estimate", "--json", "-q"]
    res = CliRunner().invoke(cli, [*args, "--models", f"{tiny_model},{other_tiny_model}"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.output)
    lm = [r for r in report["results"] if r["codec"].startswith("lmgc")]
    tags = [Path(m).name for m in (tiny_model, other_tiny_model)]
    assert [r["codec"] for r in lm] == [*(f"lmgc comma [{t}] (estimate)" for t in tags), "lmgc fast"]
    assert all(r["size"] and r["estimate"] for r in lm[:2])
    assert lm[2]["roundtrip"] and not lm[2]["estimate"]  # the fast level is coded for real: quicker than estimated
    res = CliRunner().invoke(cli, [*args, "--models", tiny_model, "--model", tiny_model])
    assert res.exit_code == 2 and "not both" in res.output


def test_numeric_codecs_run_per_tensor_on_files_of_several_dtypes() -> None:
    """Quantized values beside their float scales: pcodec runs once per tensor (as its users run it), its
    size counts no framing, and the bytes come back; a codec that cannot take one of the tensors is
    skipped, saying which dtype."""
    import numpy as np

    q = np.arange(-60, 60, dtype=np.int8).repeat(8)
    scale = np.linspace(0.1, 1.0, 16, dtype=np.float32)
    data = q.tobytes() + b"\x00" * 3 + scale.tobytes()  # a gap between the tensors
    spans = ((0, q.nbytes, "I8"), (q.nbytes + 3, q.nbytes + 3 + scale.nbytes, "F32"))
    pco = run_classical(by_name(["pcodec"])[0], data, "mixed", spans)
    assert pco.roundtrip and pco.size is not None and 0 < pco.size < len(data)
    assert "one call per tensor" in pco.note
    fp = run_classical(by_name(["fpzip"])[0], data, "mixed", spans)
    assert fp.size is None and "I8" in fp.note
