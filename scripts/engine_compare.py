"""The int8 engine beside the float engine on the same lockstep steps: tokens/s, bits a token, KL.

    python scripts/engine_compare.py [--steps 200] [--windows 16] [--dtype float32] [FILE]

Feeds windows of FILE's largest float32 tensor (as msb-first comma hex text, the LM level's text) to both
engines step by step, as the coder does, in one process (speeds compare within one run only). The int8
engine multiplies with the fastest exact backend of this CPU; ``LMGC_INT_MATMUL=f32`` times the one every
CPU has (what an AVX2 machine without VNNI gets).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from safetensors.numpy import load_file

from lmgc_format.lm import models
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.engine import LlamaEngine
from lmgc_format.lm.intengine import IntLlamaEngine
from lmgc_format.tensors.serialize import get_scheme


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default="samples/mlp_digits_fp32.safetensors")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    torch.set_num_threads(2)
    lm = models.load(None, dtype=args.dtype)
    scheme = get_scheme("comma")
    alphabet = Alphabet.for_tokenizer(lm.tokenizer, scheme)
    tensor = max((v for v in load_file(args.file).values() if v.dtype == np.float32), key=np.size).ravel()
    per = max(1, len(tensor) // args.windows)
    texts = [scheme.to_text(tensor[i * per : (i + 1) * per].byteswap().tobytes(), 4) for i in range(args.windows)]
    symbols = [alphabet.tokenize(t, lm.tokenizer) for t in texts]
    steps = min(args.steps, min(map(len, symbols)))
    logps = {}
    for name, engine_type in (("float", LlamaEngine), ("int8", IntLlamaEngine)):
        engine = engine_type(lm, alphabet)
        engine.reset(steps + 1)
        feed = [lm.info.bos_id] * args.windows
        bits, rows = 0.0, []
        start = time.perf_counter()
        for s in range(steps):
            x = np.asarray(engine.step(feed), dtype=np.float64) / (65536 if name == "int8" else 1)
            x = x - x.max(1, keepdims=True)
            lp = x - np.log(np.exp(x).sum(1, keepdims=True))
            rows.append(lp)
            bits -= lp[np.arange(args.windows), [w[s] for w in symbols]].sum() / np.log(2)
            feed = [alphabet.ids[w[s]] for w in symbols]
        seconds = time.perf_counter() - start
        logps[name] = np.array(rows)
        tokens = steps * args.windows
        how = f", int8 matmuls by {engine.matmul_backend}" if isinstance(engine, IntLlamaEngine) else ""
        print(f"{name:5s} {tokens / seconds:7.1f} tokens/s  {bits / tokens:.4f} bits a token  ({steps} steps{how})")
    p = np.exp(logps["float"])
    print(f"KL(float || int8) = {(p * (logps['float'] - logps['int8'])).sum(-1).mean():.4f} nats a token")


if __name__ == "__main__":
    main()
