"""The previous step as context (``--reference``, transforms/reference.py): tensors paired by name, shape
and dtype are coded as differences from the reference where that is smaller; the archive records the reference's
SHA-256 and a decoder refuses, before writing anything, without the same file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import lmgc
from lmgc_format.container.constants import FLAG_REFERENCE
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import FormatError, ReferenceMismatchError
from lmgc_format.inspect import describe_archive
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_tui.cli import cli
from tests.conftest import ROOT, gradient_like, other_machine_env

DATA = ROOT / "tests" / "data"
GOLDEN, GOLDEN_REF = DATA / "golden_reference.safetensors", DATA / "golden_reference_ref.safetensors"


def test_golden_reference_decodes_everywhere(tmp_path: Path) -> None:
    """Integer arithmetic only: decodes on every machine, here and as another machine."""
    arc = DATA / "golden_reference.safetensors.lmgc"
    with ArchiveReader(arc) as r:
        assert [r.tensors[i].name for i in r.header.reference_tensors] == ["fc.weight", "emb"]
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(reference=str(GOLDEN_REF)))
    assert out.read_bytes() == GOLDEN.read_bytes()
    code = (
        "import sys; from lmgc_format.pipeline.decoder import DecodeOptions, decode_file; "
        "decode_file(sys.argv[1], sys.argv[2], DecodeOptions(fast_threads=1, reference=sys.argv[3]))"
    )
    other = tmp_path / "other.safetensors"
    env = other_machine_env(tmp_path)
    subprocess.run([sys.executable, "-c", code, str(arc), str(other), str(GOLDEN_REF)], check=True, env=env, cwd=ROOT)
    assert hashlib.sha256(other.read_bytes()).digest() == hashlib.sha256(GOLDEN.read_bytes()).digest()


def test_golden_reference_is_what_this_machine_writes(tmp_path: Path) -> None:
    arc = tmp_path / "again.lmgc"
    encode_file(GOLDEN, arc, EncodeOptions(level="fast", threads=1, reference=str(GOLDEN_REF)))
    with ArchiveReader(arc) as now, ArchiveReader(DATA / "golden_reference.safetensors.lmgc") as then:
        assert now.header.reference_tensors == then.header.reference_tensors
        assert now.header.reference_sha256 == then.header.reference_sha256
        assert [e.codec for e in now.index.chunks] == [e.codec for e in then.index.chunks]
        for i in range(len(now.plan)):
            assert now.read_chunk(i)[1] == then.read_chunk(i)[1], i


def test_weights_a_step_apart_shrink_and_a_gradient_is_left_alone(tmp_path: Path) -> None:
    alone = tmp_path / "alone.lmgc"
    encode_file(GOLDEN, alone, EncodeOptions(level="fast"))
    with_ref = DATA / "golden_reference.safetensors.lmgc"
    assert with_ref.stat().st_size < 0.85 * alone.stat().st_size
    with ArchiveReader(with_ref) as r:
        assert "grad" not in [r.tensors[i].name for i in r.header.reference_tensors]


def test_without_the_right_reference_nothing_is_written(tmp_path: Path) -> None:
    arc = DATA / "golden_reference.safetensors.lmgc"
    out = tmp_path / "out.safetensors"
    with pytest.raises(ReferenceMismatchError, match="coded against a reference"):
        decode_file(arc, out)
    with pytest.raises(ReferenceMismatchError, match="is not the reference"):
        decode_file(arc, out, DecodeOptions(reference=str(GOLDEN)))  # shares names and shapes, not bytes
    lacking = tmp_path / "lacking.safetensors"
    save_file({"grad": gradient_like((64, 64), 21)}, str(lacking))
    with pytest.raises(ReferenceMismatchError, match=r"no tensor 'fc\.weight' of shape \[96, 64\]"):
        decode_file(arc, out, DecodeOptions(reference=str(lacking)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lacking.safetensors"]


def test_command_line_round_trip_and_inspect(tmp_path: Path) -> None:
    arc, out = tmp_path / "g.lmgc", tmp_path / "g.safetensors"
    run = CliRunner().invoke
    res = run(cli, ["compress", str(GOLDEN), "-o", str(arc), "--level", "fast", "--reference", str(GOLDEN_REF), "-q"])
    assert res.exit_code == 0, res.output
    res = run(cli, ["verify", str(arc), "-q"])
    assert res.exit_code == 7 and "--reference" in res.output
    assert run(cli, ["verify", str(arc), "--reference", str(GOLDEN_REF), "-q"]).exit_code == 0
    res = run(cli, ["decompress", str(arc), "-o", str(out), "--reference", str(GOLDEN_REF), "-q"])
    assert res.exit_code == 0 and out.read_bytes() == GOLDEN.read_bytes()
    info = describe_archive(arc)
    assert info["reference"]["tensors"] == ["fc.weight", "emb"]
    assert "reference" in run(cli, ["inspect", str(arc)]).output


def test_python_reference_as_tensors_or_a_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    old = {"w": torch.from_numpy(rng.standard_normal((128, 64)).astype(np.float32))}
    new = {"w": old["w"] - 1e-3 * torch.sign(torch.from_numpy(rng.standard_normal((128, 64)).astype(np.float32)))}
    plain = lmgc.compress(new, level="fast")
    blob = lmgc.compress(new, level="fast", reference=old)
    assert len(blob) < 0.9 * len(plain)
    assert torch.equal(lmgc.decompress(blob, framework="pt", reference=old)["w"], new["w"])
    save_file(old, str(tmp_path / "old.safetensors"))
    assert torch.equal(lmgc.decompress(blob, framework="pt", reference=tmp_path / "old.safetensors")["w"], new["w"])
    with pytest.raises(ReferenceMismatchError):
        lmgc.decompress(blob)


def test_the_reference_flag_and_header_must_agree(tmp_path: Path) -> None:
    raw = bytearray((DATA / "golden_reference.safetensors.lmgc").read_bytes())
    flags = int.from_bytes(raw[12:16], "little")
    raw[12:16] = (flags & ~FLAG_REFERENCE).to_bytes(4, "little")  # the flag is not under the header's CRC
    bad = tmp_path / "bad.lmgc"
    bad.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="reference flag"):
        ArchiveReader(bad).close()
    raw[12:16] = flags.to_bytes(4, "little")
    raw[10:12] = (5).to_bytes(2, "little")  # a 1.5 archive cannot have a reference
    bad.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="reference flag"):
        ArchiveReader(bad).close()


def test_bench_reference_puts_zipnn_s_delta_method_beside_lmgc() -> None:
    args = ["bench", str(GOLDEN), "--reference", str(GOLDEN_REF), "--levels", "fast", "--codecs", "zstd -19", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    rows = {r["codec"]: r for r in json.loads(res.output[res.output.index("[") :])[0]["results"]}
    assert rows["lmgc fast"]["roundtrip"] and rows["XOR+zstd -19"]["roundtrip"]
    assert rows["lmgc fast"]["size"] < rows["XOR+zstd -19"]["size"]
