"""Row lengths of flat vectors (rows.py): found, recorded (header ``rows``, preamble flag 2), checked."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from lmgc_format.container.constants import FLAG_COMPACT, FLAG_ROWS, MAJOR, MINOR
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.container.writer import ArchiveWriter
from lmgc_format.errors import FormatError
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.source import read_layout
from lmgc_format.transforms.rows import candidate_rows, exponent_fields


def flat_matrix(rows: int, cols: int, seed: int) -> np.ndarray:
    """A rank-one-like weight gradient, flattened as federated-learning frameworks send it."""
    rng = np.random.default_rng(seed)
    a = rng.standard_t(3, rows) * 1e-3
    b = rng.standard_t(3, cols)
    m = np.outer(a, b) * (1 + 0.3 * rng.standard_normal((rows, cols)))
    return m.astype(np.float32).reshape(-1)


def test_candidates_find_the_row_length() -> None:
    x = flat_matrix(200, 96, 1)
    assert 96 in candidate_rows(exponent_fields(x.tobytes(), 4))
    noise = np.random.default_rng(2).standard_normal(20000).astype(np.float32)
    assert 96 not in candidate_rows(exponent_fields(noise.tobytes(), 4))
    assert candidate_rows(exponent_fields(x[:1000].tobytes(), 4)) == []  # too short to say
    assert candidate_rows(np.zeros(10000)) == []


def test_flat_vector_is_coded_as_rows_and_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "flat.safetensors"
    x = flat_matrix(300, 96, 3)
    save_file({"flat": x, "small": x[:100].copy()}, str(src))
    arc = tmp_path / "flat.lmgc"
    with_rows = encode_file(src, arc, EncodeOptions(level="fast"))
    with ArchiveReader(arc) as r:
        assert r.header.rows == ((0, 96),)
        assert r.version == (MAJOR, MINOR)
    assert describe_archive(arc)["rows"] == [{"tensor": "flat", "row": 96}]
    out = tmp_path / "out.safetensors"
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()
    # the same matrix coded as a matrix costs about what the flat vector with its rows does
    src2 = tmp_path / "matrix.safetensors"
    save_file({"flat": x.reshape(300, 96), "small": x[:100].copy()}, str(src2))
    as_matrix = encode_file(src2, tmp_path / "m.lmgc", EncodeOptions(level="fast"))
    assert abs(with_rows.coded_bytes - as_matrix.coded_bytes) <= 0.01 * as_matrix.coded_bytes


def _with_rows(archive: Path, rows: list[list[object]], target: Path, flags: int | None = None) -> Path:
    """``archive`` written again with the header's ``rows`` replaced (every CRC and offset right, as a
    crafted file would have them); ``flags`` overrides the preamble's flags."""
    with ArchiveReader(archive) as r:
        header = replace(r.header, rows=tuple(tuple(x) for x in rows))  # type: ignore[misc]
        chunks = [(e, r.read_chunk(i)[1]) for i, e in enumerate(r.index.chunks)]
        index = r.index
    writer = ArchiveWriter(target, header, overwrite=True)
    for e, payload in chunks:
        writer.add_chunk(e.codec, e.data_offset, e.data_length, payload, e.model_bits)
    writer.finish(replace(index, chunks=tuple(writer.entries)))
    if flags is not None:
        raw = bytearray(target.read_bytes())
        raw[12:16] = struct.pack("<I", flags | FLAG_COMPACT)
        target.write_bytes(bytes(raw))
    return target


@pytest.mark.parametrize(
    ("rows", "flags", "message"),
    [
        ([["flat", 96]], 0, "rows flag"),
        ([], FLAG_ROWS, "rows flag"),
        ([["flat", 20000]], None, "cannot have rows"),
        ([["flat", 1]], None, "cannot have rows"),
        ([["steps", 4]], None, "cannot have rows"),  # an integer tensor
        ([[5, 96]], None, "in range"),
        ([["flat", 96], ["flat", 48]], None, "distinct"),
        ([["flat", "96"]], None, "integer pairs"),
    ],
)
def test_reader_checks_rows(tmp_path: Path, rows: list[list[object]], flags: int | None, message: str) -> None:
    src = tmp_path / "flat.safetensors"
    save_file({"flat": flat_matrix(300, 96, 3), "steps": np.arange(9, dtype=np.int64)}, str(src))
    arc = tmp_path / "flat.lmgc"
    encode_file(src, arc, EncodeOptions(level="fast"))
    index = {t.name: i for i, t in enumerate(read_layout(src).tensors)}
    good = _with_rows(arc, [[index["flat"], 96]], tmp_path / "good.lmgc")
    decode_file(good, tmp_path / "good.safetensors")  # the rewriting itself keeps a valid archive
    named = [[index.get(t, t) if isinstance(t, str) else t, row] for t, row in rows]
    bad = _with_rows(arc, named, tmp_path / "bad.lmgc", flags)
    with pytest.raises(FormatError, match=message):
        ArchiveReader(bad)
