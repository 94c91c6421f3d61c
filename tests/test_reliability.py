"""No wrong bytes, no crash: hostile safetensors, malformed archives, damage and salvage.

The environment and messages are tests/test_reliability_env.py."""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
import torch
import zstandard
from click.testing import CliRunner
from safetensors.torch import load_file

from lmgc_format.container import compact
from lmgc_format.container.constants import FLAG_COMPACT, PREAMBLE_SIZE
from lmgc_format.container.fixed import Preamble
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import CorruptChunkError, FormatError, InputError
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.pipeline.salvage import salvage_file
from lmgc_tui.cli import cli
from tests.conformance import index_of, with_index  # the index rewritten, its CRC and tail right

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


def with_header(archive: bytes, header_plain: bytes) -> bytes:
    """Replace the header by ``header_plain`` (msgpack), zstd-framed, with a valid CRC."""
    old = Preamble.unpack(archive[:PREAMBLE_SIZE])
    body = bytes([compact.ZSTD]) + zstandard.ZstdCompressor().compress(header_plain)
    pre = Preamble(old.major, old.minor, len(body), zlib.crc32(body), old.flags).pack()
    return pre + body + archive[PREAMBLE_SIZE + old.header_len :]


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
