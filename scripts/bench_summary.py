"""One summary table from benchmarks/results.json (written by `lmgc-tui bench --save`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("gzip -9", "xz -9e", "zstd -19", "brotli 11", "blosc2 bitshuffle+zstd", "fpzip")


def pct(results: dict[str, dict], name: str) -> str:
    r = results.get(name)
    if r is None or r["size"] is None:
        return "–"
    flag = "" if r["roundtrip"] else " ✗"
    return f"{r['percent']:.1f}{flag}"


def main(path: str = "benchmarks/results.json") -> None:
    reports = json.loads(Path(path).read_text())
    head = ["sample", "data", "**lmgc**", "best classical", "lmgc / best", *COLUMNS, "lmgc enc / dec"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for rep in reports:
        results = {r["codec"]: r for r in rep["results"]}
        lm = next(r for r in rep["results"] if r["codec"].startswith("lmgc"))
        best = results.get(rep["best_classical"] or "")
        # From the sizes, not the report's ratio (rounded to 4 places, it could round differently here).
        ratio = lm["size"] / best["size"] if best is not None and lm["size"] is not None else None
        row = [
            Path(rep["file"]).stem,
            f"{rep['data_bytes']:,} B",
            f"**{lm['percent']:.1f}**",
            "–" if best is None else f"{best['codec']} {best['percent']:.1f}",
            "–" if ratio is None else f"{ratio:.3f}",
            *(pct(results, c) for c in COLUMNS),
            "estimate" if lm.get("estimate") else f"{lm['encode_bps']:.1f} / {lm['decode_bps']:.1f} B/s",
        ]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
