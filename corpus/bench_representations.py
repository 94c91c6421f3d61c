"""Quantized and sparsified gradients (the corpus's ``rep_*`` files) against the classical codecs.

Whole file against whole file: lmgc's archive (written and decoded back, compared) against the best of
xz -9e, zstd -22, bz2 -9 and zlib -9, each on the file as it is and after a byte-position split of every
tensor (the safetensors header kept in front), and pcodec 1.1 (``standalone.simple_compress`` per
tensor at level 8, 8-bit types enabled, bf16 as uint16, the header by zstd -22). Every classical
candidate is decoded and compared before its size counts. Grouped by representation and split.

    python corpus/make_corpus.py out/corpus
    python corpus/bench_representations.py out/corpus [--level fast] [--json F] [--md F]
"""

from __future__ import annotations

import argparse
import bz2
import json
import lzma
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zstandard  # noqa: E402

import lmgc  # noqa: E402
from lmgc_format.bench.classical import by_name  # noqa: E402
from lmgc_format.tensors.source import SourceLayout, read_layout  # noqa: E402
from lmgc_format.transforms.shuffle import byte_shuffle, byte_unshuffle  # noqa: E402

_GENERAL: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "xz -9e": (lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
    "zstd -22": (lambda d: zstandard.ZstdCompressor(level=22).compress(d), zstandard.ZstdDecompressor().decompress),
    "bz2 -9": (lambda d: bz2.compress(d, 9), bz2.decompress),
    "zlib -9": (lambda d: zlib.compress(d, 9), zlib.decompress),
}


def _split(raw: bytes, layout: SourceLayout, inverse: bool = False) -> bytes:
    """Every tensor's bytes in planes by position in the value (or back); the header and gaps as they are."""
    out, pos = bytearray(raw[: layout.data_offset]), layout.data_offset
    for t in sorted(layout.tensors, key=lambda t: t.begin):
        begin, end = layout.data_offset + t.begin, layout.data_offset + t.end
        out += raw[pos:begin]
        part = raw[begin:end]
        out += byte_unshuffle(part, t.item_size) if inverse else byte_shuffle(part, t.item_size)
        pos = end
    return bytes(out + raw[pos:])


def _pcodec(raw: bytes, layout: SourceLayout) -> int:
    """pcodec as lmgc-tui bench runs it (bench/classical.py: level 8, 8-bit types on, bf16 as uint16), one
    standalone stream per tensor, the header by zstd -22; every tensor decoded and compared."""
    pco = by_name(["pcodec"])[0]
    size = len(zstandard.ZstdCompressor(level=22).compress(raw[: layout.data_offset]))
    for t in layout.tensors:
        data = raw[layout.data_offset + t.begin : layout.data_offset + t.end]
        if not data:
            continue
        packed = pco.encode(data, t.dtype)
        if pco.decode(packed, t.dtype, len(data)) != data:
            raise SystemExit(f"pcodec did not give {t.name!r} back")
        size += len(packed)
    return size


def classical(raw: bytes, layout: SourceLayout) -> dict[str, int]:
    sizes: dict[str, int] = {}
    split = _split(raw, layout)
    for name, (enc, dec) in _GENERAL.items():
        for label, data in ((name, raw), (f"bytesplit+{name}", split)):
            packed = enc(data)
            if dec(packed) != data:
                raise SystemExit(f"{label} did not give the file back")
            sizes[label] = len(packed)
    sizes["pcodec"] = _pcodec(raw, layout)
    return sizes


def measure(path: Path, level: str, tmp: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    arc, out = tmp / "a.lmgc", tmp / "a.safetensors"
    t0 = time.monotonic()
    lmgc.compress_file(path, arc, level=level, overwrite=True)
    t1 = time.monotonic()
    lmgc.decompress_file(arc, out, overwrite=True)
    t2 = time.monotonic()
    if out.read_bytes() != raw:
        raise SystemExit(f"{path}: lmgc did not give the file back")
    sizes = classical(raw, read_layout(path))
    best = min(sizes, key=sizes.__getitem__)
    size = arc.stat().st_size
    return {
        "lmgc": size,
        "encode_s": round(t1 - t0, 3),
        "decode_s": round(t2 - t1, 3),
        "classical": sizes,
        "best_classical": best,
        "ratio": round(size / sizes[best], 4),
    }


def summary(rows: list[dict[str, Any]]) -> list[tuple[str, str, int, float, float, float, int]]:
    """Per split and representation: files, total ratio, the best and worst file's, files above 1.00x."""
    out = []
    for split in ("held_out", "tuning"):
        for rep in sorted({r["kind"] for r in rows}):
            sel = [r for r in rows if r["split"] == split and r["kind"] == rep]
            if sel:
                total = sum(r["lmgc"] for r in sel) / sum(r["classical"][r["best_classical"]] for r in sel)
                ratios = [r["ratio"] for r in sel]
                above = sum(r["lmgc"] > r["classical"][r["best_classical"]] for r in sel)
                out.append((split, rep, len(sel), round(total, 4), min(ratios), max(ratios), above))
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| split | representation | files | lmgc / best (total bytes) | best file | worst file | files above 1.00x |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s} | {k} | {n} | {t:.3f}x | {lo:.3f}x | {hi:.3f}x | {a} |" for s, k, n, t, lo, hi, a in summary(rows)
    ]
    lines += ["", "| file | split | size | lmgc | best classical | ratio |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["split"] != "held_out", r["kind"], r["file"])):
        b = r["best_classical"]
        lines.append(
            f"| {r['file'].removesuffix('.safetensors')} | {r['split']} | {r['bytes']:,} | {r['lmgc']:,} | "
            f"{b} {r['classical'][b]:,} | {r['ratio']:.3f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--level", default="fast")
    ap.add_argument("--only", help="comma-separated representations (int8_row, qsgd, signs, topk_i64, ...)")
    ap.add_argument("--split", choices=("held_out", "tuning"), help="one split only")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    only = {f"rep_{k}" for k in args.only.split(",")} if args.only else None
    files = [
        f
        for f in manifest["files"]
        if f["kind"].startswith("rep_")
        and (only is None or f["kind"] in only)
        and (args.split is None or f["split"] == args.split)
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            row = {**f, **measure(args.corpus / f["file"], args.level, Path(tmp))}
            rows.append(row)
            print(
                f"{f['file']:48s} {f['split']:8s} {row['lmgc']:>10,} {row['ratio']:.3f}x ({row['best_classical']})",
                flush=True,
            )
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1) + "\n")
    for split, rep, n, total, lo, hi, above in summary(rows):
        print(f"{split:8s} {rep:16s} {n:3d} files {total:.3f}x (files {lo:.3f}-{hi:.3f}x, {above} above 1.00x)")
    if args.md:
        args.md.write_text(markdown(rows))


if __name__ == "__main__":
    main()
