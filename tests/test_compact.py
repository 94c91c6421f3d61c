"""Format 1.4: the compact layout, stored archives, and what an archive costs beyond its coded data."""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lmgc_format.container.constants import FLAG_COMPACT, FLAG_FILTERS, FLAG_STORED, STORED_OVERHEAD
from lmgc_format.container.fixed import Preamble
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import FormatError
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import STORE_BELOW, EncodeOptions, encode_file
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"

FAST = EncodeOptions(level="fast", threads=1)


def _roundtrip(src: Path, tmp_path: Path, opts: EncodeOptions = FAST) -> Path:
    arc = tmp_path / (src.name + ".lmgc")
    encode_file(src, arc, opts, overwrite=True)
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, overwrite=True)
    assert out.read_bytes() == src.read_bytes()
    return arc


def _gradient_file(path: Path, tensors: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arrays = {}
    for i in range(tensors):
        shape = (16, 24) if i % 2 == 0 else (16,)
        arrays[f"layers.{i // 2}.{'weight' if i % 2 == 0 else 'bias'}"] = (rng.standard_t(4, shape) * 1e-3).astype(
            np.float32
        )
    save_file(arrays, str(path))
    return path


def test_golden_compact_decodes_and_carries_what_the_1_3_archive_carried(tmp_path: Path) -> None:
    """The same file, same chunks, in both layouts: every record a decoder needs survives compaction."""
    arc = DATA / "golden_compact.safetensors.lmgc"
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == (DATA / "golden_fast.safetensors").read_bytes()
    with ArchiveReader(arc) as new, ArchiveReader(DATA / "golden_fast.safetensors.lmgc") as old:
        assert new.version == (1, 4) and new.flags == FLAG_COMPACT | FLAG_FILTERS and new.head_size == 0
        assert old.version == (1, 3) and old.head_size == 44
        keep = {"created_by": "", "runtime": {}, "coder": {}}  # only for people, or for LM chunks
        assert dataclasses.replace(new.header, **keep) == dataclasses.replace(old.header, **keep)
        assert new.plan == old.plan and new.filters == old.filters
        assert [new.read_chunk(i)[1] for i in range(len(new.plan))] == [
            old.read_chunk(i)[1] for i in range(len(old.plan))
        ]
        assert new.index.sha256 == old.index.sha256[:8]
        assert new.overhead < 400 < old.overhead


def test_golden_stored_is_the_file_after_a_preamble(tmp_path: Path) -> None:
    src, arc = DATA / "golden_stored.safetensors", DATA / "golden_stored.safetensors.lmgc"
    raw = arc.read_bytes()
    pre = Preamble.unpack(raw[:24])
    assert (pre.major, pre.minor, pre.flags, pre.header_len) == (1, 4, FLAG_STORED, 0)
    assert raw[24:] == src.read_bytes() and pre.header_crc == zlib.crc32(src.read_bytes())
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()
    info = describe_archive(arc)
    assert info["stored"] and info["overhead"]["total"] == STORED_OVERHEAD and info["portable"]
    assert [t["name"] for t in info["tensors"]] == ["g"]


def test_damaged_stored_archive_is_refused(tmp_path: Path) -> None:
    raw = bytearray((DATA / "golden_stored.safetensors.lmgc").read_bytes())
    raw[-3] ^= 0x20
    bad = tmp_path / "bad.lmgc"
    bad.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="damaged"):
        ArchiveReader(bad)
    bad.write_bytes(bytes(raw[:40]))
    with pytest.raises(FormatError):
        ArchiveReader(bad)


def test_fixed_overhead_is_under_150_bytes_for_ten_tensors(tmp_path: Path) -> None:
    """Issue 24's target: everything but the coded data and the tensor table itself."""
    arc = _roundtrip(_gradient_file(tmp_path / "g.safetensors", 10), tmp_path)
    info = describe_archive(arc)
    o = info["overhead"]
    assert not info["stored"]
    assert o["total"] == sum(v for k, v in o.items() if k not in ("total", "tensor_table"))
    assert o["frame_heads"] == 0 and o["footer"] == 12
    assert o["total"] - o["tensor_table"] < 150, o
    # a few bytes per tensor beyond that
    arc40 = _roundtrip(_gradient_file(tmp_path / "g40.safetensors", 40), tmp_path)
    o40 = describe_archive(arc40)["overhead"]
    assert (o40["total"] - o40["tensor_table"]) - (o["total"] - o["tensor_table"]) < 30 * 6


@pytest.mark.parametrize("nbytes", [0, 4, 40, 400, 4000, 40_000])
def test_worst_case_expansion_is_the_preamble(tmp_path: Path, nbytes: int) -> None:
    """Random bytes in float tensors: nothing compresses them, the archive is the file plus 24 bytes."""
    rng = np.random.default_rng(nbytes)
    src = tmp_path / "noise.safetensors"
    save_file({"noise": rng.integers(0, 256, nbytes, dtype=np.uint8).view(np.float32)}, str(src))
    arc = _roundtrip(src, tmp_path)
    assert arc.stat().st_size <= src.stat().st_size + STORED_OVERHEAD


def test_files_below_the_threshold_are_stored_without_a_model(tmp_path: Path) -> None:
    src = tmp_path / "t.safetensors"
    save_file({"a": np.zeros(3, np.float32)}, str(src))
    assert src.stat().st_size < STORE_BELOW
    # no model could even be loaded from this name: storing must not try
    arc = _roundtrip(src, tmp_path, EncodeOptions(level="max", model="/nonexistent/model"))
    assert arc.stat().st_size == src.stat().st_size + STORED_OVERHEAD


def test_non_canonical_safetensors_header_is_kept_verbatim(tmp_path: Path) -> None:
    """A header safetensors' writer would not produce (keys out of order, spaces, a gap, trailing bytes)
    is stored as JSON, and the file still comes back byte for byte."""
    values = (np.arange(64, dtype=np.float32) * 1e-3).tobytes()
    header = {
        "w": {"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 128]},
        "__metadata__": {"k": "v"},
        "b": {"dtype": "F32", "shape": [8], "data_offsets": [136, 168]},
    }
    text = json.dumps(header, indent=1).encode()
    text += b" " * (-len(text) % 8)
    src = tmp_path / "odd.safetensors"
    src.write_bytes(struct.pack("<Q", len(text)) + text + values[:128] + b"\x00" * 8 + values[128:160] + b"tail")
    arc = _roundtrip(src, tmp_path)
    with ArchiveReader(arc) as r:
        assert r.header.source_header == text


def test_canonical_header_is_rebuilt_not_stored(tmp_path: Path) -> None:
    src = _gradient_file(tmp_path / "g.safetensors", 4)
    arc = _roundtrip(src, tmp_path)
    info = describe_archive(arc)
    json_len = struct.unpack("<Q", src.read_bytes()[:8])[0]
    assert info["overhead"]["tensor_table"] < json_len / 2


def test_lm_block_is_written_small_and_read_back_whole() -> None:
    """An LM header (golden_top4's) in the compact layout: binary digests, the usual coder left out; the
    record that comes back is the same."""
    from lmgc_format.container import compact
    from lmgc_format.container.constants import LM_CODER
    from lmgc_format.lm.coder import CODER_NAME, QUANT_BITS

    assert (LM_CODER["name"], LM_CODER["quant_bits"]) == (CODER_NAME, QUANT_BITS)
    with ArchiveReader(DATA / "golden_top4.safetensors.lmgc") as r:
        header = r.header
    assert header.coder == LM_CODER
    raw = compact.header_to_bytes(header)
    assert compact.header_from_bytes(raw) == header
    obj = compact.header_obj(header)
    assert "coder" not in obj["lm"] and len(obj["lm"]["model"]["sha256"]) == 32
    other = dataclasses.replace(header, coder={"name": "x"})
    assert compact.header_from_bytes(compact.header_to_bytes(other)).coder == {"name": "x"}
    assert header.alphabet is not None and header.alphabet.rule is None  # a 1.2 archive: no rule recorded
    ruled = dataclasses.replace(header, alphabet=dataclasses.replace(header.alphabet, rule="ordinary-first"))
    back = compact.header_from_bytes(compact.header_to_bytes(ruled))
    assert back.alphabet is not None and back.alphabet.rule == "ordinary-first"
