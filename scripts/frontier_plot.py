"""Size against speed, one panel per file and direction, from a saved bench run (``lmgc-tui bench ... --save
F.json``): every codec's point, lmgc's levels in colour, the frontier (the points no other point beats in
both size and speed) joined. ``python scripts/frontier_plot.py benchmarks/frontier.json benchmarks/frontier.png``
(scripts/bench_frontier.sh makes both). Needs matplotlib (the bench extra)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def frontier(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points (speed, size, name) that no other point is both at least as fast and as small as, and
    better in one: sorted by speed."""
    keep = [
        p for p in points if not any(q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1]) for q in points)
    ]
    return sorted(keep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path, help="a bench --save JSON")
    ap.add_argument("png", type=Path)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[dict[str, Any]] = json.loads(args.report.read_text())
    fig, axes = plt.subplots(len(files), 2, figsize=(13, 4.2 * len(files)), squeeze=False)
    for row, report in zip(axes, files, strict=True):
        for ax, key, label in ((row[0], "encode_bps", "encode"), (row[1], "decode_bps", "decode")):
            points = [
                (r[key] / 1e6, r["percent"], r["codec"])
                for r in report["results"]
                if r.get("roundtrip") and r.get(key) and r.get("percent") is not None
            ]
            for speed, size, name in points:
                ours = name.startswith("lmgc")
                ax.scatter(speed, size, s=60 if ours else 30, c="tab:red" if ours else "tab:blue", zorder=3)
                ax.annotate(name, (speed, size), textcoords="offset points", xytext=(5, 4), fontsize=8)
            line = frontier(points)
            ax.plot([p[0] for p in line], [p[1] for p in line], c="grey", lw=1, ls="--", zorder=2)
            ax.set_xscale("log")
            ax.set_xlabel(f"{label} MB/s of tensor data (log)")
            ax.set_ylabel("% of the tensor data")
            name = Path(report["file"]).name
            ax.set_title(f"{name} ({report['data_bytes'] / 1e6:.1f} MB, {report['dtype']}): {label}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.png, dpi=90)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
