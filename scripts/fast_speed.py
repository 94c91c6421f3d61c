"""The fast level's two procedures side by side (BENCHMARKS.md "Speed and size"): cm-fast-v2 (what
``--level fast`` writes since 0.18) against cm-fast-v1 on the same files, in one process, one run after the
other: whole archive bytes, encode and decode MB/s (the file's bytes over the seconds of encode_file and
decode_file, numba compiled beforehand), and whether the decoded file is the source byte for byte.

    python scripts/fast_speed.py FILE.safetensors ... [--md benchmarks/fast_speed.md]
    python scripts/fast_speed.py --sizes CORPUS/*.safetensors   # sizes only, summed by the files' last two
                                                                # name parts (corpus/make_corpus.py's kinds)
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path

from lmgc_format.container.constants import FAST2_PROCEDURE, FAST_PROCEDURE
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file


def measure(src: Path, procedure: str, tmp: Path) -> dict[str, float | int | bool | str]:
    arc, out = tmp / "a.lmgc", tmp / "a.safetensors"
    start = time.perf_counter()
    result = encode_file(src, arc, EncodeOptions(level="fast", fast_procedure=procedure), overwrite=True)
    encode = time.perf_counter() - start
    start = time.perf_counter()
    decode_file(arc, out, overwrite=True)
    decode = time.perf_counter() - start
    size = src.stat().st_size
    same = out.read_bytes() == src.read_bytes()
    return {"file": src.name, "procedure": procedure, "bytes": result.archive_size, "source": size,
            "encode_mb_s": size / encode / 1e6, "decode_mb_s": size / decode / 1e6, "identical": same}  # fmt: skip


def sizes(files: list[Path]) -> None:
    """Each procedure's whole archives summed by kind (``mlp_digits_grad_fp32`` -> ``grad_fp32``)."""
    totals: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    with tempfile.TemporaryDirectory(prefix="lmgc-fast-") as name:
        arc = Path(name) / "a.lmgc"
        for src in files:
            kind = "_".join(src.stem.split("_")[-2:])
            for i, procedure in enumerate((FAST_PROCEDURE, FAST2_PROCEDURE)):
                opts = EncodeOptions(level="fast", fast_procedure=procedure)
                totals[kind][i] += encode_file(src, arc, opts, overwrite=True).archive_size
    for kind, (v1, v2) in sorted(totals.items()):
        print(f"{kind:14s} cm-fast-v1 {v1:12,d}  cm-fast-v2 {v2:12,d}  {v2 / v1 - 1:+.3%}")
    v1, v2 = (sum(t[i] for t in totals.values()) for i in (0, 1))
    print(f"{'all':14s} cm-fast-v1 {v1:12,d}  cm-fast-v2 {v2:12,d}  {v2 / v1 - 1:+.3%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--md", type=Path, help="also write the table here")
    ap.add_argument("--sizes", action="store_true", help="whole archive sizes only, summed by kind of file")
    args = ap.parse_args()
    if args.sizes:
        sizes(args.files)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="lmgc-fast-") as name:
        tmp = Path(name)
        encode_file(args.files[0], tmp / "warm.lmgc", EncodeOptions(level="fast"))  # numba loads its kernels
        for src in args.files:
            pair = [measure(src, p, tmp) for p in (FAST_PROCEDURE, FAST2_PROCEDURE)]
            rows += pair
            for r in pair:
                print(
                    f"{r['file']} {r['procedure']}: {r['bytes']:,} B ({int(r['bytes']) / int(r['source']):.4%}), "
                    f"encode {r['encode_mb_s']:.1f} MB/s, decode {r['decode_mb_s']:.1f} MB/s, "
                    f"identical {r['identical']}",
                    flush=True,
                )
    if args.md:
        lines = [
            f"`python scripts/fast_speed.py {' '.join(f.name for f in args.files)}` on {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d')}: whole archives, MB/s in one process (numba compiled beforehand).",
            "",
            "| file | procedure | archive bytes | v2 / v1 | encode MB/s | decode MB/s | identical |",
            "|---|---|---|---|---|---|---|",
        ]
        for v1, v2 in zip(rows[::2], rows[1::2], strict=True):
            for r in (v1, v2):
                ratio = f"{int(v2['bytes']) / int(v1['bytes']):.4f}" if r is v2 else ""
                lines.append(
                    f"| {r['file']} | {r['procedure']} | {r['bytes']:,} | {ratio} | {r['encode_mb_s']:.1f} | "
                    f"{r['decode_mb_s']:.1f} | {'yes' if r['identical'] else 'NO'} |"
                )
        args.md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
