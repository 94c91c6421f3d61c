"""The strict reader (lmgc_format/container/strict.py, docs/FORMAT.md "What a reader refuses"): every case of
the conformance corpus (tests/conformance.py) is refused with its exact one-line error, by the library and
on the command line, leaving nothing behind; what lmgc <= 0.15 wrote still reads; everything lmgc writes
now passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from lmgc_format.container import constants
from lmgc_format.container.constants import Codec
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import FormatError, LmgcError
from lmgc_format.events import Notice
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_tui.cli import cli
from tests import conformance
from tests.conftest import ROOT, gradient_like

DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> dict[str, Path]:
    return conformance.make_bases(tmp_path_factory.mktemp("bases"), tiny_model)


def test_the_bases_are_valid_and_have_what_the_cases_edit(bases: dict[str, Path], tiny_model: str) -> None:
    """Each base decodes as it is, so a refusal below comes from the one edit."""
    for name, base in bases.items():
        decode_file(base, None, DecodeOptions(model=tiny_model))
        with ArchiveReader(base) as r:
            codecs = {e.codec for e in r.index.chunks}
            assert r.version == (constants.MAJOR, constants.MINOR)
        assert {
            "fast": Codec.CM_FAST2 in codecs,
            "fast1": Codec.CM_FAST in codecs,
            "quick": Codec.QUICK in codecs and Codec.CM_FAST not in codecs,
            "ints": Codec.CM_FAST not in codecs,
            "lm": Codec.LM in codecs,
        }[name]


@pytest.mark.parametrize("case", conformance.CASES, ids=[c.name for c in conformance.CASES])
def test_each_conformance_case_is_refused_with_its_error(
    case: conformance.Case, bases: dict[str, Path], tiny_model: str, tmp_path: Path
) -> None:
    crafted, error = conformance.build(case, bases[case.base])
    path = tmp_path / "crafted.lmgc"
    path.write_bytes(crafted)
    out = tmp_path / "out.safetensors"
    with pytest.raises(LmgcError) as caught:
        decode_file(path, out, DecodeOptions(model=tiny_model))
    assert str(caught.value) == error
    assert not out.exists()
    res = CliRunner().invoke(cli, ["decompress", str(path), "-o", str(out), "--model", tiny_model])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "\x1b" not in res.output and error.split(" (")[0].split(": ")[-1][:30] in res.output.replace("\n", " ")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["crafted.lmgc"]


def decodes_to_its_base(case: conformance.Case, base: Path, tmp_path: Path) -> bool:
    """Whether ``case``'s archive, crafted from ``base``, decodes to the file ``base`` was made from."""
    crafted, _ = conformance.build(case, base)
    path, out = tmp_path / f"{case.name}.lmgc", tmp_path / "out.safetensors"
    path.write_bytes(crafted)
    decode_file(path, out)
    return out.read_bytes() == base.with_suffix(".safetensors").read_bytes()


def test_the_relabelled_zstd_chunk_decodes_when_its_frame_is_right(bases: dict[str, Path], tmp_path: Path) -> None:
    """The zstd cases' control: the same chunk as one well-formed frame decodes to the original."""
    case = conformance.Case("control", "fast", conformance.zstd_chunk(conformance._zstd), "")
    assert decodes_to_its_base(case, bases["fast"], tmp_path)


def test_what_lmgc_0_15_wrote_for_files_without_floats_still_reads(bases: dict[str, Path], tmp_path: Path) -> None:
    """An LM level run on integers only recorded 'lockstep-kv-v1' and no model: read in a 1.5 archive (the
    same in 1.6 is a conformance case)."""
    case = conformance.Case("legacy", "ints", conformance.set_minor(5), "")
    assert decodes_to_its_base(case, bases["ints"], tmp_path)


@pytest.mark.parametrize("golden", sorted(p.name for p in DATA.glob("golden_*.lmgc")))
def test_every_golden_passes_the_strict_reader(golden: str) -> None:
    with ArchiveReader(DATA / golden) as r:
        assert r.plan


def test_every_level_writes_what_the_strict_reader_reads(tiny_model: str, tmp_path: Path) -> None:
    """fast, max (the LM's chunks kept), auto, stored, and the two forms that once broke the rules: the LM
    level on integers only, and an LM level that lost every chunk to zstd."""
    src = tmp_path / "mixed.safetensors"
    save_file({"w": gradient_like((8, 40), 3), "n": torch.arange(300, dtype=torch.int32)}, str(src))
    ints = tmp_path / "ints.safetensors"
    save_file({"n": torch.arange(3000, dtype=torch.int32) % 7}, str(ints))
    zeros = tmp_path / "zeros.safetensors"
    save_file({"z": torch.zeros(4096)}, str(zeros))
    tiny = tmp_path / "tiny.safetensors"
    save_file({"t": torch.ones(3)}, str(tiny))
    runs = [
        (src, EncodeOptions(level="fast"), "cm-fast-v2"),
        (src, EncodeOptions(level="max", model=tiny_model, fallback=False), None),
        (src, EncodeOptions(level="auto", model=tiny_model), None),
        (ints, EncodeOptions(level="max", model=tiny_model), "cm-fast-v1"),
        (zeros, EncodeOptions(level="max", model=tiny_model), "cm-fast-v1"),
        (tiny, EncodeOptions(level="max", model=tiny_model), "stored"),
    ]
    for i, (file, opts, procedure) in enumerate(runs):
        arc = tmp_path / f"{i}.lmgc"
        events: list[object] = []
        result = encode_file(file, arc, opts, on_event=events.append)
        notices = [e.message for e in events if isinstance(e, Notice)]
        with ArchiveReader(arc) as r:
            if procedure is not None:
                assert r.header.layout.procedure == procedure, (i, r.header.layout.procedure)
            if procedure in ("cm-fast-v1", "cm-fast-v2"):
                assert r.header.model is None and r.index.tokens == 0
        decode_file(arc, tmp_path / f"{i}.out", DecodeOptions(model=tiny_model))
        assert (tmp_path / f"{i}.out").read_bytes() == file.read_bytes()
        if file == zeros:  # the LM ran and lost: said, and no LM speed reported for an archive it did not make
            assert result.tokens == 0 and any("names no model" in n for n in notices)


def test_the_container_knows_the_model_records_lm_uses() -> None:
    """strict.py checks model kinds, dtypes and alphabet rules against constants.py's lists (the container
    cannot import lm/): they must be lm's own."""
    from lmgc_format.lm import alphabet, models

    assert set(constants.MODEL_DTYPES) == set(models.DTYPES)
    assert set(constants.ALPHABET_RULES) == set(alphabet.RULES)
    kinds = set()
    for line in Path(models.__file__).read_text().splitlines():
        if "ModelSource(name, " in line:
            kinds.add(line.split("ModelSource(name, ")[1].split(",")[0].strip('"'))
    assert kinds == set(constants.MODEL_KINDS)


def test_a_legacy_lm_archive_that_lost_every_chunk_still_reads(tiny_model: str, tmp_path: Path) -> None:
    """lmgc <= 0.15 kept the model record and token count of an LM level that lost every chunk: a 1.5
    archive of that form reads; the same in 1.6 is refused."""
    from lmgc_format.container.header import Index
    from lmgc_format.container.writer import ArchiveWriter

    zeros = tmp_path / "zeros.safetensors"
    save_file({"z": torch.zeros(2048)}, str(zeros))
    lm = tmp_path / "lm.lmgc"
    encode_file(zeros, lm, EncodeOptions(level="max", model=tiny_model, fallback=False))
    with ArchiveReader(lm) as r:
        header, index = r.header, r.index
        payloads = [r.read_chunk(i)[1] for i in range(len(r.plan))]
    import zstandard

    legacy = tmp_path / "legacy.lmgc"
    writer = ArchiveWriter(legacy, header, overwrite=True)
    for e, payload in zip(index.chunks, payloads, strict=True):
        if e.codec == Codec.LM:  # what the old encoder kept: zstd, with the LM's model bits
            data = np.zeros(e.data_length, np.uint8).tobytes()
            writer.add_chunk(
                Codec.ZSTD, e.data_offset, e.data_length, zstandard.ZstdCompressor().compress(data), e.model_bits
            )
        else:
            writer.add_chunk(e.codec, e.data_offset, e.data_length, payload, e.model_bits)
    bits = (8.0 * sum(e.payload_length for e in writer.entries),)  # one tensor: every payload is its
    writer.finish(Index(tuple(writer.entries), bits, index.tensor_model_bits, 0.0, index.sha256, index.tokens, 0.0))
    with pytest.raises(FormatError, match=r"header\.lm: names model"):
        ArchiveReader(legacy).close()
    raw = bytearray(legacy.read_bytes())
    raw[10:12] = (5).to_bytes(2, "little")  # the preamble's minor version (not under any CRC)
    legacy.write_bytes(bytes(raw))
    out = tmp_path / "out.safetensors"
    decode_file(legacy, out)  # no model needed: no chunk is LM-coded
    assert out.read_bytes() == zeros.read_bytes()
