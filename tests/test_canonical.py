"""The safetensors header safetensors' writer produces, rebuilt from a tensor table."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from lmgc_format.container.canonical import rebuild, table_of


def _json(path: Path) -> bytes:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw[8 : 8 + n]


def test_safetensors_own_output_is_rebuilt_byte_for_byte(tmp_path: Path) -> None:
    cases = {
        "plain": ({"b": np.zeros(3, np.float32), "a": np.ones((2, 5), np.float16)}, None),
        "metadata": ({"x": np.zeros((1, 2, 3), np.int8)}, {"step": "7", "note": 'späť " \\ \n'}),
        "unicode names": ({"слой.вес": np.zeros(4, np.float64), "层": np.zeros(0, np.float32)}, None),
        "scalar and empty": ({"s": np.array(1.5, np.float32), "e": np.zeros((0, 4), np.float32)}, None),
    }
    for name, (arrays, metadata) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(arrays, str(path), metadata=metadata)
        header = _json(path)
        found = table_of(header)
        assert found is not None, name
        assert rebuild(*found) == header
    path = tmp_path / "torch.safetensors"
    save_torch({"w": torch.zeros(3, 3, dtype=torch.bfloat16), "i": torch.arange(5)}, str(path))
    found = table_of(_json(path))
    assert found is not None and rebuild(*found) == _json(path)


def test_anything_else_is_not_canonical() -> None:
    good = rebuild([["a", "F32", [2]]], None)
    assert table_of(good) == ([["a", "F32", [2]]], None)
    for bad in (
        good.replace(b'"dtype":', b'"dtype": '),  # a space
        good.rstrip(b" ") + b"\n" * (len(good) - len(good.rstrip(b" "))),  # other padding
        b'{"a":{"shape":[2],"dtype":"F32","data_offsets":[0,8]}}',  # key order
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}    ',  # a gap before the data
        b"[1, 2]   ",
        b"not json",
        b'{"a":{"dtype":"X9","shape":[2],"data_offsets":[0,8]}}',
    ):
        assert table_of(bad) is None, bad
