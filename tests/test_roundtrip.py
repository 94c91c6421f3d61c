"""Encode -> decode is byte-exact, with the tiny seeded model (fast)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import ModelMismatchError, OutputExistsError
from lmgc_format.events import ChunkDone, Finished, Notice, Progress, Started
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.serialize import SCHEMES
from tests.conftest import gradient_like

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def roundtrip(src: Path, tmp: Path, model: str, **kw: object) -> tuple[Path, bytes]:
    arc = tmp / (src.name + ".lmgc")
    out = tmp / "out.safetensors"
    opts = EncodeOptions(
        model=model, window_bytes=kw.pop("window_bytes", 32), batch=kw.pop("batch", 3), fallback=False, **kw
    )  # type: ignore[arg-type]
    encode_file(src, arc, opts, overwrite=True)
    decode_file(arc, out, DecodeOptions(model=model), overwrite=True)
    return arc, out.read_bytes()


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_scheme_and_float_dtype_roundtrips(tmp_path: Path, tiny_model: str, scheme: str, dtype: str) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((5, 7), 3, DTYPES[dtype]), "b": gradient_like((3,), 4, DTYPES[dtype])}, str(src))
    arc, out = roundtrip(src, tmp_path, tiny_model, scheme=scheme)
    assert out == src.read_bytes()
    with ArchiveReader(arc) as r:
        assert r.header.scheme == scheme
        assert any(e.codec == 2 for e in r.index.chunks), "the LM path must really be used"


@pytest.mark.parametrize("group", [1, 3])
def test_bytes_per_group_other_than_dtype_size(tmp_path: Path, tiny_model: str, group: int) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((11,), 5)}, str(src))
    _, out = roundtrip(src, tmp_path, tiny_model, scheme="comma", bytes_per_group=group)
    assert out == src.read_bytes()


def test_special_values_empty_and_scalar_tensors(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "g.safetensors"
    save_file(
        {
            "special": torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e-45, 3.4e38]),
            "empty": torch.zeros((0, 4)),
            "scalar": torch.tensor(1.5),
            "ints": torch.arange(-3, 4, dtype=torch.int32),
            "mask": torch.tensor([True, False, True]),
        },
        str(src),
    )
    _, out = roundtrip(src, tmp_path, tiny_model, scheme="space")
    assert out == src.read_bytes()


def test_streaming_file_larger_than_a_chunk(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"a": gradient_like((300,), 6), "b": gradient_like((90,), 7)}, str(src))
    seen: list[object] = []
    arc = tmp_path / "g.lmgc"
    encode_file(
        src, arc, EncodeOptions(model=tiny_model, window_bytes=64, batch=2, fallback=False), on_event=seen.append
    )
    with ArchiveReader(arc) as r:
        assert len(r.index.chunks) >= 8  # 1560 bytes / (2 x 64) per chunk
        assert all(e.data_length <= 128 for e in r.index.chunks)
    # the level choice may come first ("LM level: ~N s est. ..."), then the work
    assert isinstance(next(e for e in seen if not isinstance(e, Notice)), Started) and isinstance(seen[-1], Finished)
    assert sum(isinstance(e, ChunkDone) for e in seen) == len(r.index.chunks)
    done = [e.done_bytes for e in seen if isinstance(e, Progress)]
    assert done == sorted(done) and done[-1] == src.stat().st_size - r.layout.data_offset
    out = tmp_path / "o.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == src.read_bytes()


def test_gaps_and_header_padding_are_kept(tmp_path: Path, tiny_model: str) -> None:
    """A hand-written safetensors file with a hole between tensors and odd header padding."""
    a = gradient_like((4,), 8).numpy().tobytes()
    b = gradient_like((3,), 9).numpy().tobytes()
    header = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [3], "data_offsets": [20, 32]},
    }
    hj = json.dumps(header).encode() + b"      "
    src = tmp_path / "g.safetensors"
    src.write_bytes(struct.pack("<Q", len(hj)) + hj + a + b"\xde\xad\xbe\xef" + b + b"trailing")
    _, out = roundtrip(src, tmp_path, tiny_model)
    assert out == src.read_bytes()


def test_fallback_never_makes_a_chunk_bigger_than_raw(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32, batch=2))
    with ArchiveReader(arc) as r:
        assert all(e.payload_length <= e.data_length for e in r.index.chunks)
    out = tmp_path / "o"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == small_file.read_bytes()


def test_wrong_model_is_refused_and_force_still_checks(
    tmp_path: Path, tiny_model: str, other_tiny_model: str, small_file: Path
) -> None:
    arc = tmp_path / "g.lmgc"
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32, batch=2, fallback=False))
    out = tmp_path / "o"
    with pytest.raises(ModelMismatchError, match="fingerprint"):
        decode_file(arc, out, DecodeOptions(model=other_tiny_model))
    assert not out.exists()
    from lmgc_format.errors import LmgcError

    with pytest.raises(LmgcError):  # forced: decoding goes wrong, but no wrong file is written
        decode_file(arc, out, DecodeOptions(model=other_tiny_model, force=True))
    assert not out.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_overwrite_is_refused_without_flag(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    arc.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        encode_file(small_file, arc, EncodeOptions(model=tiny_model))
    assert arc.read_bytes() == b"precious"
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32), overwrite=True)
    out = tmp_path / "o"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == b"keep"


def test_cancel_leaves_no_output(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    import threading

    from lmgc_format.errors import CancelledError

    cancel = threading.Event()

    def on_event(e: object) -> None:
        if isinstance(e, Progress) and e.tokens > 10:
            cancel.set()

    arc = tmp_path / "g.lmgc"
    with pytest.raises(CancelledError):
        encode_file(
            small_file,
            arc,
            EncodeOptions(model=tiny_model, window_bytes=32, batch=1, level="max"),
            on_event=on_event,
            cancel=cancel,
        )
    assert not arc.exists() and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("order", ["stored", "msb_first"])
def test_both_byte_orders_roundtrip_and_are_recorded(tmp_path: Path, tiny_model: str, order: str) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((9,), 13), "h": gradient_like((5,), 14, torch.float16)}, str(src))
    arc, out = roundtrip(src, tmp_path, tiny_model, byte_order=order)
    assert out == src.read_bytes()
    with ArchiveReader(arc) as r:
        assert r.header.byte_order == order
