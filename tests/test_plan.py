from __future__ import annotations

import json

from lmgc_format.tensors.plan import plan_chunks
from lmgc_format.tensors.source import SourceLayout, parse_header


def layout(header: dict[str, object], data_size: int) -> SourceLayout:
    raw = json.dumps(header).encode()
    return SourceLayout(raw, 8 + len(raw), 8 + len(raw) + data_size, parse_header(raw, data_size))


def test_every_byte_in_exactly_one_chunk_in_order() -> None:
    lay = layout(
        {
            "a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]},
            "i": {"dtype": "I64", "shape": [3], "data_offsets": [400, 424]},
            "b": {"dtype": "BF16", "shape": [7], "data_offsets": [428, 442]},
        },
        450,
    )
    chunks = plan_chunks(lay, window_bytes=64, batch=3, bytes_per_group=0, plain_chunk_bytes=10)
    pos = 0
    for i, c in enumerate(chunks):
        assert c.index == i and c.begin == pos
        pos = c.end
        for w in c.windows:
            t = lay.tensors[w.tensor]
            assert t.begin <= w.begin < w.end <= t.end  # never crosses a tensor boundary
            assert w.nbytes % w.group == 0 or w.end == t.end
        assert len(c.windows) <= 3
    assert pos == 450
    # a: 7 windows -> chunks of 3, 3, 1 (the int tensor ends the batch); b: 1 window -> 4 LM chunks
    assert [len(c.windows) for c in chunks if c.lm] == [3, 3, 1, 1]
    assert any(not c.lm and c.tensor == -1 for c in chunks)  # the gap and the tail


def test_windows_round_down_to_whole_groups() -> None:
    lay = layout({"a": {"dtype": "F32", "shape": [10], "data_offsets": [0, 40]}}, 40)
    (c,) = plan_chunks(lay, window_bytes=10, batch=8, bytes_per_group=0)
    assert [w.nbytes for w in c.windows] == [8, 8, 8, 8, 8]


def test_windows_know_their_place_in_the_tensor() -> None:
    """first / row / ref (cm-top-v3's grid contexts): group index, groups per row, the row vector."""
    lay = layout(
        {
            "fc.bias": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "fc.weight": {"dtype": "F32", "shape": [4, 3, 2], "data_offsets": [16, 112]},
            "other": {"dtype": "F32", "shape": [5, 2], "data_offsets": [112, 152]},
        },
        152,
    )
    (c,) = plan_chunks(lay, window_bytes=32, batch=16, bytes_per_group=0)
    bias, weight, other = ([w for w in c.windows if w.tensor == t] for t in range(3))
    assert [(w.first, w.row, w.ref) for w in bias] == [(0, 0, -1)]  # a vector has no grid
    assert [(w.first, w.row, w.ref) for w in weight] == [(0, 6, 0), (8, 6, 0), (16, 6, 0)]
    assert [(w.first, w.row, w.ref) for w in other] == [(0, 2, -1), (8, 2, -1)]  # no vector of length 5
    # Other group sizes count groups per row where they split a row evenly (24 / 3), else no grid (8 / 3).
    (c,) = plan_chunks(lay, window_bytes=32, batch=16, bytes_per_group=3)
    assert {w.tensor: w.row for w in c.windows} == {0: 0, 1: 8, 2: 0}
    assert {w.ref for w in c.windows} == {-1}  # a 3-byte group is no value of the bias
