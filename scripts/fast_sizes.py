"""Chunk bytes of the fast level (cm-fast-v1) on the shipped samples, beside the LM level and the best
classical codec of an earlier estimate run (BENCHMARKS.md "The fast level on the shipped samples").

Every chunk is coded with the fast layout and decoded again; nothing is written. Seconds for 18 files.

    python scripts/fast_sizes.py [FILES...] [--against benchmarks/estimates_0.9.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmgc_format.cm import codec
from lmgc_format.pipeline.encoder import EncodeOptions
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.pipeline.levels import FAST_BATCH, FAST_WINDOW_BYTES
from lmgc_format.tensors.source import read_layout


def fast_bytes(path: str) -> int:
    """What --level fast stores for the float tensors' chunks (raw where the codec would not shrink them)."""
    layout = read_layout(path)
    opts = replace(EncodeOptions(), window_bytes=FAST_WINDOW_BYTES, batch=FAST_BATCH, bytes_per_group=0)
    plan, forward, _ = plan_for(path, layout, opts)
    sizes = [t.item_size for t in layout.tensors]
    with open(path, "rb") as f:
        data = f.read()[layout.data_offset :]
    total = 0
    for chunk in plan:
        if not chunk.lm:
            continue
        stored = forward.apply(chunk.begin, data[chunk.begin : chunk.end])
        coded = codec.encode(chunk.windows, chunk.begin, stored, sizes)
        if coded is None:
            total += chunk.nbytes
            continue
        back = codec.decode(chunk.windows, chunk.begin, coded[0], chunk.nbytes, sizes)
        assert back == stored, f"{path}: chunk {chunk.index} did not round-trip"
        total += len(coded[0])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--against", default="benchmarks/estimates_0.9.json", help="an earlier bench --save file")
    args = ap.parse_args()
    files = args.files or sorted(glob.glob("samples/*.safetensors") + glob.glob("samples/unseen/*.safetensors"))
    earlier = {e["file"]: e for e in json.loads(Path(args.against).read_text())} if Path(args.against).exists() else {}
    totals = [0, 0]
    for path in files:
        fast = fast_bytes(path)
        line = f"{path:50s} fast {fast:9,d}"
        report = earlier.get(path)
        if report:
            ranked = [r for r in report["results"] if r["roundtrip"] and not r["codec"].startswith("lmgc")]
            best = min(ranked, key=lambda r: r["size"])
            lm = min((r["size"] for r in report["results"] if r["codec"].startswith("lmgc")), default=0)
            totals[0] += fast
            totals[1] += lm
            line += (
                f"  LM {lm:9,d}  best {best['size']:9,d} ({best['codec']})  fast/best {fast / best['size']:.3f}"
                f"  LM/best {lm / best['size']:.3f}"
            )
        print(line, flush=True)
    if totals[1]:
        print(f"total fast {totals[0]:,} vs LM {totals[1]:,}: {totals[0] / totals[1]:.4f}")


if __name__ == "__main__":
    main()
