"""No wrong bytes, no crash: the environment (dtype, threads, disks, signals, outputs that are links or
devices) and what messages show (hostile names, markup, the line a user reads)."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import zstandard
from click.testing import CliRunner
from safetensors.torch import save_file

from lmgc_format import atomic
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, FormatError, LmgcError, ModelMismatchError
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_tui.cli import cli
from tests.conftest import ROOT, gradient_like

# -- wrong environment ---------------------------------------------------------------------------------


def test_other_dtype_is_refused_with_what_differs(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    # fallback off: the random tiny model loses to zstd, and an archive without LM chunks needs no model
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32, dtype="bfloat16", fallback=False))
    from lmgc_format.lm.models import get

    fp32 = get(tiny_model, "float32")
    with pytest.raises(ModelMismatchError, match="dtype float32 is not the archive's bfloat16"):
        decode_file(arc, None, model=fp32)


# -- interruptions and full disks ---------------------------------------------------------------------


class FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes."""

    def __init__(self, real: Any, room: int) -> None:
        self.real, self.room = real, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("where", ["header", "footer"])
def test_disk_full_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, tiny_model: str, small_file: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    target = tmp_path / "g.lmgc"
    opts = EncodeOptions(model=tiny_model, window_bytes=32)
    room = 100
    if where == "footer":  # room for everything but the last bytes
        room = encode_file(small_file, target, opts).archive_size - 10
        target.unlink()
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode), room))
    with pytest.raises(LmgcError, match="No space left"):
        encode_file(small_file, target, opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == [small_file.name]


@pytest.mark.parametrize("level", ["max", "fast"])
def test_sigterm_mid_encode_leaves_no_partial_file(tmp_path: Path, tiny_model: str, level: str) -> None:
    src = tmp_path / "big.safetensors"
    # the fast level codes megabytes per second: give it enough to be still at work when the signal comes
    shape = (64, 512) if level == "max" else (4096, 4096)
    save_file({"w": gradient_like(shape, 5)}, str(src))
    target = tmp_path / "big.lmgc"
    target.write_bytes(b"old archive")  # an existing output must survive the interruption untouched
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["compress", str(src), "-o", str(target), "-f", "--model", tiny_model, "-q", "--level", level]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmgc_tui", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".partial") for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.lmgc", "big.safetensors"]
    assert target.read_bytes() == b"old archive"


# -- names that are markup or terminal escapes (issue 21, items 6 and 8) ------------------------------

HOSTILE_NAMES = ["[/x]", "[red]grads[/red]", "a\x1b]0;pwned\x07b", "\x1b[2J\x1b[31mred", "rtl\u202etxt"]


def test_hostile_names_are_shown_escaped_on_the_command_line(tmp_path: Path) -> None:
    """Square brackets are not Rich markup, control characters are shown as escapes: no MarkupError, no
    terminal title or colour set by a name, in compress, inspect, verify and decompress."""
    src = tmp_path / "grads[red].safetensors"
    save_file({name: gradient_like((4, 4), i) for i, name in enumerate(HOSTILE_NAMES)}, str(src))
    arc = tmp_path / "grads[red].lmgc"
    runner = CliRunner()
    res = runner.invoke(cli, ["compress", str(src), "-o", str(arc), "--level", "fast"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "grads[red].safetensors" in res.output  # the file name as it is, brackets included
    res = runner.invoke(cli, ["inspect", str(arc)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "[/x]" in res.output and "[red]grads[/red]" in res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\u202e" not in res.output
    assert "a\\x1b]0;pwned\\x07b" in res.output and "rtl\\u202etxt" in res.output
    res = runner.invoke(cli, ["inspect", str(arc), "--json"], catch_exceptions=False)
    assert sorted(t["name"] for t in json.loads(res.output)["tensors"]) == sorted(HOSTILE_NAMES)  # JSON exact
    res = runner.invoke(cli, ["verify", str(arc)], catch_exceptions=False)
    assert res.exit_code == 0 and "grads[red].lmgc" in res.output
    res = runner.invoke(cli, ["decompress", str(arc), "-o", str(tmp_path / "x[b].safetensors")])
    assert res.exit_code == 0 and "x[b].safetensors" in res.output


def test_error_messages_with_brackets_are_not_markup(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["verify", str(tmp_path / "[/nope].lmgc")])
    assert res.exit_code != 0 and "Traceback" not in res.output and "[/nope].lmgc" in res.output


def test_zstd_chunk_declaring_more_than_its_length_stops_at_once(tmp_path: Path) -> None:
    """A crafted zstd chunk (CRC recomputed) whose frame declares 256 MiB while the index says 4 KB:
    refused after reading 4 KB + 1, not after 256 MiB (issue 21, item 3)."""
    src = tmp_path / "ints.safetensors"
    save_file({"ints": torch.zeros(4096, dtype=torch.float8_e4m3fn)}, str(src))  # 4 KB no model codes: zstd
    arc = tmp_path / "ints.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    with ArchiveReader(arc) as r:
        entry = r.index.chunks[0]
        header = r.header
        index = r.index
    assert entry.codec == 1  # zstd
    from dataclasses import replace

    from lmgc_format.container.writer import ArchiveWriter

    bomb = zstandard.ZstdCompressor().compress(b"\0" * (256 << 20))
    bad = tmp_path / "bomb.lmgc"
    writer = ArchiveWriter(bad, header)
    writer.add_chunk(1, entry.data_offset, entry.data_length, bomb, 0)
    writer.finish(replace(index, chunks=tuple(writer.entries)))
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(CorruptChunkError):
            decode_file(bad, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20  # the frame's 256 MiB were never produced


# -- outputs that are links or devices, checks before the model, messages (issue 21, items 1, 5, 9, 10) --


def test_output_links_are_written_through_and_devices_in_place(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((16, 16), 1)}, str(src))
    real = tmp_path / "real.lmgc"
    real.write_bytes(b"old")
    link = tmp_path / "link.lmgc"
    link.symlink_to(real)
    with pytest.raises(LmgcError, match="already exists"):
        encode_file(src, link, EncodeOptions(level="fast"))
    encode_file(src, link, EncodeOptions(level="fast"), overwrite=True)
    assert link.is_symlink() and os.readlink(link) == str(real)  # the link stays a link
    assert real.read_bytes()[:8] == b"\x89LMGC\r\n\x1a"  # its target got the archive
    dangling = tmp_path / "dangling.lmgc"
    dangling.symlink_to(tmp_path / "nowhere.lmgc")
    with pytest.raises(LmgcError, match="already exists"):  # a link that points nowhere still exists
        encode_file(src, dangling, EncodeOptions(level="fast"))
    assert dangling.is_symlink()
    # /dev/null: written in place, never replaced (decompress -o /dev/null -f for benchmarking)
    res = CliRunner().invoke(cli, ["decompress", str(real), "-o", os.devnull, "-f", "-q"])
    assert res.exit_code == 0, res.output
    assert not Path(os.devnull).is_file() and Path(os.devnull).is_char_device()
    # /dev/stdout is a link to /proc/self/fd/1, a pipe here: written in place, the link left alone
    proc = subprocess.run(
        [sys.executable, "-m", "lmgc_tui", "decompress", str(real), "-o", "/dev/stdout", "-f", "-q"],
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == src.read_bytes() and Path("/dev/stdout").is_symlink()


def test_output_directory_problems_are_found_before_any_work(tmp_path: Path) -> None:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((16, 16), 1)}, str(src))
    res = CliRunner().invoke(cli, ["compress", str(src), "-o", str(tmp_path / "no" / "dir.lmgc"), "--level", "max"])
    assert res.exit_code == 1 and "does not exist" in res.output and "loading model" not in res.output
    (tmp_path / "out.lmgc").write_bytes(b"x")
    res = CliRunner().invoke(cli, ["compress", str(src), "-o", str(tmp_path / "out.lmgc"), "--level", "max"])
    assert res.exit_code == 8 and "loading model" not in res.output
    ints = tmp_path / "ints.safetensors"
    save_file({"i": torch.arange(10)}, str(ints))
    res = CliRunner().invoke(cli, ["compress", str(ints), "--level", "max", "--model", str(tmp_path / "none")])
    assert res.exit_code == 0 and "loading model" not in res.output  # nothing for a model to code


def test_recorded_thread_count_is_checked() -> None:
    from lmgc_format.pipeline.decoder import _recorded_threads

    assert _recorded_threads({"threads": 2}, 7) == 2
    for bad in ("4", 100000, 0, -1, 2.0, None, True):
        assert _recorded_threads({"threads": bad}, 7) == 7
    assert _recorded_threads({}, 7) == 7


def test_messages_say_what_is_wrong(tmp_path: Path, plain_archive: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["compress", str(plain_archive)])
    assert res.exit_code == 3 and "is an lmgc archive" in res.output and "decompress" in res.output
    padded = tmp_path / "padded.lmgc"
    padded.write_bytes(plain_archive.read_bytes() + b"\0" * 100)
    res = runner.invoke(cli, ["verify", str(padded)])
    assert res.exit_code == 4 and "100 bytes of trailing data" in res.output and "truncated" not in res.output
    res = runner.invoke(cli, ["typo.safetensors"])
    assert res.exit_code == 2 and "typo.safetensors: no such file" in res.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 5) + b"{nope")
    res = runner.invoke(cli, ["compress", str(bad)])
    assert res.exit_code == 3 and str(bad) in res.output  # input errors name the file


@pytest.mark.parametrize("raw", [b"\xc1", b"\x91\xc1", b"\x80\x80", b""])
def test_msgpack_errors_never_end_in_an_empty_colon(raw: bytes) -> None:
    from lmgc_format.container.sections import unpack

    with pytest.raises(FormatError) as info:
        unpack(raw, "index")
    assert not str(info.value).rstrip().endswith(":")


@pytest.mark.parametrize(
    ("shape", "window_bytes", "source_size"),
    [
        ([1 << 32], 1, None),  # a 16 GiB F32 tensor in 1-byte windows: billions of chunks
        ([4], 4, 1 << 62),  # a source "size" of 2^62 bytes: a gap of as many plain chunks
    ],
)
def test_crafted_plan_of_billions_of_chunks_is_refused_at_once(
    tmp_path: Path, shape: list[int], window_bytes: int, source_size: int | None
) -> None:
    """A 1 KB archive whose header (CRC recomputed) implies billions of chunks: refused before the
    plan is built, by inspect, verify and decompress alike (issue 21, item 2)."""
    from dataclasses import replace

    from lmgc_format.container.writer import ArchiveWriter

    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((4,), 1)}, str(src))
    arc = tmp_path / "g.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    with ArchiveReader(arc) as r:
        header, index = r.header, r.index
        chunks = [(e, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)]
    nbytes = 4 * shape[0]
    table = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, nbytes]}}).encode()
    crafted = replace(
        header,
        source_header=table,
        source_size=source_size or 8 + len(table) + nbytes,
        layout=replace(header.layout, window_bytes=window_bytes, batch=1, plain_chunk_bytes=1),
    )
    bad = tmp_path / "bad.lmgc"
    writer = ArchiveWriter(bad, crafted)
    for e, payload in chunks:
        writer.add_chunk(e.codec, e.data_offset, e.data_length, payload, e.model_bits)
    writer.finish(replace(index, chunks=tuple(writer.entries)))
    for command in (["inspect", str(bad)], ["verify", str(bad)], ["decompress", str(bad), "-o", str(tmp_path / "o")]):
        t0 = time.monotonic()
        res = CliRunner().invoke(cli, command)
        assert res.exit_code == 4, res.output
        assert "chunks" in res.output
        assert time.monotonic() - t0 < 5
