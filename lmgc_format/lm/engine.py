"""A lean Llama-family forward pass for lockstep coding: lmgc's own LM engine.

Why not transformers: the codec feeds one token per window per step, and at
that size a step of a 135M-parameter model is dominated by framework work
(cache objects, mask building, module dispatch, a 49,152-row output head), not
arithmetic. This engine does only what the coder needs:

* weights taken once from the loaded transformers model (so every model
  source -- packaged GGUF, HF directory, GGUF file -- works unchanged), with
  Q/K/V and gate/up fused into one matrix each;
* a static KV cache for B windows x T positions, allocated once per chunk;
* one RoPE row per step: every window of a lockstep batch is at the same
  position, so the rotation is a broadcast, and no attention mask is needed
  (all cached positions are in the past of every row);
* an output head of only the alphabet's rows (~100-200 of 49,152).

Determinism (docs/DESIGN.md rule 1) comes from the procedure, not from the engine
being "exact": encoder and decoder run these same operations on the same
shapes in the same order, so they get the same bits. The procedure name
:data:`PROCEDURE` is written into every archive; any change here that can
move a single bit of the logits must change it. transformers stays the
reference (``--engine transformers``, procedure ``lockstep-kv-v1``) and a test
keeps this engine's probabilities within a small tolerance of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.models import LoadedModel

_BLOCK = 64  # attention positions are computed in blocks of this many (part of the procedure)
PROCEDURE = "lmgc-llama-v1"  # predictor.ENGINES["lmgc"]
ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"})


@dataclass(frozen=True)
class _Shape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    theta: float


def _rope_theta(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None) or {}
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        raise UnsupportedError(f"RoPE scaling {kind!r} is not supported by the lmgc engine (use --engine transformers)")
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    if theta is None:
        raise UnsupportedError("model config has no rope_theta")
    return float(theta)


def shape_of(model: Any) -> _Shape:
    """The sizes and constants of a Llama-family transformers model (both engines read them so)."""
    cfg = model.config
    heads = int(cfg.num_attention_heads)
    hidden = int(cfg.hidden_size)
    return _Shape(
        layers=len(getattr(model, model.base_model_prefix).layers),
        hidden=hidden,
        heads=heads,
        kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(cfg, "head_dim", None) or hidden // heads),
        eps=float(cfg.rms_norm_eps),
        theta=_rope_theta(cfg),
    )


def unsupported_reason(lm: LoadedModel) -> str | None:
    """Why this engine cannot run ``lm`` (None when it can)."""
    model = lm.model
    cfg = model.config
    if lm.info.architecture not in ARCHITECTURES:
        return f"architecture {lm.info.architecture} is not in the Llama family the engine knows"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act!r} is not silu"
    if getattr(cfg, "mlp_bias", False):
        return "MLP biases are not supported"
    head = model.get_output_embeddings()
    if head is None or getattr(head, "bias", None) is not None:
        return "the output head is not a plain linear map"
    try:
        _rope_theta(cfg)
    except UnsupportedError as exc:
        return str(exc)
    return None


class LlamaEngine:
    """Same interface as :class:`~lmgc_format.lm.predictor.LockstepPredictor`: ``reset``, ``step``."""

    head_mode = "restricted"

    def __init__(self, lm: LoadedModel, alphabet: Alphabet) -> None:
        reason = unsupported_reason(lm)
        if reason is not None:
            raise UnsupportedError(f"lmgc engine: {reason}")
        import torch

        self._torch = torch
        self.device = lm.device
        self.bos_id = lm.info.bos_id
        model = lm.model
        cfg = model.config
        base = getattr(model, model.base_model_prefix)
        self.shape = shape_of(model)
        self.sliding_window = getattr(cfg, "sliding_window", None) if getattr(cfg, "use_sliding_window", True) else None
        self.dtype = next(model.parameters()).dtype
        with torch.inference_mode():
            self._embed = base.embed_tokens.weight.detach()
            self._layers = []
            for layer in base.layers:
                att, mlp = layer.self_attn, layer.mlp
                projections = (att.q_proj, att.k_proj, att.v_proj)
                wqkv = torch.cat([p.weight.detach() for p in projections]).contiguous()
                bqkv = None
                if att.q_proj.bias is not None:
                    bqkv = torch.cat([p.bias.detach() for p in projections]).contiguous()
                if att.o_proj.bias is not None:
                    raise UnsupportedError("lmgc engine: attention output bias is not supported")
                self._layers.append(
                    (
                        layer.input_layernorm.weight.detach(),
                        wqkv,
                        bqkv,
                        att.o_proj.weight.detach().contiguous(),
                        layer.post_attention_layernorm.weight.detach(),
                        torch.cat([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()]).contiguous(),
                        mlp.down_proj.weight.detach().contiguous(),
                    )
                )
            self._norm = base.norm.weight.detach()
            ids = torch.tensor(alphabet.ids, dtype=torch.long, device=self.device)
            self._head = model.get_output_embeddings().weight.detach()[ids].contiguous()
        d = self.shape.head_dim
        self._inv_freq = 1.0 / (self.shape.theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        self._k: Any = None
        self._v: Any = None
        self._pos = 0
        self._capacity = 0
        self._batch = 0

    # -- cache -----------------------------------------------------------------

    def reset(self, capacity: int = 1024) -> None:
        """Forget the KV cache: the next step starts new windows (at position 0)."""
        self._pos = 0
        self._batch = 0
        self._capacity = max(1, capacity)
        self._k = self._v = None

    def _allocate(self, batch: int) -> None:
        torch = self._torch
        s = self.shape
        # Keys are kept transposed (positions last): q @ K^T is then a plain matmul over a
        # strided slice, measured 2x faster in bf16 than transposing a (.., n, D) view.
        self._k = torch.zeros(
            (s.layers, batch, s.kv_heads, s.head_dim, self._capacity), dtype=self.dtype, device=self.device
        )
        self._v = torch.zeros(
            (s.layers, batch, s.kv_heads, self._capacity, s.head_dim), dtype=self.dtype, device=self.device
        )
        self._batch = batch

    def _grow(self) -> None:
        # Only the cache's capacity changes; every computation reads [:pos], so growing
        # does not move a bit of the result.
        torch = self._torch
        old_k, old_v, n = self._k, self._v, self._pos
        self._capacity *= 2
        self._allocate(self._batch)
        with torch.inference_mode():
            self._k[..., :n] = old_k[..., :n]
            self._v[:, :, :, :n] = old_v[:, :, :, :n]

    def _rope(self, pos: int) -> tuple[Any, Any]:
        """cos and sin for one position, as transformers' default RoPE computes them."""
        freqs = float(pos) * self._inv_freq
        emb = self._torch.cat((freqs, freqs))
        return emb.cos().to(self.dtype).to(self.device), emb.sin().to(self.dtype).to(self.device)

    # -- the step ----------------------------------------------------------------

    def step(self, tokens: list[int]) -> np.ndarray:
        """Feed one token per window; return float32 logits over the alphabet, shape (B, A)."""
        torch = self._torch
        F = torch.nn.functional
        s = self.shape
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
            start = 0
            if self.sliding_window and n > self.sliding_window:
                start = n - self.sliding_window
            # Attention runs over a whole number of 64-position blocks, the tail masked:
            # oneDNN keeps state per matmul shape, and in bf16 a new shape every step grew
            # the process by ~1 MB per step (10 GB peak on a 38-window chunk); blocks bound
            # the shapes to capacity/64 at the cost of < 64 masked positions.
            stop = n if start else min(self._capacity, -(-n // _BLOCK) * _BLOCK)
            cos, sin = self._rope(pos)
            half = s.head_dim // 2
            group = s.heads // s.kv_heads
            q_end = s.heads * s.head_dim
            k_end = q_end + s.kv_heads * s.head_dim
            scale = 1.0 / math.sqrt(s.head_dim)
            ids = torch.tensor(tokens, dtype=torch.long, device=self.device)
            h = self._embed.index_select(0, ids)  # (B, H)
            for li, (w_in, wqkv, bqkv, wo, w_post, wgu, wd) in enumerate(self._layers):
                x = _rms_norm(h, w_in, s.eps)
                qkv = F.linear(x, wqkv, bqkv)
                q = qkv[:, :q_end].view(b, s.kv_heads, group, s.head_dim)
                k = qkv[:, q_end:k_end].view(b, s.kv_heads, s.head_dim)
                v = qkv[:, k_end:].view(b, s.kv_heads, s.head_dim)
                q = q * cos + torch.cat((-q[..., half:], q[..., :half]), dim=-1) * sin
                k = k * cos + torch.cat((-k[..., half:], k[..., :half]), dim=-1) * sin
                self._k[li, :, :, :, pos] = k
                self._v[li, :, :, pos] = v
                keys_t = self._k[li, :, :, :, start:stop]  # (B, KV, D, stop - start)
                values = self._v[li, :, :, start:stop]  # (B, KV, stop - start, D); zeros past n
                # The `group` query heads sharing a KV head are attended as `group` query
                # positions of one head: no repeat_interleave of the cache, no mask. Written
                # out instead of scaled_dot_product_attention: its CPU kernel reads the cache
                # at 6-8 GB/s in bf16 for this shape, two matmuls at 15-17 GB/s (measured,
                # B=64, 550 positions); softmax in float32 as transformers' eager path does.
                scores = (torch.matmul(q, keys_t) * scale).float()  # (B, KV, G, stop - start)
                if stop > n:
                    scores[..., n - start :] = float("-inf")
                probs = torch.softmax(scores, dim=-1).to(self.dtype)
                att = torch.matmul(probs, values)  # (B, KV, G, D)
                h = h + F.linear(att.reshape(b, q_end), wo)
                x = _rms_norm(h, w_post, s.eps)
                gu = F.linear(x, wgu)
                gate, up = gu.chunk(2, dim=-1)
                h = h + F.linear(F.silu(gate) * up, wd)
            h = _rms_norm(h, self._norm, s.eps)
            logits = F.linear(h, self._head)
            self._pos = n
            return logits.float().cpu().numpy()


def _rms_norm(x: Any, weight: Any, eps: float) -> Any:
    # As transformers' LlamaRMSNorm: statistics in float32, scaled in the model's dtype.
    import torch

    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)
