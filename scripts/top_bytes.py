"""Bits per value the top-byte model (lmgc_format/lm/topbyte.py) spends on each sample's top bytes.

    .venv/bin/python scripts/top_bytes.py samples/*.safetensors

Beside: the static order-0 entropy of those bytes (the limit of any order-0 code)
and one adaptive binary count per tree node (the model's first context alone);
then the model without (``cm-top-v1``/``v2``) and with (``cm-top-v3``) the grid
contexts, and with the row x column fits (``cm-top-v4``, rowfit.py). No LM
involved: seconds, not minutes. docs/EXPERIMENTS.md "Top byte apart", "cm-top-v3",
"cm-top-v4". Filters are not applied: every top byte is a value's.
"""

from __future__ import annotations

import math
import sys
from collections import Counter

from lmgc_format.lm.coder import Encoder
from lmgc_format.lm.topbyte import ALPHA, bit_table, encode_tops, places, split_tops
from lmgc_format.tensors.plan import plan_chunks
from lmgc_format.tensors.source import read_layout


def one_count(tops: bytes) -> float:
    """Ideal bits of an adaptive binary count per tree node, no mixing."""
    counts: dict[int, list[int]] = {}
    bits = 0.0
    for byte in tops:
        node = 1
        for shift in range(7, -1, -1):
            bit = (byte >> shift) & 1
            n = counts.setdefault(node, [0, 0])
            f = bit_table((n[1] + ALPHA) / (n[0] + n[1] + 2 * ALPHA))
            bits += 20 - math.log2(f[bit])
            n[bit] += 1
            node = 2 * node + bit
    return bits


def main() -> None:
    columns = ["sample", "values", "order-0 entropy", "one count per node", "top-byte model", "with grid contexts"]
    print("| " + " | ".join([*columns, "with fits"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for path in sys.argv[1:]:
        layout = read_layout(path)
        with open(path, "rb") as f:
            f.seek(layout.data_offset)
            data = f.read()
        # Per LM chunk, as the codec does (every chunk starts afresh), at the default layout.
        windows = [c.windows for c in plan_chunks(layout, 512, 16, 0) if c.lm]
        chunks = [b"".join(split_tops(data[w.begin : w.end], w.group) for w in ws) for ws in windows]
        tops = b"".join(chunks)
        n = len(tops)
        entropy = -sum(c * math.log2(c / n) for c in Counter(tops).values()) / n
        single = sum(one_count(t) for t in chunks) / n
        model = sum(sum(encode_tops(Encoder(), t)) for t in chunks) / n
        pairs = list(zip(chunks, windows, strict=True))
        grid = sum(sum(encode_tops(Encoder(), t, places(ws))) for t, ws in pairs) / n
        fit = sum(sum(encode_tops(Encoder(), t, places(ws), fit=True)) for t, ws in pairs) / n
        print(f"| {path} | {n} | {entropy:.3f} | {single:.3f} | {model:.3f} | {grid:.3f} | {fit:.3f} |")


if __name__ == "__main__":
    main()
