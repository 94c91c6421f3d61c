"""``lmgc-int8-v1``: a Llama-family forward pass in integer arithmetic, the same bits on every machine.

The float engine (engine.py) gives the same logits only where the same kernels run in the same
order: another CPU's SIMD width, a thread count or a GPU changes the last bits, and a range coder
fed other frequencies decodes garbage. This engine follows docs/DESIGN.md rule 6 instead: every
value that can change a coded bit comes from integer arithmetic, so any backend computes it exactly.

* **Weights** are requantized once from the loaded model: int8 per output channel, the channel's
  scale ``max|w| / 127`` kept as an integer in Q24 (one IEEE division and one rounding per value,
  correctly rounded everywhere). Norm weights and the embedding rows the coder can feed (the
  alphabet and BOS) are Q16 integers. The engine's SHA-256 over all of them (:attr:`digest`) goes
  into the archive; a decoder whose model gives other integers refuses before decoding.
* **Activations** live in Q16 (int64), clamped to +-2**31 (+-32768) at every residual add. Before
  a matmul a row is quantized to int8 with its own scale ``max|x|`` (an order-free maximum), the
  product is exact (a float32 matmul of those integers in blocks of 1,024 inputs, every partial sum
  below 2**24; on CPU whichever exact backend intmatmul.py finds fastest, int8 ``_int_mm`` where
  the CPU has VNNI or AMX), and rescaled by integer multiply and shift.
* **RMSNorm**: an integer sum of squares, one correctly rounded float64 square root of an integer
  below 2**53, floored.
* **Attention**: q and k are int8 per head vector; q.k is a float32 matmul of integers whose every
  partial sum stays below 2**24 (64 * 127 * 127 < 2**20), so each addition is exact in any order or
  blocking, FMA or not. Scores are Q10 natural-log units; softmax reads exp from a table (Q15);
  values are cached as Q8 integers (+-128) and the weighted sum is a float64 matmul of integers below
  2**15 * 2**15 * 2**12 < 2**53: exact again. One floor division normalizes.
* **RoPE** and **SiLU** are tables (intmath.py: decimal constructions, pinned or digested).
* **Output**: the alphabet's rows of the head; logits in Q16 (int64).

On CPU the integer work between the matmuls runs as compiled passes (intkernels.py, a few per layer);
elsewhere as torch ops. Both give the same integers (tests compare them and a plain reference).

The KV cache holds k as int8 values (in float32) with one scale per position and head, and v as Q8
integers (in float64): ~4 + 8 bytes per element instead of bf16's 2 + 2, the price of exactness
without integer batched matmuls (torch has none that are fast on CPU).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from lmgc_format.errors import UnsupportedError
from lmgc_format.lm import intmath, intmatmul
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.engine import shape_of, unsupported_reason
from lmgc_format.lm.intlinear import IntLinear, quantize_rows
from lmgc_format.lm.intmath import CLAMP, FRAC, MASKED, QK_CLAMP, V_CLAMP, V_FRAC
from lmgc_format.lm.models import LoadedModel

PROCEDURE = "lmgc-int8-v1"  # predictor.ENGINES["int8"]
_ROPE_BLOCK = 1024  # the RoPE table grows in blocks of this many positions
_BLOCK = 64  # attention reads the cache in blocks of this many positions
_QUERY_BLOCK = 64  # forward(): queries per attention pass (bounds its weights to B * H * 64 * positions)
_DIGEST_ROPE = 256  # positions of the RoPE table that enter the engine's digest


class IntLlamaEngine:
    """Same interface as :class:`~lmgc_format.lm.engine.LlamaEngine` (``reset``, ``step``), integer logits."""

    head_mode = "restricted"

    def __init__(self, lm: LoadedModel, alphabet: Alphabet, fused: bool | None = None) -> None:
        """``fused``: run the integer work between matmuls as compiled passes (intkernels.py); the
        default on CPU. The torch path (other devices, or ``fused=False``) gives the same integers."""
        reason = unsupported_reason(lm)
        if reason is not None:
            raise UnsupportedError(f"{PROCEDURE} engine: {reason}")
        import torch

        self._torch = torch
        self.device = lm.device
        self.bos_id = lm.info.bos_id
        model = lm.model
        cfg = model.config
        base = getattr(model, model.base_model_prefix)
        shape = shape_of(model)
        self.heads, self.kv_heads, self.head_dim = shape.heads, shape.kv_heads, shape.head_dim
        if self.head_dim % 2 or self.head_dim > 256:
            raise UnsupportedError(f"{PROCEDURE} engine: head size {self.head_dim} (even, <= 256 needed)")
        if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", False):
            raise UnsupportedError(f"{PROCEDURE} engine: sliding-window attention is not supported")
        self.theta = Decimal(repr(shape.theta))  # the config's float, exactly as written
        eps = shape.eps
        self._eps = max(1, round(eps * (1 << FRAC)))  # eps in the units of the sum of (Q8 value) squares
        q16 = 1 << FRAC
        self._fused = str(self.device) == "cpu" if fused is None else fused
        if self._fused and str(self.device) != "cpu":
            raise UnsupportedError(f"{PROCEDURE} engine: the fused path runs on CPU only")
        backend = intmatmul.choose(torch) if self._fused else None
        self.matmul_backend = backend or "torch"
        with torch.inference_mode():
            # Only the tokens the coder can feed: the alphabet's and BOS.
            feedable = sorted({*alphabet.ids, self.bos_id})
            self._row_of = {tok: i for i, tok in enumerate(feedable)}
            embed = base.embed_tokens.weight.detach()[torch.tensor(feedable, device=embed_device(base))]
            self._embed = torch.round(embed.to("cpu", torch.float64) * q16).to(torch.int64).to(self.device)
            self._layers = []
            for layer in base.layers:
                att, mlp = layer.self_attn, layer.mlp
                if att.q_proj.bias is not None or att.o_proj.bias is not None:
                    raise UnsupportedError(f"{PROCEDURE} engine: attention biases are not supported")
                qkv = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
                gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
                self._layers.append(
                    (
                        self._norm_q16(layer.input_layernorm.weight),
                        IntLinear(torch, qkv, self.device, backend),
                        IntLinear(torch, att.o_proj.weight, self.device, backend),
                        self._norm_q16(layer.post_attention_layernorm.weight),
                        IntLinear(torch, gate_up, self.device, backend),
                        IntLinear(torch, mlp.down_proj.weight, self.device, backend),
                    )
                )
            self._norm = self._norm_q16(base.norm.weight)
            ids = torch.tensor(alphabet.ids, dtype=torch.long, device=embed_device(base))
            self._head = IntLinear(torch, model.get_output_embeddings().weight.detach()[ids], self.device, backend)
        exp_q15, _, _, sig_q16 = intmath.tables()
        self._exp = torch.from_numpy(np.array(exp_q15)).to(self.device)
        self._sig = torch.from_numpy(np.array(sig_q16)).to(self.device)
        self._rope: Any = None
        self.digest = self._digest()
        self._k: Any = None
        self._k_amax: Any = None
        self._v: Any = None
        self._pos = 0
        self._capacity = 0
        self._batch = 0

    def _norm_q16(self, w: Any) -> Any:
        torch = self._torch
        return torch.round(w.detach().to("cpu", torch.float64) * (1 << FRAC)).to(torch.int64).to(self.device)

    def _digest(self) -> str:
        """SHA-256 of every integer the engine computes with: a decoder whose model, loader or dtype
        gives other integers refuses before decoding (decoder.py)."""
        h = hashlib.sha256(PROCEDURE.encode())
        h.update(self._embed.cpu().numpy().astype("<i8").tobytes())
        for layer in self._layers:
            for part in layer:
                if isinstance(part, IntLinear):
                    h.update(part.q.numpy().tobytes())
                    h.update(part.scale_cpu.numpy().astype("<i8").tobytes())
                else:
                    h.update(part.cpu().numpy().astype("<i8").tobytes())
        h.update(self._norm.cpu().numpy().astype("<i8").tobytes())
        h.update(self._head.q.numpy().tobytes())
        h.update(self._head.scale_cpu.numpy().astype("<i8").tobytes())
        h.update(intmath.rope_q14(self.theta, self.head_dim, _DIGEST_ROPE).astype("<i8").tobytes())
        return h.hexdigest()

    # -- cache -----------------------------------------------------------------

    def reset(self, capacity: int = 1024) -> None:
        """Forget the KV cache: the next step starts new windows (at position 0)."""
        self._pos = 0
        self._batch = 0
        self._capacity = max(1, capacity)
        self._k = self._v = self._k_amax = None

    def _allocate(self, batch: int) -> None:
        torch = self._torch
        n, kv, d = len(self._layers), self.kv_heads, self.head_dim
        cap = self._capacity
        if cap >= 1 << 20:
            raise UnsupportedError(f"{PROCEDURE} engine: windows of {cap} tokens (at most 2**20)")
        self._k = torch.zeros((n, batch, kv, d, cap), dtype=torch.float32, device=self.device)
        self._k_amax = torch.zeros((n, batch, kv, 1, cap), dtype=torch.int64, device=self.device)
        self._v = torch.zeros((n, batch, kv, cap, d), dtype=torch.float64, device=self.device)
        self._batch = batch

    def _grow(self) -> None:
        torch = self._torch
        old = (self._k, self._k_amax, self._v)
        p = self._pos
        self._capacity *= 2
        self._allocate(self._batch)
        with torch.inference_mode():
            self._k[..., :p] = old[0][..., :p]
            self._k_amax[..., :p] = old[1][..., :p]
            self._v[:, :, :, :p] = old[2][:, :, :, :p]

    def _rope_at(self, pos: int) -> tuple[Any, Any]:
        torch = self._torch
        if self._rope is None or pos >= self._rope.shape[0]:
            blocks = -(-(pos + 1) // _ROPE_BLOCK) * _ROPE_BLOCK
            self._rope = torch.from_numpy(np.array(intmath.rope_q14(self.theta, self.head_dim, blocks))).to(self.device)
        return self._rope[pos, 0], self._rope[pos, 1]

    # -- the step ----------------------------------------------------------------

    def _rms_norm(self, x: Any, weight: Any) -> Any:
        torch = self._torch
        xs = x >> 8  # Q8: squares of |x| <= 2**23 summed over <= 2**16 features stay below 2**62
        mean = (xs * xs).sum(dim=-1, keepdim=True) // x.shape[-1] + self._eps
        # rms in Q16: one correctly rounded sqrt of an integer < 2**53 (mean is < 2**46 for |x| <= 2**31)
        rms = torch.floor(torch.sqrt(mean.to(torch.float64)) * 256).to(torch.int64).clamp(min=1)
        inv = torch.div(1 << 46, rms, rounding_mode="floor")  # 2**30 / rms in Q16: one division per row
        return (((x * inv) >> 30) * weight) >> FRAC  # |x * inv| <= 2**31 * 2**46 / rms, rms >= 2**16 when x is large

    def step(self, tokens: list[int]) -> np.ndarray:
        """Feed one token per window; return int64 logits (Q16) over the alphabet, shape (B, A)."""
        torch = self._torch
        b = len(tokens)
        with torch.inference_mode():
            if self._k is None:
                self._allocate(b)
            elif b != self._batch:
                raise ValueError(f"batch changed from {self._batch} to {b} inside one chunk")
            if self._pos >= self._capacity:
                self._grow()
            pos = self._pos
            n = pos + 1
            rows = torch.tensor([self._row_of[t] for t in tokens], dtype=torch.long, device=self.device)
            h = self._embed.index_select(0, rows)
            if self._fused:
                self._rope_at(pos)
                logits = self._layers_fused(
                    h.numpy().copy(), 1, pos, self._capacity, lambda li: (self._k[li], self._k_amax[li], self._v[li])
                )
            else:
                # Attention runs over whole blocks of _BLOCK positions, the tail masked (its weights are exactly
                # 0): oneDNN builds and keeps a kernel per matmul shape, so a new shape every step costs ~1 ms
                # a call and memory (engine.py saw 10 GB); blocks bound the shapes to capacity / _BLOCK.
                stop = min(self._capacity, -(-n // _BLOCK) * _BLOCK)
                cos, sin = self._rope_at(pos)
                logits = self._layers_torch(h, pos, n, stop, cos, sin)
            self._pos = n
            return logits

    def forward(self, feeds: list[list[int]], between_layers: Callable[[], None] | None = None) -> list[np.ndarray]:
        """Every window read whole (teacher forcing): window i's logits after each of its tokens,
        (len(feeds[i]), A) int64: exactly what :meth:`step` gives position by position (the integers do
        not depend on how positions are batched), in a fraction of the time. The encoder knows its text in
        advance and uses this; the decoder must step. Leaves the step cache empty. ``between_layers`` is
        called after each layer (the encoder's cancel check: a whole chunk's forward takes seconds)."""
        torch = self._torch
        lengths = [len(f) for f in feeds]
        steps = max(lengths, default=0)
        if not self._fused or steps == 0:
            self.reset(max(steps, 1))
            bos = self.bos_id
            rows = []
            for t in range(steps):
                if between_layers is not None:
                    between_layers()
                rows.append(self.step([f[t] if t < len(f) else bos for f in feeds]))
            self.reset()
            width = len(self._head.scale_np)
            return [
                np.stack([r[i] for r in rows[:n]]) if n else np.zeros((0, width), np.int64)
                for i, n in enumerate(lengths)
            ]
        b, kv, d = len(feeds), self.kv_heads, self.head_dim
        cap = -(-steps // _BLOCK) * _BLOCK
        self.reset()
        with torch.inference_mode():
            ids = [f + [self.bos_id] * (steps - len(f)) for f in feeds]  # padding after a window cannot reach it
            rows = torch.tensor([self._row_of[t] for f in ids for t in f], dtype=torch.long)
            x = self._embed.index_select(0, rows).numpy().copy()
            self._rope_at(steps - 1)
            cache = (
                torch.zeros((b, kv, d, cap), dtype=torch.float32),
                torch.zeros((b, kv, 1, cap), dtype=torch.int64),
                torch.zeros((b, kv, cap, d), dtype=torch.float64),
            )  # one layer's, rewritten by the next (every position below ``steps`` is written before it is read)

            def layer_cache(li: int) -> tuple[Any, Any, Any]:
                if li and between_layers is not None:
                    between_layers()
                return cache

            logits = self._layers_fused(x, steps, 0, cap, layer_cache)
        out = logits.reshape(b, steps, -1)
        return [out[i, :n] for i, n in enumerate(lengths)]

    def _layers_fused(self, x: np.ndarray, steps: int, pos0: int, cap: int,
                      cache: Callable[[int], tuple[Any, Any, Any]]) -> np.ndarray:  # fmt: skip
        """The layers with intkernels' compiled passes around exact matmuls (CPU). ``x`` holds ``steps``
        rows per window (positions pos0 ..), ``cache(layer)`` its k, k scales and v (capacity ``cap``)."""
        from lmgc_format.lm import intkernels as ik

        torch = self._torch
        rows = x.shape[0]
        b = rows // steps
        h_, kv, d = self.heads, self.kv_heads, self.head_dim
        group = h_ // kv
        rope = self._rope.numpy()
        exp, sig = self._exp.numpy(), self._sig.numpy()
        q_div = 16129 * _isqrt_q10(d)
        dt = np.float32 if self.matmul_backend == "f32" else np.int8  # intmatmul.Weights.input_dtype
        qf_in = np.empty((rows, x.shape[1]), dtype=dt)
        amax = np.empty(rows, dtype=np.int64)
        qf_q = np.empty((b, kv, group, steps, d), dtype=np.float32)
        q_amax = np.empty((b, kv, group, steps), dtype=np.int64)
        qf_att = np.empty((rows, h_ * d), dtype=dt)
        qf_act: np.ndarray | None = None
        for li, (w_in, qkv_proj, o_proj, w_post, gate_up, down) in enumerate(self._layers):
            k_cache, k_amax, v_cache = cache(li)
            ik.norm_quantize(x, w_in.numpy(), self._eps, qf_in, amax)
            acc, mult = qkv_proj.parts(torch, qf_in)
            qkv = np.empty((rows, acc.shape[2]), dtype=np.int64)
            ik.rescale(acc, mult, qkv_proj.scale_np, amax, qkv, False, qkv)
            ik.qkv_post(qkv, steps, pos0, h_, kv, d, rope, k_cache.numpy(), k_amax.numpy(), v_cache.numpy(),
                        qf_q, q_amax)  # fmt: skip
            for s0 in range(0, steps, _QUERY_BLOCK):
                s1 = min(steps, s0 + _QUERY_BLOCK)
                # The cache is read in whole blocks of _BLOCK positions (see step), the tail masked.
                stop = min(cap, -(-(pos0 + s1) // _BLOCK) * _BLOCK)
                q = torch.from_numpy(qf_q[:, :, :, s0:s1].reshape(b, kv, group * (s1 - s0), d))
                # Exact: integers, every partial sum < 2**20 (module docstring).
                dots = torch.matmul(q, k_cache[:, :, :, :stop]).numpy()
                weights = np.empty(dots.shape, dtype=np.float64)
                total = np.empty((b, kv, group, s1 - s0), dtype=np.int64)
                ik.softmax(dots, k_amax.numpy(), q_amax[..., s0:s1], q_div, pos0 + s0, exp, weights, total)
                # Exact: integers below 2**15 * 2**15 * 2**20 < 2**53.
                mixed = torch.matmul(torch.from_numpy(weights), v_cache[:, :, :stop]).numpy()
                ik.attend_quantize(mixed, total, steps, s0, qf_att, amax)
            acc, mult = o_proj.parts(torch, qf_att)
            ik.rescale(acc, mult, o_proj.scale_np, amax, x, True, x)
            ik.norm_quantize(x, w_post.numpy(), self._eps, qf_in, amax)
            acc, mult = gate_up.parts(torch, qf_in)
            if qf_act is None:
                qf_act = np.empty((rows, acc.shape[2] // 2), dtype=dt)
            ik.silu_quantize(acc, mult, gate_up.scale_np, amax, sig, FRAC - intmath.SIG_STEP_BITS,
                             intmath.SIG_HALF, qf_act, amax)  # fmt: skip
            acc, mult = down.parts(torch, qf_act)
            ik.rescale(acc, mult, down.scale_np, amax, x, True, x)
        ik.norm_quantize(x, self._norm.numpy(), self._eps, qf_in, amax)
        acc, mult = self._head.parts(torch, qf_in)
        logits = np.empty((rows, acc.shape[2]), dtype=np.int64)
        ik.rescale(acc, mult, self._head.scale_np, amax, logits, False, logits)
        return logits

    def _layers_torch(self, h: Any, pos: int, n: int, stop: int, cos: Any, sin: Any) -> np.ndarray:
        """The layers in torch ops (any device)."""
        torch = self._torch
        b = h.shape[0]
        h_, kv, d = self.heads, self.kv_heads, self.head_dim
        group = h_ // kv
        half = d // 2
        q_end, k_end = h_ * d, (h_ + kv) * d
        for li, (w_in, qkv_proj, o_proj, w_post, gate_up, down) in enumerate(self._layers):
            qkv = qkv_proj(torch, self._rms_norm(h, w_in))
            q = _rotate(torch, qkv[:, :q_end].view(b, kv, group, d), cos, sin, half)
            k = _rotate(torch, qkv[:, q_end:k_end].view(b, kv, d), cos, sin, half)
            v = qkv[:, k_end:].view(b, kv, d)
            kq, k_amax = quantize_rows(torch, k.clamp(-QK_CLAMP, QK_CLAMP))
            self._k[li, :, :, :, pos] = kq.to(torch.float32)
            self._k_amax[li, :, :, :, pos] = k_amax
            self._v[li, :, :, pos] = (v >> (FRAC - V_FRAC)).clamp(-V_CLAMP, V_CLAMP).to(torch.float64)
            qq, q_amax = quantize_rows(torch, q.clamp(-QK_CLAMP, QK_CLAMP))  # (B, KV, G, D), (B, KV, G, 1)
            # Exact: integers, every partial sum < 2**20 (module docstring).
            dots = torch.matmul(qq.to(torch.float32), self._k[li, :, :, :, :stop]).to(torch.int64)
            # score = q.k / sqrt(d) in Q10 = dots * q_amax * k_amax / (127**2 * sqrt(d) [Q10] * 2**12)
            # (q_amax, k_amax <= 2**24: see QK_CLAMP; every product stays below 2**57)
            q_factor = torch.div(q_amax << 27, 16129 * _isqrt_q10(d), rounding_mode="floor")  # per query head
            scores = (((dots * self._k_amax[li, :, :, :, :stop]) >> 12) * q_factor) >> 27
            if stop > n:
                scores[..., n:] = MASKED  # exp_q15 of (max - MASKED) is 0: no weight, no effect
            weights = self._exp[(scores.amax(dim=-1, keepdim=True) - scores).clamp(max=intmath.EXP_SPAN)]
            total = weights.sum(dim=-1, keepdim=True)  # >= 2**15 (the maximum's weight)
            # Exact: integers below 2**15 * 2**15 * 2**20 < 2**53.
            mixed = torch.matmul(weights.to(torch.float64), self._v[li, :, :, :stop]).to(torch.int64)
            # mixed / total <= 2**15 (a weighted mean of values <= 2**15): times 2**38 / total stays < 2**53
            inv_total = torch.div(1 << 38, total, rounding_mode="floor")
            att = (mixed * inv_total) >> (38 - (FRAC - V_FRAC))  # Q16
            h = (h + o_proj(torch, att.reshape(b, q_end))).clamp(-CLAMP, CLAMP)
            gu = gate_up(torch, self._rms_norm(h, w_post))
            gate, up = gu[:, : gu.shape[1] // 2], gu[:, gu.shape[1] // 2 :]
            idx = (gate >> (FRAC - intmath.SIG_STEP_BITS)).clamp(-intmath.SIG_HALF, intmath.SIG_HALF)
            silu = (gate * self._sig[idx + intmath.SIG_HALF]) >> FRAC
            act = ((silu * up) >> FRAC).clamp(-CLAMP, CLAMP)
            h = (h + down(torch, act)).clamp(-CLAMP, CLAMP)
        logits = self._head(torch, self._rms_norm(h, self._norm))
        return logits.cpu().numpy()


def _isqrt_q10(d: int) -> int:
    """sqrt(d) in Q10, by integer square root (d is the head size)."""
    import math

    return math.isqrt(d << 20)


def _rotate(torch: Any, x: Any, cos: Any, sin: Any, half: int) -> Any:
    """RoPE on Q16 integers with Q14 tables (transformers' rotate_half layout)."""
    a, b = x[..., :half], x[..., half:]
    return torch.cat(((a * cos - b * sin) >> intmath.ROPE_BITS, (b * cos + a * sin) >> intmath.ROPE_BITS), dim=-1)


def embed_device(base: Any) -> Any:
    return base.embed_tokens.weight.device
