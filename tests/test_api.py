"""lmgc as a library (lmgc_format/api.py, the top-level ``lmgc`` package, ``lmgc.numcodecs``, docs/API.md)."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import lmgc
from lmgc_format.errors import CancelledError, LmgcError, UnsupportedError
from lmgc_format.events import ChunkDone, Finished, Started
from tests.conftest import ROOT, gradient_like


def test_tensors_of_every_kind_round_trip_in_memory() -> None:
    grad = gradient_like((48, 32), 1)
    tensors = {
        "w": grad,
        "w_t": grad.t(),  # not contiguous
        "bf16": grad.to(torch.bfloat16),
        "steps": torch.arange(5, dtype=torch.int64),
        "np16": np.linspace(-1, 1, 50, dtype=np.float16),
        "np64": np.random.default_rng(0).standard_normal((7, 3)),
    }
    blob = lmgc.compress(tensors, level="fast")
    assert isinstance(blob, bytes) and blob[:8] == b"\x89LMGC\r\n\x1a"
    back = lmgc.decompress(blob, framework="pt")
    assert set(back) == set(tensors)
    for name, value in tensors.items():
        want = value if isinstance(value, torch.Tensor) else torch.from_numpy(value)
        assert back[name].dtype == want.dtype and torch.equal(back[name], want.contiguous()), name
    numpy_only = lmgc.decompress(lmgc.compress({"a": tensors["np64"], "b": grad}, level="fast"))
    assert np.array_equal(numpy_only["a"], tensors["np64"]) and numpy_only["b"].dtype == np.float32
    with pytest.raises(UnsupportedError, match='framework="pt"'):
        lmgc.decompress(blob)  # bfloat16 has no numpy dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_cuda_tensors_are_compressed_from_the_device() -> None:
    grad = gradient_like((16, 16), 2).cuda()
    assert torch.equal(lmgc.decompress(lmgc.compress({"g": grad}, level="fast"), framework="pt")["g"], grad.cpu())


def test_wrong_input_is_an_lmgc_error() -> None:
    with pytest.raises(UnsupportedError, match="unknown option"):
        lmgc.compress({"w": gradient_like((4, 4), 1)}, levle="fast")
    with pytest.raises(UnsupportedError, match="non-empty mapping"):
        lmgc.compress({})
    with pytest.raises(UnsupportedError, match=r"torch\.Tensor or numpy\.ndarray"):
        lmgc.compress({"w": [1.0, 2.0]})
    with pytest.raises(LmgcError):
        lmgc.decompress(b"not an archive")
    assert issubclass(UnsupportedError, lmgc.LmgcError)


def test_progress_events_and_cancel() -> None:
    seen: list[object] = []
    lmgc.compress({"w": gradient_like((64, 64), 3)}, level="fast", on_event=seen.append)
    assert any(isinstance(e, Started) for e in seen) and isinstance(seen[-1], Finished)
    assert any(isinstance(e, ChunkDone) for e in seen)
    stop = threading.Event()
    stop.set()
    with pytest.raises(CancelledError):
        lmgc.compress({"w": gradient_like((64, 64), 3)}, level="fast", cancel=stop)


def test_file_functions_are_the_cli_commands(tmp_path: Path, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    result = lmgc.compress_file(small_file, arc, level="fast")
    assert result.archive_size == arc.stat().st_size
    assert lmgc.verify(arc).sha256 == result.sha256
    assert lmgc.inspect(arc)["portable"] is True
    out = tmp_path / "g.safetensors"
    lmgc.decompress_file(arc, out)
    assert out.read_bytes() == small_file.read_bytes()
    # binary file objects in and out (a socket, an HTTP body, a BytesIO)
    archive = io.BytesIO()
    with small_file.open("rb") as f:
        lmgc.compress_file(f, archive, level="fast")
    archive.seek(0)
    restored = io.BytesIO()
    lmgc.decompress_file(archive, restored)
    assert restored.getvalue() == small_file.read_bytes()


def test_numcodecs_codec_and_a_zarr_array(tmp_path: Path) -> None:
    numcodecs = pytest.importorskip("numcodecs")
    zarr = pytest.importorskip("zarr")
    import lmgc.numcodecs

    codec = numcodecs.get_codec({"id": "lmgc", "level": "fast"})
    assert isinstance(codec, lmgc.numcodecs.LMGC)
    a = gradient_like((96, 64), 4).numpy()
    assert np.array_equal(codec.decode(codec.encode(a)).reshape(a.shape), a)
    out = np.empty_like(a)
    codec.decode(codec.encode(a), out=out)
    assert np.array_equal(out, a)
    z = zarr.create_array(
        store=str(tmp_path / "g.zarr"), shape=a.shape, chunks=(48, 64), dtype="f4", zarr_format=2, compressors=codec
    )
    z[:] = a
    back = zarr.open_array(str(tmp_path / "g.zarr"), mode="r")
    assert np.array_equal(back[:], a)


def test_api_doc_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python block of docs/API.md runs as written (in a scratch directory)."""
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "API.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/API.md", "exec"), namespace)
