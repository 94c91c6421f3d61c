"""A plain reference of the ``lmgc-int8-v1`` procedure: numpy int64, one row and one head at a time.

Written from docs/FORMAT.md "The portable LM procedure", not from intengine.py: no torch op, no float
matmul (every dot product is an int64 sum), no reciprocal shortcut but the ones the spec defines. Slow
(it is for tests on the tiny model); tests/test_intengine.py checks that the engine gives exactly its
logits.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np

from lmgc_format.lm import intmath


def _requantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and Q24 scales of a float weight (out, in)."""
    w = w.astype(np.float64)
    amax = np.abs(w).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int64)
    return q, np.round(scale * 2.0**24).astype(np.int64)


def _quantize(x: np.ndarray) -> tuple[np.ndarray, int]:
    amax = max(int(np.abs(x).max()), 1)
    r = (127 << 32) // amax
    return np.clip((x * r + (1 << 31)) >> 32, -127, 127), amax


def _linear(x: np.ndarray, q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    xq, amax = _quantize(x)
    acc = np.array([int(np.dot(row, xq)) for row in q], dtype=np.int64)
    bits = amax.bit_length() - 1
    shift = 21 - bits
    mant = ((amax << shift) if shift >= 0 else (amax >> -shift)) // 127
    return np.clip((acc * scale * mant) >> (24 + shift), -(2**31 - 1), 2**31 - 1)


def _norm(x: np.ndarray, g: np.ndarray, eps: int) -> np.ndarray:
    xs = x >> 8
    mean = int((xs * xs).sum()) // len(x) + eps
    rms = max(math.floor(math.sqrt(float(mean)) * 256), 1)
    inv = (1 << 46) // rms
    return (((x * inv) >> 30) * g) >> 16


class ReferenceEngine:
    def __init__(self, model: Any, alphabet_ids: list[int], bos: int) -> None:
        cfg = model.config
        sd = {k: v.detach().to("cpu").float().numpy() for k, v in model.state_dict().items()}
        self.h, self.kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.d = cfg.hidden_size // self.h
        self.eps = max(1, round(cfg.rms_norm_eps * 65536))
        theta = getattr(cfg, "rope_parameters", None) or {}
        self.theta = Decimal(repr(float(theta.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))))
        self.embed = {t: np.round(sd["model.embed_tokens.weight"][t].astype(np.float64) * 65536).astype(np.int64)
                      for t in {*alphabet_ids, bos}}  # fmt: skip
        g = lambda name: np.round(sd[name].astype(np.float64) * 65536).astype(np.int64)  # noqa: E731
        self.layers = []
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}."
            qkv = np.concatenate([sd[p + f"self_attn.{n}_proj.weight"] for n in "qkv"])
            gu = np.concatenate([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]])
            self.layers.append(
                (
                    g(p + "input_layernorm.weight"),
                    _requantize(qkv),
                    _requantize(sd[p + "self_attn.o_proj.weight"]),
                    g(p + "post_attention_layernorm.weight"),
                    _requantize(gu),
                    _requantize(sd[p + "mlp.down_proj.weight"]),
                )
            )
        self.final = g("model.norm.weight")
        head = sd.get("lm_head.weight", sd["model.embed_tokens.weight"])
        self.head = _requantize(head[list(alphabet_ids)])
        self.cache: list[list[list[tuple[np.ndarray, int, np.ndarray]]]] = []  # [row][layer] -> (k8, amax, v) per pos

    def step(self, tokens: list[int]) -> np.ndarray:
        exp_q15, _, _, sig = intmath.tables()
        if not self.cache:
            self.cache = [[[] for _ in self.layers] for _ in tokens]
        out = []
        d, half, group = self.d, self.d // 2, self.h // self.kv
        sqrt_q10 = math.isqrt(d << 20)
        for row, tok in enumerate(tokens):
            pos = len(self.cache[row][0])
            rope = intmath.rope_q14(self.theta, d, pos + 1)[pos]
            cos, sin = rope[0], rope[1]

            def rot(v: np.ndarray, cos: np.ndarray = cos, sin: np.ndarray = sin) -> np.ndarray:
                a, b = v[:half], v[half:]
                return np.concatenate(((a * cos - b * sin) >> 14, (b * cos + a * sin) >> 14))

            x = self.embed[tok].copy()
            for li, (g_in, qkv, wo, g_post, gu, down) in enumerate(self.layers):
                y = _linear(_norm(x, g_in, self.eps), *qkv)
                qs = y[: self.h * d].reshape(self.h, d)
                ks = y[self.h * d : (self.h + self.kv) * d].reshape(self.kv, d)
                vs = y[(self.h + self.kv) * d :].reshape(self.kv, d)
                entry = []
                for j in range(self.kv):
                    k8, ka = _quantize(np.clip(rot(ks[j]), -(1 << 24), 1 << 24))
                    entry.append((k8, ka, np.clip(vs[j] >> 8, -(2**15 - 1), 2**15 - 1)))
                self.cache[row][li].append(entry)  # type: ignore[arg-type]
                att = np.zeros(self.h * d, dtype=np.int64)
                for head in range(self.h):
                    j = head // group
                    q8, qa = _quantize(np.clip(rot(qs[head]), -(1 << 24), 1 << 24))
                    q_factor = (qa << 27) // (16129 * sqrt_q10)
                    past = [e[j] for e in self.cache[row][li]]  # type: ignore[index]
                    scores = np.array([(((int(np.dot(q8, k8)) * ka) >> 12) * q_factor) >> 27 for k8, ka, _ in past])
                    w = exp_q15[np.minimum(scores.max() - scores, intmath.EXP_SPAN)]
                    total = int(w.sum())
                    mixed = sum(int(wi) * v for wi, (_, _, v) in zip(w, past, strict=True))
                    att[head * d : (head + 1) * d] = (mixed * ((1 << 38) // total)) >> 30
                x = np.clip(x + _linear(att, *wo), -(2**31 - 1), 2**31 - 1)
                z = _linear(_norm(x, g_post, self.eps), *gu)
                gate, up = z[: len(z) // 2], z[len(z) // 2 :]
                silu = (gate * sig[np.clip(gate >> 8, -intmath.SIG_HALF, intmath.SIG_HALF) + intmath.SIG_HALF]) >> 16
                act = np.clip((silu * up) >> 16, -(2**31 - 1), 2**31 - 1)
                x = np.clip(x + _linear(act, *down), -(2**31 - 1), 2**31 - 1)
            out.append(_linear(_norm(x, self.final, self.eps), *self.head))
        return np.stack(out)
