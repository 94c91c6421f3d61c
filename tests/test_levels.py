"""Levels: what auto chooses before any work, and the smaller archive it keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from lmgc_format.errors import UnsupportedError
from lmgc_format.events import Notice
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline import levels
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encode_job import lm_rate
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.levels import (
    FLOAT_LM_BYTES_PER_SECOND,
    LM_BYTES_PER_SECOND,
    LM_GAIN_SHARE,
    LM_HEADER_BYTES,
    choose_level,
)
from tests.conftest import gradient_like


def test_auto_uses_the_lm_within_the_budget_where_it_can_pay_and_says_so() -> None:
    fits = int(LM_BYTES_PER_SECOND * 1000)  # 80 KB: its ~1 % gain pays for the LM header
    assert LM_GAIN_SHARE * fits > LM_HEADER_BYTES
    small = choose_level(fits, "auto", budget=1200)
    assert small.level == "max" and "kept if it is smaller" in small.message
    slow = choose_level(fits, "auto", budget=180)
    assert slow.level == "fast" and "would take" in slow.message
    big = choose_level(40_000_000, "auto", budget=180)
    assert big.level == "fast" and "would take" in big.message and "--level max" in big.message
    assert choose_level(40_000_000, "max").level == "max" and choose_level(10, "fast").message == ""
    with pytest.raises(UnsupportedError):
        choose_level(10, "best")
    with pytest.raises(UnsupportedError):
        choose_level(10, "auto", budget=0)


def test_the_projection_uses_the_procedure_the_options_give() -> None:
    """The portable default encodes faster (windows read whole) than the float engines: 50 KB fits a
    1000-second budget with it, not with --engine lmgc."""
    assert lm_rate(EncodeOptions()) == LM_BYTES_PER_SECOND > FLOAT_LM_BYTES_PER_SECOND
    for float_opts in (EncodeOptions(engine="lmgc"), EncodeOptions(scheme="iso"), EncodeOptions(mixing=False)):
        assert lm_rate(float_opts) == FLOAT_LM_BYTES_PER_SECOND
    kb50 = 50_000  # enough floats for the LM to pay for its header
    assert choose_level(kb50, "auto", 1000, lm_rate=lm_rate(EncodeOptions())).level == "max"
    assert choose_level(kb50, "auto", 1000, lm_rate=lm_rate(EncodeOptions(engine="lmgc"))).level == "fast"


def test_auto_never_runs_the_lm_where_its_header_costs_more_than_it_can_save(tmp_path: Path) -> None:
    """Under ~40 KB of floats the LM's ~1 % cannot pay for its header: auto codes the fast level at once,
    with no model loaded, and says why; this is what auto does on every file under 20 KB."""
    for float_bytes in (100, 5_000, 20_000, int(LM_HEADER_BYTES / LM_GAIN_SHARE)):
        choice = choose_level(float_bytes, "auto", budget=10_000)
        assert choice.level == "fast" and f"less than the ~{LM_HEADER_BYTES} bytes its header adds" in choice.message
        # --no-fallback measures the LM: only the time budget counts then
        assert choose_level(float_bytes, "auto", budget=10_000, smallest=False).level == "max"
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((40, 64), 3)}, str(src))
    notes: list[str] = []
    result = encode_file(
        src,
        tmp_path / "a.lmgc",
        EncodeOptions(model=str(tmp_path / "no-such-model")),  # never loaded: the fast level needs none
        on_event=lambda e: notes.append(e.message) if isinstance(e, Notice) else None,
    )
    assert result.tokens == 0 and describe_archive(tmp_path / "a.lmgc")["windows"]["procedure"] == "cm-fast-v2"
    assert any("its header adds" in n for n in notes), notes


def test_auto_keeps_the_smaller_whole_archive(tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where auto runs the LM (here told its header is free), it codes both: the random tiny LM codes worse
    than the fast level, and its header is larger, so auto keeps the fast level's archive and says so,
    with no LM speed reported for it; --level max keeps the LM's."""
    monkeypatch.setattr(levels, "LM_HEADER_BYTES", 0)
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
    assert auto.tokens == 0  # the kept archive coded no token: no LM speed is reported for it
    assert describe_archive(tmp_path / "auto.lmgc")["windows"]["procedure"] == "cm-fast-v2"
    assert describe_archive(tmp_path / "max.lmgc")["model"] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auto.lmgc", "g.safetensors", "max.lmgc"]  # no leftovers
    for name in ("auto", "max"):
        out = tmp_path / f"{name}.safetensors"
        decode_file(tmp_path / f"{name}.lmgc", out, DecodeOptions(model=tiny_model))
        assert out.read_bytes() == src.read_bytes()
