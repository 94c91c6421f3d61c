"""The corpus against the classical codecs, whole file against whole file, held-out split first.

For every file of ``manifest.json`` (corpus/make_corpus.py): lmgc's fast level (archive written and
decoded back, compared) and each classical codec on the whole file (decoded and compared; a codec that
cannot take a file is left out of that file's row). Files are grouped the way issue 25's targets are:
dense fp32, sparse fp32 (the best classical codec under 60 % of the file), and 16-bit (bf16, fp16).
Ratios are lmgc's size over the best classical codec's, per file, then summed per group (total lmgc
bytes over total best-classical bytes). Per family, the bits per byte the fast level spends on each byte
of a value from the top (sign and exponent first) beside those bytes' order-0 entropy: where the room is.

    python corpus/bench_corpus.py out/corpus --json benchmarks/corpus.json --md benchmarks/corpus.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import lmgc  # noqa: E402
from lmgc_format.bench.classical import Unavailable, by_name  # noqa: E402
from lmgc_format.cm import codec as cm_codec  # noqa: E402
from lmgc_format.cm.kernel import REPORT_CELLS  # noqa: E402
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES  # noqa: E402
from lmgc_format.tensors.plan import plan_chunks  # noqa: E402
from lmgc_format.tensors.source import LM_DTYPES, SourceLayout, read_layout  # noqa: E402

CODECS = ("zstd-19", "xz-9e", "blosc2shuffle+zstd", "blosc2bitshuffle+zstd", "bytesplit+xz-9", "ZipNN", "FLAC")
_DTYPE = {"fp32": "F32", "bf16": "BF16", "fp16": "F16"}


def fast_bits(layout: SourceLayout, data: bytes) -> np.ndarray:
    """cm_codec.byte_rank_bits summed over the fast layout's float chunks (without the zero-sum filters) of a
    file's data section: the ideal bits per byte rank, then the sign's and the second byte's first bit's."""
    sizes = [t.item_size for t in layout.tensors]
    bits = np.zeros(REPORT_CELLS)
    for chunk in plan_chunks(layout, FAST_WINDOW_BYTES, FAST_BATCH, 0):
        if chunk.lm:
            bits += cm_codec.byte_rank_bits(chunk.windows, chunk.begin, data[chunk.begin : chunk.end], sizes)
    return bits


def byte_ranks(path: Path, raw: bytes) -> dict[str, list[float]]:
    """Where the bits go, per byte of a value from the top (sign and exponent first): the fast level's
    ideal bits per byte of that rank (cm_codec.byte_rank_bits over the fast layout's chunks, without the
    zero-sum filters) beside the order-0 entropy of those bytes over the file's float tensors. ``raw``: the
    file's bytes (measure() has read them already)."""
    layout = read_layout(path)
    data = raw[layout.data_offset :]
    floats = [t for t in layout.tensors if t.dtype in LM_DTYPES]
    width = max((t.item_size for t in floats), default=0)
    coded = fast_bits(layout, data)
    counts = np.zeros((width, 256))
    for t in floats:
        values = np.frombuffer(data[t.begin : t.end], dtype=np.uint8).reshape(-1, t.item_size)
        for k in range(t.item_size):  # rank k: the k-th byte from the top (little-endian: from the end)
            counts[k] += np.bincount(values[:, t.item_size - 1 - k], minlength=256)
    order0 = []
    for row in counts:
        p = row[row > 0] / row.sum()
        order0.append(round(float(-(p * np.log2(p)).sum()), 3))
    per = counts.sum(axis=1)
    return {"coded": [round(float(coded[k] / per[k]), 3) for k in range(width)], "order0": order0}


def measure(path: Path, dtype: str, tmp: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    arc, out = tmp / "a.lmgc", tmp / "a.safetensors"
    t0 = time.monotonic()
    lmgc.compress_file(path, arc, level="fast", overwrite=True)
    t1 = time.monotonic()
    lmgc.decompress_file(arc, out, overwrite=True)
    t2 = time.monotonic()
    if out.read_bytes() != raw:
        raise SystemExit(f"{path}: lmgc did not give the file back")
    classical: dict[str, int] = {}
    for c in by_name(list(CODECS)):
        if c.name == "FLAC" and dtype == "fp32":
            continue
        try:
            packed = c.encode(raw, _DTYPE[dtype])
            if c.decode(packed, _DTYPE[dtype], len(raw)) != raw:
                continue
        except (Unavailable, Exception):  # a codec that cannot take this whole file: left out, not guessed
            continue
        classical[c.name] = len(packed)
    best = min(classical, key=classical.__getitem__)
    return {
        "lmgc_fast": arc.stat().st_size,
        "encode_mb_s": round(len(raw) / 1e6 / max(t1 - t0, 1e-9), 2),
        "decode_mb_s": round(len(raw) / 1e6 / max(t2 - t1, 1e-9), 2),
        "classical": classical,
        "best_classical": best,
        "ratio": round(arc.stat().st_size / classical[best], 4),
        "byte_bits": byte_ranks(path, raw),
    }


def group(row: dict[str, Any]) -> str:
    if row["dtype"] != "fp32":
        return "16-bit"
    return "sparse fp32" if row["classical"][row["best_classical"]] < 0.6 * row["bytes"] else "dense fp32"


def summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, float]]:
    out = []
    for split in ("held_out", "tuning"):
        for g in ("dense fp32", "sparse fp32", "16-bit"):
            sel = [r for r in rows if r["split"] == split and group(r) == g]
            if sel:
                ours = sum(r["lmgc_fast"] for r in sel)
                best = sum(r["classical"][r["best_classical"]] for r in sel)
                out.append((split, g, len(sel), round(ours / best, 4)))
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| split | group | files | lmgc fast / best classical (total bytes) |", "|---|---|---|---|"]
    lines += [f"| {s} | {g} | {n} | {r:.3f}x |" for s, g, n, r in summary(rows)]
    lines += [
        "",
        "| file | split | group | size | lmgc fast | best classical | ratio | enc / dec MB/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(rows, key=lambda r: (r["split"] != "held_out", r["family"], r["file"]))
    for r in ordered:
        b = r["best_classical"]
        lines.append(
            f"| {r['file'].removesuffix('.safetensors')} | {r['split']} | {group(r)} | {r['bytes']:,} | "
            f"{r['lmgc_fast']:,} | {b} {r['classical'][b]:,} | {r['ratio']:.3f}x | "
            f"{r['encode_mb_s']} / {r['decode_mb_s']} |"
        )
    lines += [
        "",
        "Bits per byte by rank in the value (top byte first), the fast level's / order-0 entropy, per family:",
        "",
        "| family | split | dtype | files | rank 0 | rank 1 | rank 2 | rank 3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["split"] != "held_out", r["family"], r["dtype"]) for r in rows if "byte_bits" in r})
    for later, family, dtype in keys:
        sel = [r for r in rows if (r["split"] != "held_out", r["family"], r["dtype"]) == (later, family, dtype)]
        width = len(sel[0]["byte_bits"]["coded"])
        cells = []
        for k in range(4):
            if k < width:  # a plain mean over the family's files: each file counts once
                c = sum(r["byte_bits"]["coded"][k] for r in sel) / len(sel)
                o = sum(r["byte_bits"]["order0"][k] for r in sel) / len(sel)
                cells.append(f"{c:.2f} / {o:.2f}")
            else:
                cells.append("")
        split = "tuning" if later else "held_out"
        lines.append(f"| {family} | {split} | {dtype} | {len(sel)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in manifest["files"]:
            if f["kind"].startswith("rep_"):  # quantized and sparsified: corpus/bench_representations.py
                continue
            row = {**f, **measure(args.corpus / f["file"], f["dtype"], Path(tmp))}
            rows.append(row)
            print(
                f"{f['file']:44s} {f['split']:8s} {group(row):11s} {row['ratio']:.3f}x ({row['best_classical']})",
                flush=True,
            )
            if args.json:  # after every file: a long run that stops keeps what it measured
                args.json.write_text(json.dumps(rows, indent=1) + "\n")
    for split, g, n, ratio in summary(rows):
        print(f"{split:8s} {g:11s} {n:3d} files  {ratio:.3f}x the best classical codec")
    if args.md:
        args.md.write_text(markdown(rows))


if __name__ == "__main__":
    main()
