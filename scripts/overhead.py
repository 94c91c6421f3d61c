"""Where an archive's bytes go, and whole file against whole file (BENCHMARKS.md "Archive overhead").

Each file is compressed at the fast level (format 1.4) and checked by decoding; every classical codec
of the benchmark compresses the whole file (header included) and is decoded and compared too.

    python scripts/overhead.py [FILES...] [--json benchmarks/overhead.json] [--md benchmarks/overhead.md]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lmgc
from lmgc_format.bench.classical import CODECS, Unavailable
from lmgc_format.tensors.source import read_layout


def measure(path: Path, tmp: Path) -> dict[str, object]:
    arc = tmp / (path.name + ".lmgc")
    lmgc.compress_file(path, arc, level="fast", overwrite=True)
    lmgc.verify(arc)
    info = lmgc.inspect(arc)
    raw = path.read_bytes()
    dtypes = {t.dtype for t in read_layout(path).tensors}
    dtype = dtypes.pop() if len(dtypes) == 1 else "U8"
    classical: dict[str, int] = {}
    for c in CODECS:
        try:
            packed = c.encode(raw, dtype)
            if c.decode(packed, dtype, len(raw)) != raw:
                continue
        except (Unavailable, Exception):  # a codec that cannot take this whole file is left out, not guessed
            continue
        classical[c.name] = len(packed)
    o = info["overhead"]
    best = min(classical, key=classical.__getitem__)
    return {
        "file": str(path),
        "size": len(raw),
        "tensors": info["source"]["tensor_count"],
        "archive": info["archive_size"],
        "stored": info["stored"],
        "coded_data": info["archive_size"] - o["total"],
        "overhead": o,
        "fixed_overhead": o["total"] - o["tensor_table"],
        "classical": classical,
        "best_classical": best,
        "vs_best": round(info["archive_size"] / classical[best], 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args()
    files = args.files or sorted(glob.glob("samples/*.safetensors")) + sorted(glob.glob("samples/unseen/*.safetensors"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            rows.append(measure(Path(f), Path(tmp)))
            r = rows[-1]
            print(
                f"{Path(f).name:34s} {r['size']:>7,} -> {r['archive']:>7,} overhead {r['overhead']['total']:>4} "
                f"(table {r['overhead']['tensor_table']:>3}, fixed {r['fixed_overhead']:>3}, "
                f"{r['tensors']:>2} tensors) "
                f"best classical {r['best_classical']} {r['classical'][r['best_classical']]:,}: {r['vs_best']}x",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.md:
        lines = [
            "| file | tensors | size | lmgc --level fast | overhead (tensor table / rest) "
            "| best classical, whole file | lmgc / best |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            o = r["overhead"]
            lines.append(
                f"| {Path(str(r['file'])).name} | {r['tensors']} | {r['size']:,} | {r['archive']:,} | "
                f"{o['total']} ({o['tensor_table']} / {r['fixed_overhead']}) | "
                f"{r['best_classical']} {r['classical'][r['best_classical']]:,} | {r['vs_best']}x |"
            )
        args.md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
