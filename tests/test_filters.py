"""Zero-sum filters (filters.py): exact inverses however the data is cut, chosen only where
backprop's constraints hold, and carried by the archive (format 1.2, preamble flag)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.container.constants import FLAG_COMPACT, FLAG_FILTERS, MAJOR, MINOR
from lmgc_format.container.fixed import Preamble
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import FormatError
from lmgc_format.lm.coder import Encoder
from lmgc_format.lm.topbyte import encode_tops
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.salvage import salvage_file
from lmgc_format.tensors.plan import plan_chunks
from lmgc_format.tensors.source import read_layout
from lmgc_format.transforms.filters import (
    FIRST_AXIS,
    LAST_AXIS,
    ForwardFilter,
    InverseFilter,
    LineSums,
    TensorFilter,
    check_filters,
    choose_filters,
    mark_plan,
    parse_pairs,
    restore_tensor,
)
from tests.conftest import gradient_like

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}


def softmax_head_gradient(classes: int, features: int, seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A real cross-entropy head's gradient: its columns and its bias sum to zero over classes."""
    gen = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(features, classes)
    with torch.no_grad():  # from the seed alone, not from torch's global state (test order)
        head.weight.copy_(torch.randn(classes, features, generator=gen) * features**-0.5)
        head.bias.copy_(torch.randn(classes, generator=gen) * 0.1)
    x = torch.randn(32, features, generator=gen)
    y = torch.randint(0, classes, (32,), generator=gen)
    torch.nn.functional.cross_entropy(head(x), y).backward()
    assert head.weight.grad is not None and head.bias.grad is not None
    return {"head.weight": head.weight.grad.to(dtype), "head.bias": head.bias.grad.to(dtype)}


def layer_norm_stream_gradient(seed: int) -> dict[str, torch.Tensor]:
    """A position table read only through a LayerNorm: each position's row sums to zero."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.zeros(1, 6, 8, requires_grad=True)
    x = torch.randn(4, 6, 8, generator=gen)
    out = torch.nn.functional.layer_norm(x + pos, (8,))
    (out * torch.randn(4, 6, 8, generator=gen)).sum().backward()
    assert pos.grad is not None
    return {"pos": pos.grad}


def _data(path: Path) -> tuple[bytes, bytes]:
    raw = path.read_bytes()
    layout = read_layout(path)
    return raw[: layout.data_offset], raw[layout.data_offset :]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kind", [FIRST_AXIS, LAST_AXIS])
def test_inverse_restores_every_bit_pattern_however_cut(tmp_path: Path, dtype: str, kind: str) -> None:
    values = gradient_like((7, 9), 1, DTYPES[dtype])
    flat = values.reshape(-1)
    flat[:6] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1e-30]).to(DTYPES[dtype])
    src = tmp_path / "g.safetensors"
    save_file({"g": values}, str(src))
    layout = read_layout(src)
    t = layout.tensors[0]
    _, data = _data(src)
    forward = LineSums(t, kind)
    stored = forward.feed(np.frombuffer(data, dtype=forward.bits.uint), True).tobytes()
    assert stored != data  # the predicted places really changed
    rng = np.random.default_rng(0)
    for _ in range(5):  # the same bytes back whatever the pieces
        cuts = sorted(set(rng.integers(1, 63, size=4).tolist()))
        inverse = InverseFilter(layout, (TensorFilter(0, kind),))
        size = t.item_size
        pieces = [stored[a * size : b * size] for a, b in zip([0, *cuts], [*cuts, 63], strict=True)]
        offsets = [a * size for a in [0, *cuts]]
        assert b"".join(inverse.feed(o, p) for o, p in zip(offsets, pieces, strict=True)) == data
    assert restore_tensor(t, kind, stored) == data


@pytest.mark.parametrize("dtype", ["F32", "BF16"])
def test_softmax_head_is_found_and_its_last_row_becomes_small(tmp_path: Path, dtype: str) -> None:
    src = tmp_path / "g.safetensors"
    tensors = softmax_head_gradient(10, 12, 0, DTYPES[dtype])
    tensors["other"] = gradient_like((10, 12), 2, DTYPES[dtype])  # no constraint: left alone
    save_file(tensors, str(src))
    layout = read_layout(src)
    _, data = _data(src)
    filters, words = choose_filters(layout, lambda o, n: data[o : o + n], 0)
    names = {layout.tensors[f.tensor].name: f.kind for f in filters}
    assert names == {"head.weight": FIRST_AXIS, "head.bias": FIRST_AXIS}
    bits = 8 * layout.tensors[0].item_size
    for f in filters:
        assert max(int(w).bit_length() for w in words[f.tensor]) <= bits // 2
    # Applied chunk by chunk, the filter changes only the predicted places: the last row.
    forward = ForwardFilter(layout, filters, words)
    plan = plan_chunks(layout, 16, 2, 0)
    stored = b"".join(forward.apply(c.begin, data[c.begin : c.end]) for c in plan)
    head = next(t for t in layout.tensors if t.name == "head.weight")
    last_row = head.end - 12 * head.item_size
    assert stored[head.begin : last_row] == data[head.begin : last_row]
    assert stored[last_row : head.end] != data[last_row : head.end]
    inverse = InverseFilter(layout, filters)
    assert b"".join(inverse.feed(c.begin, stored[c.begin : c.end]) for c in plan) == data


def test_layer_norm_table_is_filtered_along_its_last_axis(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_file(layer_norm_stream_gradient(0), str(src))
    layout = read_layout(src)
    _, data = _data(src)
    filters, _ = choose_filters(layout, lambda o, n: data[o : o + n], 0)
    assert filters == (TensorFilter(0, LAST_AXIS),)


def test_no_filter_where_windows_cut_elements(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_file(softmax_head_gradient(10, 4, 0, torch.float32), str(src))
    layout = read_layout(src)
    _, data = _data(src)
    assert choose_filters(layout, lambda o, n: data[o : o + n], 0)[0]
    assert choose_filters(layout, lambda o, n: data[o : o + n], 3)[0] == ()  # 3-byte groups cut floats


def test_header_filters_are_checked(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((4, 4), 1), "ints": torch.arange(4)}, str(src))
    layout = read_layout(src)
    assert check_filters(parse_pairs([[1, FIRST_AXIS]]), layout, 0) == (TensorFilter(1, FIRST_AXIS),)
    for bad, why in (
        ([[1, "sum-diagonal-v9"]], "unknown filter"),
        ([[5, FIRST_AXIS]], "in range"),
        ([[0, FIRST_AXIS]], "cannot carry"),  # integers
        ([[1, FIRST_AXIS], [1, LAST_AXIS]], "increasing"),
        ([["w", FIRST_AXIS]], "tensor index"),
    ):
        with pytest.raises(FormatError, match=why):
            check_filters(parse_pairs(bad), layout, 0)


def test_archive_with_filters_roundtrips(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "g.safetensors"
    save_file(softmax_head_gradient(10, 16, 1, torch.float32), str(src))
    crcs = {}
    for on in (True, False):
        arc = tmp_path / f"g{on}.lmgc"
        out = tmp_path / f"out{on}.safetensors"
        # fallback off: the random tiny model loses, and an archive larger than the file would be stored
        opts = EncodeOptions(model=tiny_model, window_bytes=64, batch=4, filters=on, fallback=False)
        encode_file(src, arc, opts)
        with ArchiveReader(arc) as r:
            crcs[on] = [e.payload_crc for e in r.index.chunks]
        decode_file(arc, out, DecodeOptions(model=tiny_model))
        assert out.read_bytes() == src.read_bytes()
        with ArchiveReader(arc) as r:
            assert (r.version, bool(r.filters)) == ((MAJOR, MINOR), on)
            flags = struct.unpack_from("<I", arc.read_bytes(), 12)[0]
            assert flags == (FLAG_FILTERS if on else 0) | FLAG_COMPACT
            assert len(r.header.filters) == (2 if on else 0)
        # salvage restores filtered tensors too
        kept = tmp_path / f"kept{on}.safetensors"
        salvage_file(arc, kept, DecodeOptions(model=tiny_model))
        assert kept.read_bytes()[-(10 * 16 + 10) * 4 :] == src.read_bytes()[-(10 * 16 + 10) * 4 :]
    # What the filter saves is measured with the real model (BENCHMARKS.md); the tiny random
    # model's sizes make no promise (they can even tie), but the chunks that hold the head must differ.
    assert crcs[True] != crcs[False]


def test_old_reader_refuses_unknown_flags_and_filters_without_flag(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "g.safetensors"
    save_file(softmax_head_gradient(10, 16, 1, torch.float32), str(src))
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, EncodeOptions(model=tiny_model, window_bytes=64, batch=4, fallback=False))
    raw = bytearray(arc.read_bytes())
    with pytest.raises(FormatError, match="reserved flags 0x20"):
        Preamble.unpack(bytes(raw[:12]) + struct.pack("<I", 32 | FLAG_FILTERS) + bytes(raw[16:24]))
    raw[12:16] = struct.pack("<I", FLAG_COMPACT)  # a writer that forgot the flag: refused, not decoded wrong
    bad = tmp_path / "bad.lmgc"
    bad.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="filters flag"):
        ArchiveReader(bad)


def test_cli_shows_filters_and_can_turn_them_off(tmp_path: Path, tiny_model: str) -> None:
    from click.testing import CliRunner

    from lmgc_tui.cli import cli

    src = tmp_path / "g.safetensors"
    save_file(softmax_head_gradient(10, 16, 1, torch.float32), str(src))
    runner = CliRunner()
    for flag, shown in (("--filters", "head.weight (sum-first-axis-v1)"), ("--no-filters", "none")):
        arc = tmp_path / f"g{flag}.lmgc"
        args = ["compress", str(src), "-o", str(arc), "--model", tiny_model, "--window-bytes", "64", flag, "-q"]
        args.append("--no-fallback")  # the tiny random model loses: the file would be stored, without filters
        assert runner.invoke(cli, args).exit_code == 0
        out = runner.invoke(cli, ["inspect", str(arc)]).output
        assert "filters" in out and shown in out


def test_mark_plan_marks_exactly_the_predicted_groups(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_file({**softmax_head_gradient(10, 6, 0, torch.float32), **layer_norm_stream_gradient(1)}, str(src))
    layout = read_layout(src)
    _, data = _data(src)
    filters, _ = choose_filters(layout, lambda o, n: data[o : o + n], 0)
    plan = mark_plan(plan_chunks(layout, 16, 2, 0), layout, filters)
    marked: dict[str, set[int]] = {}
    for chunk in plan:
        for w in chunk.windows:
            for k in range(w.nbytes // w.group):
                if w.predicted(w.first + k):
                    marked.setdefault(layout.tensors[w.tensor].name, set()).add(w.first + k)
    assert marked == {"head.bias": {9}, "head.weight": set(range(54, 60)), "pos": {7, 15, 23, 31, 39, 47}}


@pytest.mark.parametrize("fit", [False, True])  # cm-top-v3, cm-top-v4
def test_top_byte_model_codes_stored_distances_apart(fit: bool) -> None:
    """A stored distance's top byte is zero where the tensor's values never are: with contexts of
    its own it costs far less than among the values' contexts."""
    rng = np.random.default_rng(0)
    tops = bytearray(rng.choice([0x3A, 0x3B, 0xBA, 0xBB, 0x3C], size=200).tolist())
    stored = [i % 10 == 9 for i in range(200)]
    for i, s in enumerate(stored):
        if s:
            tops[i] = 0
    costs = {}
    for flagged in (False, True):
        where = [(0, i, 10, -1, flagged and s) for i, s in enumerate(stored)]
        bits = encode_tops(Encoder(), bytes(tops), where, fit=fit)
        costs[flagged] = sum(b for b, s in zip(bits, stored, strict=True) if s)
    assert costs[True] < 0.6 * costs[False]
