"""The gradient corpus scripts: a family made, its manifest split, and the bench over it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_a_family_is_made_split_and_benched(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    run = [sys.executable, str(ROOT / "corpus" / "make_corpus.py"), str(out), "--only", "tabular_wine,tabular_cancer"]
    subprocess.run(run, check=True, capture_output=True, timeout=300)
    manifest = json.loads((out / "manifest.json").read_text())
    files = manifest["files"]
    assert {f["family"] for f in files} == {"tabular_wine", "tabular_cancer"}
    reps = {f"rep_{k}" for k in ("int8_row", "qsgd", "signs", "topk_i64", "topk_i32", "topk_dense")}
    assert {f["kind"] for f in files} == {"init", "delta", "grad", "adam_m", "adam_v"} | reps
    assert {f["dtype"] for f in files} == {"fp32", "bf16", "fp16", "wire"}
    assert {f["dtype"] for f in files if f["kind"] in reps} == {"wire"}
    assert "tabular_wine" in manifest["held_out_families"]
    assert {f["split"] for f in files if f["family"] == "tabular_wine"} == {"held_out"}
    assert {f["split"] for f in files if f["family"] == "tabular_cancer"} == {"tuning"}
    for f in files:
        assert (out / f["file"]).stat().st_size == f["bytes"]
    bench = [sys.executable, str(ROOT / "corpus" / "bench_corpus.py"), str(out), "--json", str(tmp_path / "b.json"),
             "--md", str(tmp_path / "b.md")]  # fmt: skip
    done = subprocess.run(bench, check=True, capture_output=True, text=True, timeout=600)
    assert "held_out" in done.stdout and "the best classical codec" in done.stdout
    rows = json.loads((tmp_path / "b.json").read_text())
    assert len(rows) == len([f for f in files if f["dtype"] != "wire"])  # representations: their own bench
    for r in rows:
        assert r["lmgc_fast"] > 0 and r["best_classical"] in r["classical"] and r["ratio"] > 0
        # where the bits go: one entry per byte of the dtype, order-0 entropy at most 8 bits a byte
        width = {"fp32": 4, "bf16": 2, "fp16": 2}[r["dtype"]]
        ranks = r["byte_bits"]
        assert len(ranks["coded"]) == len(ranks["order0"]) == width
        assert all(0 < c < 9 for c in ranks["coded"]) and all(0 <= o <= 8 for o in ranks["order0"])
    assert "| tabular_wine | held_out | fp32 |" in (tmp_path / "b.md").read_text()
    reps_bench = [sys.executable, str(ROOT / "corpus" / "bench_representations.py"), str(out), "--json",
                  str(tmp_path / "r.json")]  # fmt: skip
    done = subprocess.run(reps_bench, check=True, capture_output=True, text=True, timeout=600)
    rows = json.loads((tmp_path / "r.json").read_text())
    assert len(rows) == 12 and {r["kind"] for r in rows} == reps
    assert all(r["lmgc"] > 0 and "pcodec" in r["classical"] for r in rows)
    assert "held_out rep_qsgd" in done.stdout
