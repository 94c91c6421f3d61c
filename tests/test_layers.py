"""The per-layer board the app's table and chart show, folded from core events."""

from __future__ import annotations

from lmgc_format import events as ev
from lmgc_format.tensors.source import TensorEntry
from lmgc_tui.layers import LayerBoard


def board() -> LayerBoard:
    return LayerBoard(
        (
            TensorEntry("a", "F32", (4,), 0, 16),
            TensorEntry("b", "F32", (8,), 16, 48),
        )
    )


def test_progress_marks_the_tensor_being_coded() -> None:
    b = board()
    assert b.apply(ev.Progress("encode", 0, 48, 0)) == {"a"}
    assert b.rows["a"].status == "coding" and b.rows["b"].status == "pending"
    assert b.apply(ev.Progress("encode", 20, 48, 5)) == {"b"}
    assert b.tokens == 5


def test_chunks_accumulate_bits_per_tensor() -> None:
    b = board()
    b.apply(ev.ChunkDone(0, "lm", 0, 24, 9, (("a", 16, 40.0), ("b", 8, 32.0))))
    a, bb = b.rows["a"], b.rows["b"]
    assert a.status == "done" and a.bits_per_byte == 2.5 and a.percent == 31.25
    assert bb.status == "coding" and bb.bits_per_byte == 4.0
    b.apply(ev.ChunkDone(1, "zstd", 24, 24, 20, (("b", 24, 64.0), ("(gap)", 0, 0.0))))
    assert bb.status == "done" and bb.bits_per_byte == 96.0 / 32
    assert b.totals() == (48, 136.0)
