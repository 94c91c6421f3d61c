"""Levels: what auto chooses before any work, and the smaller archive it keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from lmgc_format.errors import UnsupportedError
from lmgc_format.events import Notice
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encode_job import lm_rate
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.levels import FLOAT_LM_BYTES_PER_SECOND, LM_BYTES_PER_SECOND, choose_level
from tests.conftest import gradient_like


def test_auto_uses_the_lm_within_the_budget_and_says_so() -> None:
    small = choose_level(int(LM_BYTES_PER_SECOND * 100), "auto", budget=180)
    assert small.level == "max" and "kept if it is smaller" in small.message
    big = choose_level(40_000_000, "auto", budget=180)
    assert big.level == "fast" and "would take" in big.message and "--level max" in big.message
    assert choose_level(40_000_000, "max").level == "max" and choose_level(10, "fast").message == ""
    with pytest.raises(UnsupportedError):
        choose_level(10, "best")
    with pytest.raises(UnsupportedError):
        choose_level(10, "auto", budget=0)


def test_the_projection_uses_the_procedure_the_options_give() -> None:
    """The portable default encodes faster (windows read whole) than the float engines: 10 KB fits a
    3-minute budget with it, not with --engine lmgc."""
    assert lm_rate(EncodeOptions()) == LM_BYTES_PER_SECOND > FLOAT_LM_BYTES_PER_SECOND
    for float_opts in (EncodeOptions(engine="lmgc"), EncodeOptions(scheme="iso"), EncodeOptions(mixing=False)):
        assert lm_rate(float_opts) == FLOAT_LM_BYTES_PER_SECOND
    kb10 = 10_000
    assert choose_level(kb10, "auto", 180, lm_rate=lm_rate(EncodeOptions())).level == "max"
    assert choose_level(kb10, "auto", 180, lm_rate=lm_rate(EncodeOptions(engine="lmgc"))).level == "fast"


def test_auto_keeps_the_smaller_whole_archive(tmp_path: Path, tiny_model: str) -> None:
    """The random tiny LM codes worse than the fast level, and its header is larger: auto keeps the fast
    level's archive and says so; --level max keeps the LM's."""
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((24, 16), 1), "b": gradient_like((24,), 2)}, str(src))
    notes: list[str] = []
    auto = encode_file(
        src,
        tmp_path / "auto.lmgc",
        EncodeOptions(model=tiny_model, window_bytes=64),
        on_event=lambda e: notes.append(e.message) if isinstance(e, Notice) else None,
    )
    # (fallback off: else this LM archive, larger than the file, would be stored)
    forced_opts = EncodeOptions(model=tiny_model, window_bytes=64, level="max", fallback=False)
    forced = encode_file(src, tmp_path / "max.lmgc", forced_opts)
    assert auto.archive_size < forced.archive_size
    assert any("kept the fast level's archive" in n for n in notes), notes
    assert describe_archive(tmp_path / "auto.lmgc")["windows"]["procedure"] == "cm-fast-v1"
    assert describe_archive(tmp_path / "max.lmgc")["model"] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auto.lmgc", "g.safetensors", "max.lmgc"]  # no leftovers
    for name in ("auto", "max"):
        out = tmp_path / f"{name}.safetensors"
        decode_file(tmp_path / f"{name}.lmgc", out, DecodeOptions(model=tiny_model))
        assert out.read_bytes() == src.read_bytes()
