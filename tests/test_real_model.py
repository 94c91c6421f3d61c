"""The real default model (SmolLM2-135M GGUF from PyPI) on a real shipped gradient."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.decoder import decode_file
from lmgc_format.encoder import EncodeOptions, encode_file
from lmgc_format.inspect import describe_archive

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
