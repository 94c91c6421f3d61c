"""A tiny Llama with the default model's tokenizer, weights drawn from numpy's PCG64.

Random but peaked enough that the LM path is really exercised; drawn with
numpy (not torch's RNG) so the same seed gives the same weights -- and so the
same fingerprint -- across torch versions, which the golden archives rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOKENIZER_CACHE: dict[str, object] = {}


def default_tokenizer() -> object:
    if "tok" not in TOKENIZER_CACHE:
        from transformers import AutoTokenizer

        from lmgc_format.lm.models import resolve

        src = resolve(None)
        TOKENIZER_CACHE["tok"] = AutoTokenizer.from_pretrained(src.directory, gguf_file=src.gguf_file)
    return TOKENIZER_CACHE["tok"]


def make_tiny_model(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = default_tokenizer()
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    rng = np.random.default_rng(seed)
    state = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("norm.weight"):
            state[name] = torch.ones_like(tensor)
        else:
            scale = 1.0 if "embed" in name else 0.3
            state[name] = torch.from_numpy(rng.normal(0.0, scale, size=tuple(tensor.shape)).astype(np.float32))
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    tok.save_pretrained(directory)  # type: ignore[attr-defined]
    return directory
