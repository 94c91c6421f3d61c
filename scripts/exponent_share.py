"""How far modelling of the sign and exponent can take the fast level on the corpus: a bound, per group.

Per corpus file, the fast level's ideal bits (the kernel's cost report, cm_codec.byte_rank_bits, over the
fast layout's chunks without the zero-sum filters) split into the sign, the rest of the top byte and the
second byte's first bit (for fp32 and bf16: the exponent; fp16's top byte holds 5 exponent and 2 mantissa
bits) and everything below (the mantissa). Then, per split and group of benchmarks/corpus.json (whose
archive sizes and best classical codec it reads, so run corpus/bench_corpus.py first):

* the share of the archive that is sign and exponent;
* the ratio to the best classical codec if they cost nothing (the mantissa coded as now): no model of the
  exponent, however good, goes below it;
* to reach a target ratio, the share of the sign and exponent bits that would have to go.

    python scripts/exponent_share.py out/corpus [--against benchmarks/corpus.json] [--targets 0.92,0.85,0.90]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "corpus"))

from bench_corpus import fast_bits, group

from lmgc_format.cm.kernel import COST_SECOND_FIRST, COST_SIGN
from lmgc_format.tensors.source import read_layout

GROUPS = ("dense fp32", "sparse fp32", "16-bit")


def split_bits(path: Path) -> dict[str, float]:
    """The fast level's ideal bits on the file's float chunks: total, sign, exponent (top byte but the sign,
    and the second byte's first bit)."""
    layout = read_layout(path)
    bits = fast_bits(layout, path.read_bytes()[layout.data_offset :])
    sign, second_first = float(bits[COST_SIGN]), float(bits[COST_SECOND_FIRST])
    return {"total": float(bits[:COST_SIGN].sum()), "sign": sign, "exponent": float(bits[0]) - sign + second_first}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--against", type=Path, default=Path("benchmarks/corpus.json"))
    ap.add_argument("--targets", default="0.92,0.85,0.90", help="target ratios of dense fp32, sparse, 16-bit")
    args = ap.parse_args()
    targets = dict(zip(GROUPS, (float(t) for t in args.targets.split(",")), strict=True))
    rows = json.loads(args.against.read_text())
    acc: dict[tuple[str, str], np.ndarray] = {}
    for r in rows:
        b = split_bits(args.corpus / r["file"])
        scale = r["lmgc_fast"] / (b["total"] / 8)  # the archive's bytes per ideal byte (headers, coder)
        key = (r["split"], group(r))
        acc.setdefault(key, np.zeros(4))
        acc[key] += (
            r["lmgc_fast"],
            r["classical"][r["best_classical"]],
            b["sign"] / 8 * scale,
            b["exponent"] / 8 * scale,
        )
    print("| split | group | now | sign + exponent share of the archive | if they cost nothing | to reach | "
          "share of sign + exponent bytes that would have to go |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for split in ("held_out", "tuning"):
        for g in GROUPS:
            if (split, g) not in acc:
                continue
            ours, best, sign, expo = acc[(split, g)]
            need = (ours - targets[g] * best) / (sign + expo)
            print(
                f"| {split} | {g} | {ours / best:.3f}x | {(sign + expo) / ours:.1%} (sign {sign / ours:.1%}) | "
                f"{(ours - sign - expo) / best:.3f}x | {targets[g]:.2f}x | {need:.0%} |"
            )


if __name__ == "__main__":
    main()
