"""The safetensors-shaped calls (lmgc_format/safe.py): save_file, load_file and safe_open give what
safetensors gives on the original file; get_tensor decodes only the chunks its tensor lies in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open as st_open
from safetensors.torch import load_file as st_load
from safetensors.torch import save_file as st_save

import lmgc
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, InputError, UnsupportedError
from lmgc_format.pipeline.decoder import ChunkDecoder
from tests.conftest import gradient_like
from tests.test_filters import softmax_head_gradient


def tensors() -> dict[str, torch.Tensor]:
    out = {
        "conv.weight": gradient_like((16, 8, 3, 3), 1),
        "fc.weight": gradient_like((300, 128), 2),
        "fc.bias": gradient_like((300,), 3),
        "emb": gradient_like((64, 48), 4).to(torch.bfloat16),
        "steps": torch.arange(1000, dtype=torch.int64),
        "half": gradient_like((40, 40), 5).half(),
    }
    out.update({f"head.{k}": v for k, v in softmax_head_gradient(10, 64, 0, torch.float32).items()})
    return out


@pytest.mark.parametrize("level", ["fast", "auto"])
def test_load_file_of_save_file_is_safetensors_load_file_of_the_original(tmp_path: Path, level: str) -> None:
    t = tensors()
    st_save(t, str(tmp_path / "o.safetensors"), metadata={"step": "7", "run": "ü"})
    lmgc.save_file(t, tmp_path / "o.lmgc", metadata={"step": "7", "run": "ü"}, level=level)
    ref, got = st_load(str(tmp_path / "o.safetensors")), lmgc.load_file(tmp_path / "o.lmgc")
    assert list(got) == list(ref)
    for k in ref:
        assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape
        assert got[k].view(torch.uint8).flatten().tolist() == ref[k].view(torch.uint8).flatten().tolist()
    with st_open(str(tmp_path / "o.safetensors"), framework="pt") as a, lmgc.safe_open(tmp_path / "o.lmgc") as b:
        assert b.keys() == a.keys() and b.metadata() == a.metadata()
        for k in a.keys():
            assert torch.equal(b.get_tensor(k).view(torch.uint8), a.get_tensor(k).view(torch.uint8))
            sl_a, sl_b = a.get_slice(k), b.get_slice(k)
            assert sl_b.get_shape() == sl_a.get_shape() and sl_b.get_dtype() == sl_a.get_dtype()
            assert torch.equal(sl_b[:3].view(torch.uint8), sl_a[:3].view(torch.uint8))
    with lmgc.safe_open(tmp_path / "o.lmgc", framework="np") as f:
        assert np.array_equal(f.get_tensor("steps"), np.arange(1000))
        with pytest.raises(UnsupportedError, match='framework="pt"'):
            f.get_tensor("emb")  # numpy has no bfloat16


def test_get_tensor_decodes_only_the_chunks_its_bytes_lie_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lmgc.save_file(tensors(), tmp_path / "o.lmgc", level="fast")
    decoded: list[int] = []
    original = ChunkDecoder.decode

    def spy(self: ChunkDecoder, i: int, step: object = None) -> bytes:
        decoded.append(i)
        return original(self, i)

    monkeypatch.setattr(ChunkDecoder, "decode", spy)
    with ArchiveReader(tmp_path / "o.lmgc") as r:
        entry = next(t for t in r.tensors if t.name == "fc.bias")
        spans = [p.index for p in r.plan if max(p.begin, entry.begin) < min(p.end, entry.end)]
        assert len(spans) < len(r.plan)
    with lmgc.safe_open(tmp_path / "o.lmgc") as f:
        f.get_tensor("fc.bias")
    assert decoded == spans


def test_bad_names_frameworks_and_damage_are_named(tmp_path: Path) -> None:
    lmgc.save_file(tensors(), tmp_path / "o.lmgc", level="fast")
    with pytest.raises(UnsupportedError, match="framework"):
        lmgc.safe_open(tmp_path / "o.lmgc", framework="tf")
    with pytest.raises(UnsupportedError, match="metadata"):
        lmgc.save_file(tensors(), tmp_path / "m.lmgc", metadata={"step": 3})
    assert not (tmp_path / "m.lmgc").exists()
    with lmgc.safe_open(tmp_path / "o.lmgc") as f, pytest.raises(InputError, match="no tensor named 'nope'"):
        f.get_tensor("nope")
    with ArchiveReader(tmp_path / "o.lmgc") as r:
        entry = next(t for t in r.tensors if t.name == "fc.weight")
        i = next(p.index for p in r.plan if max(p.begin, entry.begin) < min(p.end, entry.end))
        at, other = r.payload_offset(i), r.tensors[0].name
    raw = bytearray((tmp_path / "o.lmgc").read_bytes())
    raw[at] ^= 1
    (tmp_path / "bad.lmgc").write_bytes(bytes(raw))
    with lmgc.safe_open(tmp_path / "bad.lmgc") as f:
        with pytest.raises(CorruptChunkError, match=f"chunk {i} .*fc.weight.*CRC"):
            f.get_tensor("fc.weight")
        assert f.get_tensor(other).shape  # a tensor whose chunks are intact still reads
