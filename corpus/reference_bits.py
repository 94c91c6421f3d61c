"""Where the bits go with and without ``--reference``: the fast level's ideal bits per value by byte rank
(cm/codec.py ``byte_rank_bits``: rank 0 the sign and exponent byte) of each tensor coded alone and coded
as its differences from the reference (transforms/reference.py), summed over a file's float tensors.

    python corpus/sequences.py /tmp/seq
    python corpus/reference_bits.py /tmp/seq/gru_text_weights_fp32_t1.safetensors \
        /tmp/seq/gru_text_weights_fp32_t0.safetensors
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lmgc_format.cm.codec import byte_rank_bits
from lmgc_format.tensors.plan import Window
from lmgc_format.tensors.source import LM_DTYPES, read_layout
from lmgc_format.transforms.reference import delta, pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("new", type=Path)
    ap.add_argument("reference", type=Path)
    args = ap.parse_args()
    lay, rl = read_layout(args.new), read_layout(args.reference)
    data, ref = args.new.read_bytes(), args.reference.read_bytes()
    paired = pairs(lay, rl)
    totals = {"alone": np.zeros(10), "against the reference": np.zeros(10)}
    values = 0
    for i, t in enumerate(lay.tensors):
        if t.dtype not in LM_DTYPES or i not in paired:
            continue
        raw = data[lay.data_offset + t.begin : lay.data_offset + t.end]
        old = ref[paired[i] : paired[i] + t.nbytes]
        row = math.prod(t.shape[1:]) if len(t.shape) >= 2 else 0
        window = [Window(0, 0, len(raw), t.item_size, 0, row, -1)]
        totals["alone"] += byte_rank_bits(window, 0, raw, [t.item_size])
        stored = delta(raw, old, t.dtype, t.item_size)
        totals["against the reference"] += byte_rank_bits(window, 0, stored, [t.item_size])
        values += t.nbytes // t.item_size
    size = lay.tensors[0].item_size
    print(f"{args.new.name} against {args.reference.name}: {values:,} values, bits per value by byte rank")
    print("coded                    " + "  ".join(f"rank {k}" for k in range(size)) + "   total")
    for name, bits in totals.items():
        per = bits[:size] / values
        print(f"{name:24s} " + "  ".join(f"{b:6.2f}" for b in per) + f"  {per.sum():6.2f}")


if __name__ == "__main__":
    main()
