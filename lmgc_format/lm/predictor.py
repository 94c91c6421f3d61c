"""Next-token logits for B windows run in lockstep, one token per step, with a KV cache.

This is the one procedure both encoder and decoder use (docs/DESIGN.md rule 1): the
decoder can only learn token t+1 after decoding token t, so the encoder must
not use a faster full-window forward -- its logits would differ in the last
bits and the decoder would drift. Every window of a batch starts at BOS in the
same step; a window that is finished keeps being fed BOS so the batch shape
(and so the floating-point result of every other row) never changes.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import numpy as np

from lmgc_format.container.procedures import check_procedure  # the table of every name an archive can hold
from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.models import LoadedModel

# Architectures whose output head is a plain bias-free linear map of the last
# hidden state (no logit scaling or soft-capping): for them only the rows of
# the alphabet's tokens are computed (~100-200 instead of the whole vocabulary).
PLAIN_HEAD_ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"})


def _growing_kv_cache(model: Any) -> Any:
    """A transformers cache whose layers append into preallocated buffers (capacity doubles).

    transformers' DynamicCache concatenates every step: with ~1,000 steps per
    window and 30 layers that copies hundreds of MB per step and makes a step
    3x slower at the end of a window than at its start. Here the keys/values
    handed to attention are views of a buffer (measured: 115 -> 77 ms per step
    on average over 1,000 steps, batch 7, SmolLM2-135M, 2 cores).
    """
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):  # type: ignore[misc]
        def lazy_initialization(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> None:
            b, h, _, d = key_states.shape
            self.device = key_states.device
            self._k = torch.empty((b, h, 256, d), dtype=key_states.dtype, device=self.device)
            self._v = torch.empty_like(self._k)
            self._n = 0
            self.keys, self.values = self._k[:, :, :0], self._v[:, :, :0]
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = self._n + key_states.shape[-2]
            if n > self._k.shape[-2]:
                grown = torch.empty(
                    (*self._k.shape[:2], max(n, 2 * self._k.shape[-2]), self._k.shape[-1]),
                    dtype=self._k.dtype,
                    device=self.device,
                )
                grown_v = torch.empty_like(grown)
                grown[:, :, : self._n] = self._k[:, :, : self._n]
                grown_v[:, :, : self._n] = self._v[:, :, : self._n]
                self._k, self._v = grown, grown_v
            self._k[:, :, self._n : n] = key_states
            self._v[:, :, self._n : n] = value_states
            self._n = n
            self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self._n if self.is_initialized else 0

    cache = DynamicCache(config=model.config)
    cache.layers = [GrowingLayer() for _ in cache.layers]
    return cache


def alphabet_head(lm: LoadedModel, ids: Any, restricted_head: bool) -> tuple[Any, Any]:
    """(the base model or None, the output matrix's rows for the token ids ``ids`` or None).

    The rows are given (logits computed for the alphabet only) when ``restricted_head`` is asked
    for and the head is plain: an architecture of PLAIN_HEAD_ARCHITECTURES, bias-free."""
    model = lm.model
    base = getattr(model, model.base_model_prefix, None)
    head = model.get_output_embeddings()
    plain = (
        lm.info.architecture in PLAIN_HEAD_ARCHITECTURES
        and base is not None
        and head is not None
        and getattr(head, "bias", None) is None
    )
    return base, (head.weight.detach()[ids].contiguous() if restricted_head and plain else None)


class LockstepPredictor:
    def __init__(self, lm: LoadedModel, alphabet: Alphabet, restricted_head: bool = True) -> None:
        import torch

        self._torch = torch
        self.model = lm.model
        self.device = lm.device
        self.bos_id = lm.info.bos_id
        ids = torch.tensor(alphabet.ids, dtype=torch.long, device=self.device)
        self._ids = ids
        self.base, self._head_w = alphabet_head(lm, ids, restricted_head)
        self.restricted = self._head_w is not None
        self._cache: Any = None
        # transformers 5.x renamed ``past_key_values`` to ``cache``; accept both.
        params = inspect.signature((self.base or self.model).forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @property
    def head_mode(self) -> str:
        return "restricted" if self.restricted else "full"

    def reset(self, capacity: int = 256) -> None:
        """Forget the KV cache: the next step starts new windows (``capacity`` is only a hint)."""
        self._cache = _growing_kv_cache(self.model)

    def step(self, tokens: list[int]) -> np.ndarray:
        """Feed one token per window; return float32 logits over the alphabet, shape (B, A)."""
        torch = self._torch
        with torch.inference_mode():
            inp = torch.tensor(tokens, dtype=torch.long, device=self.device).unsqueeze(1)
            if self.restricted:
                assert self.base is not None and self._head_w is not None
                out = self.base(input_ids=inp, use_cache=True, **{self._cache_arg: self._cache})
                self._cache = out[self._cache_arg]
                logits = out.last_hidden_state[:, -1, :] @ self._head_w.T
            else:
                out = self.model(input_ids=inp, use_cache=True, **{self._cache_arg: self._cache})
                self._cache = out[self._cache_arg]
                logits = out.logits[:, -1, :].index_select(1, self._ids)
            return logits.float().cpu().numpy()


# The procedures an archive can name (header ``windows.procedure``) and the
# engine that runs each: an archive is decoded by the engine that encoded it.
TRANSFORMERS_PROCEDURE = "lockstep-kv-v1"
INT8_PROCEDURE = "lmgc-int8-v1"  # intengine.py: integer arithmetic, decodes on any machine
ENGINES = {"lmgc": "lmgc-llama-v1", "transformers": TRANSFORMERS_PROCEDURE, "int8": INT8_PROCEDURE}
# A procedure may name a modelling stage after the engine: "lmgc-llama-v1+cm-top-v4"
# (mixing.py, MIXINGS). A reader that does not know the whole name refuses the archive.


def split_procedure(procedure: str) -> tuple[str, str | None]:
    """``"engine+mixing"`` -> (engine procedure, mixing or None)."""
    engine, _, mixing = procedure.partition("+")
    return engine, mixing or None


class Predictor(Protocol):
    """What the coding loop needs of an engine (lmchunk.py)."""

    @property
    def bos_id(self) -> int: ...

    @property
    def head_mode(self) -> str: ...

    def reset(self, capacity: int = ...) -> None: ...

    def step(self, tokens: list[int]) -> np.ndarray: ...


class Replay:
    """Rows of logits computed ahead for windows whose tokens are known (teacher forcing), handed out
    one step at a time as the coding loop asks for them, checking that it feeds the tokens they were
    computed from. Windows that have ended get zero rows."""

    def __init__(self, feeds: list[list[int]], rows: list[np.ndarray], width: int, dtype: type) -> None:
        self._feeds, self._rows = feeds, rows
        self._width, self._dtype = width, dtype
        self._t = 0

    def reset(self) -> None:
        self._t = 0

    def step(self, tokens: list[int]) -> np.ndarray:
        t = self._t
        if len(tokens) != len(self._feeds):
            raise ValueError(f"fed {len(tokens)} windows, computed {len(self._feeds)}")
        out: np.ndarray = np.zeros((len(tokens), self._width), dtype=self._dtype)
        for i, (feed, rows) in enumerate(zip(self._feeds, self._rows, strict=True)):
            if t < len(feed):
                if tokens[i] != feed[t]:
                    raise ValueError(f"window {i}, step {t}: fed token {tokens[i]}, computed for {feed[t]}")
                out[i] = rows[t]
        self._t += 1
        return out


def teacher_feeds(bos: int, ids: list[int], symbols: list[list[int]]) -> list[list[int]]:
    """What the coding loop feeds each window: BOS, then every symbol's token but the last."""
    return [[bos] + [ids[s] for s in syms[:-1]] for syms in symbols]


def procedure_for(engine: str, lm: LoadedModel, restricted_head: bool = True, portable: bool = True) -> str:
    """The engine procedure ``engine`` ("auto", "int8", "lmgc", "transformers") gives for this model. ``auto``
    is the portable int8 engine where the model fits it (and ``portable`` allows: its coding needs a hex
    scheme with mixing), else lmgc's float engine, else transformers."""
    from lmgc_format.lm.engine import unsupported_reason

    if engine not in (*ENGINES, "auto"):
        raise UnsupportedError(f"engine must be one of auto, {', '.join(ENGINES)}")
    if engine == "transformers" or (engine == "auto" and not restricted_head):
        return TRANSFORMERS_PROCEDURE
    reason = unsupported_reason(lm)
    if engine == "int8":
        if reason is not None:
            raise UnsupportedError(f"the int8 engine cannot run this model: {reason} (use --engine transformers)")
        if not restricted_head:
            raise UnsupportedError("the int8 engine always restricts the head to the alphabet")
        return INT8_PROCEDURE
    if engine == "auto" and portable and reason is None:
        return INT8_PROCEDURE
    if reason is None:
        if not restricted_head:
            raise UnsupportedError("the lmgc engine always restricts the head to the alphabet")
        return ENGINES["lmgc"]
    if engine == "lmgc":
        raise UnsupportedError(f"the lmgc engine cannot run this model: {reason} (use --engine transformers)")
    return TRANSFORMERS_PROCEDURE


def make_predictor(lm: LoadedModel, alphabet: Alphabet, procedure: str, restricted_head: bool = True) -> Predictor:
    """The engine that runs ``procedure`` (refuses procedures this version does not know)."""
    check_procedure(procedure)
    procedure, _ = split_procedure(procedure)
    if procedure == ENGINES["lmgc"]:
        from lmgc_format.lm.engine import LlamaEngine

        return LlamaEngine(lm, alphabet)
    if procedure == INT8_PROCEDURE:
        from lmgc_format.lm.intengine import IntLlamaEngine

        return IntLlamaEngine(lm, alphabet)
    if procedure == TRANSFORMERS_PROCEDURE:
        return LockstepPredictor(lm, alphabet, restricted_head)
    known = ", ".join(repr(p) for p in ENGINES.values())
    raise UnsupportedError(f"archive uses LM procedure {procedure!r}; this version runs {known}")
