"""lmgc as zarr 3's array-to-bytes codec (lmgc/zarr.py): arrays round-trip, zarr records the codec by
name and a fresh process opens the array with it, bad input is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import lmgc.zarr
from lmgc_format.errors import LmgcError, UnsupportedError
from tests.conftest import ROOT, gradient_like


@pytest.mark.parametrize("dtype", ["f4", "f2", "f8", "i1", "u2", "i8"])
def test_arrays_round_trip_in_every_numeric_dtype(tmp_path: Path, dtype: str) -> None:
    values = gradient_like((300, 200), 2).numpy() * 1e4
    arr = values.astype(dtype)
    z = zarr.create_array(
        store=str(tmp_path / "a.zarr"), shape=arr.shape, chunks=(128, 200), dtype=dtype,
        serializer=lmgc.zarr.LMGC(level="fast"), compressors=None,
    )  # fmt: skip
    z[:] = arr
    assert np.array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[:], arr)
    z[5:9, 3] = 0  # a partial write reads, changes and writes back one chunk
    arr[5:9, 3] = 0
    assert np.array_equal(z[:], arr)


def test_zarr_records_the_codec_and_a_fresh_process_opens_it(tmp_path: Path) -> None:
    arr = gradient_like((256, 64), 3).numpy()
    store = tmp_path / "g.zarr"
    z = zarr.create_array(store=str(store), shape=arr.shape, chunks=(64, 64), dtype="f4",
                          serializer=lmgc.zarr.LMGC(), compressors=None)  # fmt: skip
    z[:] = arr
    meta = json.loads((store / "zarr.json").read_text())
    assert meta["codecs"] == [{"name": "lmgc", "configuration": {"level": "fast"}}]
    np.save(tmp_path / "want.npy", arr)
    code = (
        "import numpy as np, zarr; "  # no import of lmgc: zarr finds the codec by its name (entry point)
        f"assert np.array_equal(zarr.open_array({str(store)!r}, mode='r')[:], np.load({str(tmp_path / 'want.npy')!r}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="level"):
        lmgc.zarr.LMGC(level="max")
    with pytest.raises(UnsupportedError, match="complex"):
        zarr.create_array(store=str(tmp_path / "c.zarr"), shape=(4,), dtype="c8", serializer=lmgc.zarr.LMGC(),
                          compressors=None)  # fmt: skip
    # a chunk written by another codec under an array that says lmgc: refused, never wrong values
    arr = np.ones((8, 8), np.float32)
    z = zarr.create_array(store=str(tmp_path / "o.zarr"), shape=arr.shape, chunks=(8, 8), dtype="f4",
                          compressors=None)  # fmt: skip
    z[:] = arr
    meta = json.loads((tmp_path / "o.zarr" / "zarr.json").read_text())
    meta["codecs"] = [{"name": "lmgc", "configuration": {"level": "fast"}}]
    (tmp_path / "o.zarr" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(LmgcError, match="not an lmgc tensor"):
        zarr.open_array(str(tmp_path / "o.zarr"), mode="r")[:]
