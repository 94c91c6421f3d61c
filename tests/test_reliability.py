"""No wrong bytes, no crash: hostile inputs, malformed archives, damage, interruptions, disk full."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
import torch
import zstandard
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from lmgc_format import atomic
from lmgc_format.container import compact
from lmgc_format.container.constants import FLAG_COMPACT, PREAMBLE_SIZE, TAIL_SIZE
from lmgc_format.container.fixed import Preamble, Tail
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.decoder import decode_file
from lmgc_format.encoder import EncodeOptions, encode_file
from lmgc_format.errors import CorruptChunkError, FormatError, InputError, LmgcError, ModelMismatchError
from lmgc_format.salvage import salvage_file
from lmgc_tui.cli import cli
from tests.conftest import ROOT, gradient_like

# -- hostile safetensors: rejected before any model is loaded ------------------------------------


def st_file(path: Path, header: bytes, data: bytes = b"", declared: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if declared is None else declared) + header + data)
    return path


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()


HOSTILE = {
    "header past end": (js({}), b"", 10_000, "runs past the end"),
    "huge header": (js({}), b"", 1 << 40, "exceeds the cap"),
    "not utf-8": (b'{"\xff\xfe": 1}', b"", None, "not UTF-8"),
    "not json": (b"{nope", b"", None, "not valid JSON"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, b"", None, "nested too deeply"),
    "not an object": (js([1, 2]), b"", None, "not a JSON object"),
    "duplicate names": (b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{}}', b"\0" * 4, None, "twice"),
    "unknown dtype": (js({"a": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}}), b"\0" * 4, None, "dtype"),
    "negative dim": (js({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}), b"\0" * 4, None, "shape"),
    "out of range": (js({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}), b"\0" * 4, None, "outside"),
    "negative offset": (js({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}), b"\0" * 4, None, "outside"),
    "size mismatch": (js({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}), b"\0" * 8, None, "needs 12"),
    "overlap": (
        js(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            }
        ),
        b"\0" * 12,
        None,
        "overlap",
    ),
    "bad metadata": (js({"__metadata__": {"k": 1}}), b"", None, "__metadata__"),
    # Python refuses to turn more than 4,300 digits into an int (a ValueError, once a traceback)
    "5000-digit number": (
        b'{"a":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,4]}}',
        b"\0" * 4,
        None,
        "5000-digit number",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_safetensors_is_rejected_before_any_lm_work(tmp_path: Path, case: str) -> None:
    header, data, declared, message = HOSTILE[case]
    src = st_file(tmp_path / "bad.safetensors", header, data, declared)
    target = tmp_path / "bad.lmgc"
    # a model path that does not exist: reaching the model would raise ModelError, not InputError
    with pytest.raises(InputError, match=message):
        encode_file(src, target, EncodeOptions(model=str(tmp_path / "no-model")))
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.safetensors"]


def test_hostile_input_is_one_line_and_exit_3_on_the_command_line(tmp_path: Path) -> None:
    src = st_file(tmp_path / "bad.safetensors", b"{nope")
    res = CliRunner().invoke(cli, ["compress", str(src), "-q"])
    assert res.exit_code == 3
    assert "not valid JSON" in res.output and "Traceback" not in res.output


# -- malformed archives ----------------------------------------------------------------------------


@pytest.fixture
def plain_archive(tmp_path: Path) -> Path:
    """Integer tensors only (no model, fast), several chunks."""
    src = tmp_path / "ints.safetensors"
    save_file(
        {
            "a": torch.arange(300, dtype=torch.int32),
            "b": torch.ones(10, dtype=torch.int64),
            "c": torch.zeros(70, dtype=torch.int16),
        },
        str(src),
    )
    arc = tmp_path / "ints.lmgc"
    encode_file(src, arc, EncodeOptions(plain_chunk_bytes=256, model=None))
    return arc


def with_header(archive: bytes, header_plain: bytes) -> bytes:
    """Replace the header by ``header_plain`` (msgpack), zstd-framed, with a valid CRC."""
    old = Preamble.unpack(archive[:PREAMBLE_SIZE])
    body = bytes([compact.ZSTD]) + zstandard.ZstdCompressor().compress(header_plain)
    pre = Preamble(old.major, old.minor, len(body), zlib.crc32(body), old.flags).pack()
    return pre + body + archive[PREAMBLE_SIZE + old.header_len :]


def with_index(archive: bytes, index_obj: dict[str, Any]) -> bytes:
    """Replace the index, with valid CRC and tail: only the semantics are wrong."""
    tail = Tail.unpack(archive[-TAIL_SIZE:])
    raw = msgpack.packb(index_obj, use_bin_type=True)
    return archive[: len(archive) - TAIL_SIZE - tail.index_len] + raw + Tail(len(raw), zlib.crc32(raw)).pack()


def index_of(archive: bytes) -> dict[str, Any]:
    tail = Tail.unpack(archive[-TAIL_SIZE:])
    return msgpack.unpackb(archive[len(archive) - TAIL_SIZE - tail.index_len : -TAIL_SIZE], raw=False)


def nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"  # fixarray of one element, `depth` times, then nil


BOMBS = {
    "deep nesting": lambda a: with_header(a, b"\x81\xa1x" + nested(100_000)),
    "huge declared map": lambda a: with_header(a, b"\xdf\xff\xff\xff\xff"),
    "huge declared bin": lambda a: with_header(a, b"\x81\xa1x\xc6\x7f\xff\xff\xff"),
    "enormous map": lambda a: with_header(a, msgpack.packb({f"k{i}": i for i in range(70_000)}, use_bin_type=True)),
    "int keys": lambda a: with_header(a, msgpack.packb({1: 2}, use_bin_type=True)),
    "ext type": lambda a: with_header(a, b"\x81\xa1x\xd4\x01\x00"),
    "header not zstd": lambda a: (
        Preamble(1, 4, 5, zlib.crc32(b"\x01abcd"), FLAG_COMPACT).pack()
        + b"\x01abcd"
        + a[PREAMBLE_SIZE + Preamble.unpack(a[:24]).header_len :]
    ),
    "header of an unknown encoding": lambda a: (
        Preamble(1, 4, 4, zlib.crc32(b"abcd"), FLAG_COMPACT).pack()
        + b"abcd"
        + a[PREAMBLE_SIZE + Preamble.unpack(a[:24]).header_len :]
    ),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_msgpack_bombs_are_format_errors_quickly(plain_archive: Path, tmp_path: Path, bomb: str) -> None:
    bad = tmp_path / "bomb.lmgc"
    bad.write_bytes(BOMBS[bomb](plain_archive.read_bytes()))
    t0 = time.monotonic()
    with pytest.raises(FormatError):
        ArchiveReader(bad)
    assert time.monotonic() - t0 < 5


def test_index_that_disagrees_with_the_frames_is_refused(plain_archive: Path, tmp_path: Path) -> None:
    raw = plain_archive.read_bytes()
    cases = {}
    idx = index_of(raw)
    idx["c"][4 + 1] += 1  # chunk 1's payload length: the payloads no longer end where the index begins
    cases["moved frame"] = with_index(raw, idx)
    idx = index_of(raw)
    idx["c"][0] = 99  # a codec no version defines
    cases["unknown codec"] = with_index(raw, idx)
    idx = index_of(raw)
    idx["c"][1] = 2**63  # overflowing length
    cases["overflow"] = with_index(raw, idx)
    idx = index_of(raw)
    del idx["c"][-4:]
    cases["missing chunk"] = with_index(raw, idx)
    idx = index_of(raw)
    del idx["c"][-1]
    cases["partial entry"] = with_index(raw, idx)
    idx = index_of(raw)
    idx["b"].pop()
    cases["tensor bits"] = with_index(raw, idx)
    idx = index_of(raw)
    idx["h"] = b"\0" * 5
    cases["short digest"] = with_index(raw, idx)
    for name, data in cases.items():
        bad = tmp_path / f"{name}.lmgc"
        bad.write_bytes(data)
        with pytest.raises(FormatError):
            ArchiveReader(bad)


def test_negative_length_in_the_index_is_refused(plain_archive: Path, tmp_path: Path) -> None:
    raw = plain_archive.read_bytes()
    idx = index_of(raw)
    idx["c"][1] = -1
    bad = tmp_path / "neg.lmgc"
    bad.write_bytes(with_index(raw, idx))
    with pytest.raises(FormatError):
        ArchiveReader(bad)


# -- corruption and salvage ---------------------------------------------------------------------------


def flip_payload(archive: Path, chunk: int, out: Path) -> None:
    with ArchiveReader(archive) as r:
        at = r.payload_offset(chunk) + r.index.chunks[chunk].payload_length // 2
    data = bytearray(archive.read_bytes())
    data[at] ^= 0x04
    out.write_bytes(bytes(data))


def test_damage_is_named_decompress_refuses_and_salvage_keeps_the_rest(plain_archive: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.lmgc"
    flip_payload(plain_archive, 0, bad)  # chunk 0 holds tensor "b" (safetensors puts the int64 first)
    out = tmp_path / "out.safetensors"
    with pytest.raises(CorruptChunkError, match=r"chunk 0 \(tensor b, bytes 0\.\.80\) is damaged"):
        decode_file(bad, out)
    assert not out.exists()
    res = CliRunner().invoke(cli, ["verify", str(bad)])
    assert res.exit_code == 5 and "chunk 0" in res.output
    saved = tmp_path / "saved.safetensors"
    result = salvage_file(bad, saved)
    assert [t.name for t in result.lost] == ["b"] and "chunk 0" in result.lost[0].reason
    assert set(result.kept) == {"a", "c"}
    got = load_file(str(saved))
    assert torch.equal(got["a"], torch.arange(300, dtype=torch.int32))
    assert torch.equal(got["c"], torch.zeros(70, dtype=torch.int16))
    res = CliRunner().invoke(cli, ["decompress", str(bad), "--salvage", "-o", str(tmp_path / "cli.safetensors")])
    assert res.exit_code == 5 and "lost: b" in res.output
    res = CliRunner().invoke(cli, ["decompress", str(bad), "--salvage"])  # default name beside the archive
    assert res.exit_code == 5 and (tmp_path / "bad.salvaged.safetensors").exists()


def test_salvage_of_an_intact_archive_keeps_everything(plain_archive: Path, tmp_path: Path) -> None:
    result = salvage_file(plain_archive, tmp_path / "all.safetensors")
    assert not result.lost and set(result.kept) == {"a", "b", "c"}


# -- wrong environment ---------------------------------------------------------------------------------


def test_other_dtype_is_refused_with_what_differs(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    # fallback off: the random tiny model loses to zstd, and an archive without LM chunks needs no model
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32, dtype="bfloat16", fallback=False))
    from lmgc_format.models import get

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
    save_file({"ints": torch.zeros(1024, dtype=torch.int32)}, str(src))
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
    from lmgc_format.decoder import _recorded_threads

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
