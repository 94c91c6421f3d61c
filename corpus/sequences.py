"""Sequence pairs for ``--reference``: the same training run saved a step apart and 100 steps apart.

For each family (make_corpus.py's models, data and held-out split), AdamW trains ``--steps`` steps, then
the run is saved at step T, T+1, T+10 and T+100: the weights (fp32 and bf16), AdamW's exp_avg and
exp_avg_sq (fp32) and the gradient (fp32 and bf16). Files are ``{family}_{kind}_{dtype}_t{k}.safetensors``
(k: 0, 1, 10, 100 steps after T), listed in ``sequences.json`` with their split. Not committed.

    python corpus/sequences.py /tmp/seq --families mlp_digits,gru_text,vit_digits,cnn_digits
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.make_corpus import FAMILIES, HELD_OUT

SNAPSHOTS = (0, 1, 10, 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--families", default="mlp_digits,cnn_digits,gru_text,vit_digits")
    ap.add_argument("--steps", type=int, default=60, help="steps before T")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    wanted = args.families.split(",")
    files = []
    for fam in FAMILIES:
        if fam.name not in wanted:
            continue
        model, draw, loss = fam.make()
        gen = torch.Generator().manual_seed(1)
        opt = torch.optim.AdamW(model.parameters(), lr=fam.lr)
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        for step in range(args.steps + SNAPSHOTS[-1] + 1):
            opt.zero_grad()
            x, y = draw(gen)
            loss(model(x), y).backward()
            k = step - args.steps
            if k in SNAPSHOTS:  # the state before this step's update, with this step's gradient
                state = opt.state
                kinds = {
                    ("weights", "fp32"): {n: p.detach() for n, p in params},
                    ("weights", "bf16"): {n: p.detach().bfloat16() for n, p in params},
                    ("grad", "fp32"): {n: p.grad for n, p in params if p.grad is not None},
                    ("grad", "bf16"): {n: p.grad.bfloat16() for n, p in params if p.grad is not None},
                    ("adam_m", "fp32"): {n: state[p]["exp_avg"] for n, p in params if p in state},
                    ("adam_v", "fp32"): {n: state[p]["exp_avg_sq"] for n, p in params if p in state},
                }
                for (kind, dt), tensors in kinds.items():
                    name = f"{fam.name}_{kind}_{dt}_t{k}.safetensors"
                    save_file({n: v.contiguous().clone() for n, v in tensors.items()}, str(args.out / name))
                    split = "held_out" if fam.name in HELD_OUT else "tuning"
                    files.append({"file": name, "family": fam.name, "kind": kind, "dtype": dt, "t": k, "split": split})
            opt.step()
        print(f"{fam.name}: saved at T+{', T+'.join(map(str, SNAPSHOTS))}", flush=True)
    (args.out / "sequences.json").write_text(json.dumps({"files": files, "snapshots": SNAPSHOTS}, indent=1))


if __name__ == "__main__":
    main()
