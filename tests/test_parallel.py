"""Worker processes (lmgc_format/pipeline/parallel.py): the same chunk bytes as one process, decoded in parallel too."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CancelledError, ModelMismatchError, UnsupportedError
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.models import get
from lmgc_format.lm.runtime import describe
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.parallel import RayPool, WorkerSetup, _start, result
from lmgc_format.tensors.plan import Window
from lmgc_format.tensors.serialize import get_scheme
from lmgc_tui.cli import cli

from .conftest import gradient_like
from .test_filters import softmax_head_gradient


def _source(tmp_path: Path, head: bool = False) -> Path:
    src = tmp_path / "g.safetensors"
    tensors = {"w": gradient_like((16, 12), 31), "b": gradient_like((48,), 32, torch.bfloat16), "n": torch.arange(5)}
    if head:  # filtered (filters.py): the workers code the stored bytes, the main process restores
        tensors.update(softmax_head_gradient(10, 6, 5, torch.float32))
    save_file(tensors, str(src))
    return src


def _chunks(path: Path) -> list[tuple[int, bytes]]:
    with ArchiveReader(path) as r:
        return [(e.codec, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)]


def test_workers_write_the_same_chunks_and_decode_back(tmp_path: Path, tiny_model: str) -> None:
    src = _source(tmp_path, head=True)
    # 64-byte windows, 2 per chunk: LM chunks for 768 + 96 + 280 bytes of floats, one plain chunk.
    common = {"model": tiny_model, "window_bytes": 64, "batch": 2, "fallback": False, "threads": 1}
    one, two = tmp_path / "one.lmgc", tmp_path / "two.lmgc"
    encode_file(src, one, EncodeOptions(**common))  # type: ignore[arg-type]
    encode_file(src, two, EncodeOptions(workers=2, **common))  # type: ignore[arg-type]
    chunks = _chunks(one)
    assert sum(codec == 2 for codec, _ in chunks) >= 6  # LM chunks to share out
    assert _chunks(two) == chunks
    with ArchiveReader(one) as a, ArchiveReader(two) as b:
        assert a.filters and a.filters == b.filters
        assert a.header.runtime["threads"] == b.header.runtime["threads"] == 1
        assert a.header.layout == b.header.layout
    for arc in (one, two):
        out = tmp_path / f"{arc.stem}.safetensors"
        decode_file(arc, out, DecodeOptions(model=tiny_model, workers=2))
        assert out.read_bytes() == src.read_bytes()


def test_cli_workers_option_round_trips(tmp_path: Path, tiny_model: str) -> None:
    src = _source(tmp_path)
    arc = tmp_path / "g.lmgc"
    args = ["--model", tiny_model, "--window-bytes", "128", "--batch", "2", "--workers", "2", "-q"]
    res = CliRunner().invoke(cli, ["compress", str(src), "-o", str(arc), *args, "--verify"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["decompress", str(arc), "-o", str(tmp_path / "out.safetensors"), "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.safetensors").read_bytes() == src.read_bytes()
    res = CliRunner().invoke(cli, ["compress", str(src), "-o", str(arc), "-f", "--workers", "0"])
    assert res.exit_code == 2 and "--workers" in res.output


def test_workers_are_checked_and_cancel_stops(tmp_path: Path, tiny_model: str) -> None:
    with pytest.raises(UnsupportedError, match="workers"):
        EncodeOptions(workers=0).check()
    src = _source(tmp_path)
    cancel = threading.Event()
    cancel.set()
    opts = EncodeOptions(model=tiny_model, window_bytes=64, batch=2, workers=2)
    with pytest.raises(CancelledError):
        encode_file(src, tmp_path / "c.lmgc", opts, cancel=cancel)
    assert not (tmp_path / "c.lmgc").exists()


def _setup(tiny_model: str, **runtime: object) -> WorkerSetup:
    """A worker setup for the tiny model with this process's runtime, ``runtime`` fields replaced."""
    lm = get(tiny_model, "float32", None)
    here = describe(lm.device)
    digest = Alphabet.for_tokenizer(lm.tokenizer, get_scheme("comma")).digest()
    return WorkerSetup.of(lm, "comma", "lmgc-llama-v1+cm-top-v4", True, dict(here, **runtime), digest)


def test_a_worker_that_computes_otherwise_refuses(tiny_model: str) -> None:
    setup = _setup(tiny_model)
    _start(setup)  # the main process's own runtime: accepted
    other = dict(setup.runtime, float_probe="0123456789abcdef")
    with pytest.raises(ModelMismatchError, match="computes differently"):
        _start(dataclasses.replace(setup, runtime=other))
    with pytest.raises(ModelMismatchError, match="alphabet"):
        _start(dataclasses.replace(setup, alphabet="0" * 64))


def _ray() -> None:
    # CI installs Ray (the test extra); elsewhere it is optional.
    if os.environ.get("CI") != "true":
        pytest.importorskip("ray")


@pytest.mark.timeout(300)
def test_ray_actors_write_the_same_chunks_and_decode_back(tmp_path: Path, tiny_model: str) -> None:
    _ray()
    src = _source(tmp_path)
    common = {"model": tiny_model, "window_bytes": 64, "batch": 2, "fallback": False, "threads": 1}
    one, ray = tmp_path / "one.lmgc", tmp_path / "ray.lmgc"
    encode_file(src, one, EncodeOptions(**common))  # type: ignore[arg-type]
    encode_file(src, ray, EncodeOptions(workers=2, ray="local", **common))  # type: ignore[arg-type]
    assert _chunks(ray) == _chunks(one)
    out = tmp_path / "out.safetensors"
    decode_file(ray, out, DecodeOptions(model=tiny_model, workers=0, ray="local"))  # one actor per CPU
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.timeout(300)
def test_ray_pool_reports_a_worker_error_and_checks_cpus(tiny_model: str) -> None:
    _ray()
    setup = _setup(tiny_model, threads=1)  # also the worker's torch threads
    with pytest.raises(UnsupportedError, match="wait forever"):
        RayPool(setup, (os.cpu_count() or 1) + 1, "local")
    bad = dataclasses.replace(setup, runtime=dict(setup.runtime, float_probe="0123456789abcdef"))
    pool = RayPool(bad, 1, "local")  # the worker's error comes back as itself, not wrapped by Ray
    try:
        window = Window(0, 0, 8, 4)
        with pytest.raises(ModelMismatchError, match="computes differently"):
            result(pool.encode((window,), [bytes(8)], True), None)
    finally:
        pool.close()


@pytest.mark.timeout(300)
def test_cli_ray_option_round_trips(tmp_path: Path, tiny_model: str) -> None:
    _ray()
    src = _source(tmp_path)
    arc = tmp_path / "g.lmgc"
    args = ["--model", tiny_model, "--window-bytes", "128", "--batch", "2", "--ray", "local", "-q", "--no-fallback"]
    res = CliRunner().invoke(cli, ["compress", str(src), "-o", str(arc), *args, "--workers", "2", "--verify"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["verify", str(arc), "--ray", "local", "-q"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["verify", str(arc), "--ray", " "])
    assert res.exit_code == 9 and "Ray address" in res.output
    res = CliRunner().invoke(cli, ["verify", str(arc), "--ray", "auto"])  # no cluster running here
    assert res.exit_code == 9 and "cannot reach a Ray cluster at 'auto'" in res.output
    cancel = threading.Event()
    cancel.set()
    opts = EncodeOptions(model=tiny_model, window_bytes=64, batch=2, ray="local")
    with pytest.raises(CancelledError):
        encode_file(src, tmp_path / "c.lmgc", opts, cancel=cancel)
    assert not (tmp_path / "c.lmgc").exists()
