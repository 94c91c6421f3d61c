"""The paper's serialization table from `lmgc-tui bench --schemes ... --save` runs: samples x schemes.

    .venv/bin/python scripts/schemes_table.py benchmarks/schemes_mix.json benchmarks/schemes_lm.json

Each cell is the first file's size (% of tensor data) for that scheme, and in brackets the
second file's (e.g. the default mixing, then the LM alone); the last columns give the best
classical codec of the first file and the smallest LM cell / best classical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMES = ("none", "space", "comma", "comma_space", "semicolon", "0x", "iso")


def _by_scheme(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for r in report["results"]:
        if r["codec"].startswith("lmgc ") and r["size"] is not None:
            out[r["codec"].split()[1]] = r
    return out


def main(first: str, second: str | None = None) -> None:
    reports = json.loads(Path(first).read_text())
    others = {r["file"]: r for r in json.loads(Path(second).read_text())} if second else {}
    head = ["sample", *SCHEMES, "best classical", "smallest / best"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for rep in reports:
        lm = _by_scheme(rep)
        alone = _by_scheme(others[rep["file"]]) if rep["file"] in others else {}
        best = next((r for r in rep["results"] if r["codec"] == rep["best_classical"]), None)
        cells = []
        for s in SCHEMES:
            cell = f"{lm[s]['percent']:.1f}" if s in lm else "–"
            if s in alone:
                cell += f" ({alone[s]['percent']:.1f})"
            cells.append(cell)
        smallest = min((r["size"] for r in lm.values()), default=None)
        ratio = f"{smallest / best['size']:.3f}" if best is not None and smallest is not None else "–"
        name = Path(rep["file"]).stem
        classical = "–" if best is None else f"{best['codec']} {best['percent']:.1f}"
        print("| " + " | ".join([name, *cells, classical, ratio]) + " |")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
