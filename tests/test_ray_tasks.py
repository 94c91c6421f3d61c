"""The quick and fast levels' chunks on Ray actors (pipeline/ray_tasks.py): the same bytes as threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.container.constants import Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, UnsupportedError
from lmgc_format.pipeline.compiled_chunks import decode_compiled
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.parallel import result
from lmgc_format.pipeline.ray_tasks import RayTasks
from lmgc_format.tensors.plan import ChunkPlan
from lmgc_format.tensors.source import read_layout
from tests.conftest import gradient_like


def _ray() -> None:
    if os.environ.get("CI") != "true":
        pytest.importorskip("ray")


def _chunks(path: Path) -> list[tuple[int, bytes]]:
    with ArchiveReader(path) as r:
        return [(e.codec, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("level", ["quick", "fast"])
def test_ray_actors_code_the_same_chunks_as_threads(tmp_path: Path, level: str) -> None:
    _ray()
    src = tmp_path / "g.safetensors"
    tensors = {f"w{i}": gradient_like((256, 300), i) for i in range(4)}  # 4 chunks of 300 KB
    tensors["steps"] = torch.arange(5000, dtype=torch.int32) % 7
    save_file(tensors, str(src))
    threads, ray = tmp_path / "threads.lmgc", tmp_path / "ray.lmgc"
    encode_file(src, threads, EncodeOptions(level=level))
    encode_file(src, ray, EncodeOptions(level=level, workers=2, ray="local"))
    assert _chunks(ray) == _chunks(threads)
    out = tmp_path / "out.safetensors"
    decode_file(ray, out, DecodeOptions(workers=0, ray="local"))  # one actor per CPU
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.timeout(300)
def test_ray_tasks_check_cpus_and_report_a_chunk_error(tmp_path: Path) -> None:
    _ray()
    with pytest.raises(UnsupportedError, match="would wait for theirs"):
        RayTasks("local", (os.cpu_count() or 1) + 1)
    tasks = RayTasks("local", 1)
    try:
        src = tmp_path / "i.safetensors"
        save_file({"t": torch.arange(8, dtype=torch.int8)}, str(src))
        layout = read_layout(src)
        chunk = ChunkPlan(0, False, 0, 8, (), 0)
        with pytest.raises(CorruptChunkError, match="unknown version"):  # raised as itself, not wrapped by Ray
            result(tasks.submit(decode_compiled, Codec.QUICK, chunk, layout, b"\x09"), None)
    finally:
        tasks.close()


@pytest.mark.timeout(300)
def test_cli_codes_a_sharded_checkpoint_on_one_ray_instance(tmp_path: Path) -> None:
    """Several files in one command: one Ray instance for all (parallel.ray_session), each file decoded back."""
    _ray()
    from click.testing import CliRunner

    from lmgc_tui.cli import cli

    shards = []
    for k in (1, 2):
        shard = tmp_path / f"model-0000{k}-of-00002.safetensors"
        save_file({f"layer{k}.w": gradient_like((128, 200), k)}, str(shard))
        shards.append(shard)
    res = CliRunner().invoke(cli, ["compress", *map(str, shards), "--level", "quick", "--ray", "local", "-q"])
    assert res.exit_code == 0, res.output
    archives = [s.with_name(s.name + ".lmgc") for s in shards]
    out = tmp_path / "out"
    out.mkdir()
    for arc in archives:
        arc.rename(out / arc.name)
    moved = [str(out / a.name) for a in archives]
    res = CliRunner().invoke(cli, ["decompress", *moved, "--ray", "local", "-q"])
    assert res.exit_code == 0, res.output
    for shard in shards:
        assert (out / shard.name).read_bytes() == shard.read_bytes()
