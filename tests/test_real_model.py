"""The real default model (SmolLM2-135M GGUF from PyPI) on a real shipped gradient."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.slow
def test_default_model_roundtrips_a_real_gradient(tmp_path: Path) -> None:
    src = SAMPLES / "convnet_digits_bf16.safetensors"
    arc = tmp_path / "g.lmgc"
    # fallback off: the LM path itself must round-trip, whatever zstd would have done
    result = encode_file(src, arc, EncodeOptions(fallback=False))
    assert result.tokens > 1000
    with ArchiveReader(arc) as r:
        assert r.header.model is not None and r.header.model.id == "smollm2-135m"
        assert r.header.model.architecture == "LlamaForCausalLM"
        assert all(e.codec == 2 for e in r.index.chunks)
    out = tmp_path / "g.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()
    info = describe_archive(arc)
    assert all(t["bits_per_byte"] > 0 for t in info["tensors"])


@pytest.mark.slow
def test_the_gguf_conversion_is_cached_and_gives_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default model's GGUF is parsed once (~25 s); later loads read the checked float32 copy in
    about a second, with the same weights (the int8 engine's digest) and the same alphabet."""
    from lmgc_format.lm import models
    from lmgc_format.lm.alphabet import Alphabet
    from lmgc_format.lm.intengine import IntLlamaEngine
    from lmgc_format.tensors.serialize import get_scheme

    monkeypatch.setenv("LMGC_CACHE_DIR", str(tmp_path / "cache"))
    seen = []
    for _ in range(2):
        lm = models.load(None)
        alphabet = Alphabet.for_tokenizer(lm.tokenizer, get_scheme("comma"))
        seen.append((lm.info, alphabet.digest(), IntLlamaEngine(lm, alphabet).digest))
    (converted,) = (tmp_path / "cache").iterdir()
    assert (converted / "lmgc-complete").is_file() and (converted / "model.safetensors").is_file()
    assert seen[0] == seen[1]
    monkeypatch.setenv("LMGC_CACHE_DIR", "")  # empty: no cache
    assert models.cache_root() is None
