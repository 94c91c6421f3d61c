"""Property-based tests: the reader on random and mutated archives, round trips on random tensors.

The reader must end every input with either a valid archive or one ``LmgcError``;
every round trip must give back the input byte for byte. ``scripts/fuzz.py`` runs the
same properties for as long as one likes; the corpus it keeps is replayed here.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import LmgcError
from lmgc_format.pipeline.decoder import decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.source import read_layout
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "data" / "fuzz"
SEED_ARCHIVE = ROOT / "tests" / "data" / "golden_ints.safetensors.lmgc"

fuzz_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def read_or_reject(path: Path) -> None:
    """The property: a valid archive that decodes, or one clean LmgcError."""
    try:
        with ArchiveReader(path) as r:
            for plan in r.plan:
                r.read_chunk(plan.index)
    except LmgcError:
        return


@fuzz_settings
@given(data=st.binary(max_size=4096))
def test_reader_on_random_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("rnd") / "x.lmgc"
    path.write_bytes(data)
    read_or_reject(path)


@fuzz_settings
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=1 << 20), st.integers(min_value=0, max_value=255)),
        min_size=1,
        max_size=8,
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=1 << 20)),
)
def test_reader_on_mutated_archives(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, int]], cut: int | None
) -> None:
    raw = bytearray(SEED_ARCHIVE.read_bytes())
    for pos, value in edits:
        raw[pos % len(raw)] = value
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    path = tmp_path_factory.mktemp("mut") / "x.lmgc"
    path.write_bytes(bytes(raw))
    read_or_reject(path)
    # a file that still reads must also decode to the stored SHA-256 or refuse: never wrong bytes
    try:
        decode_file(path, None)
    except LmgcError:
        pass


def test_committed_corpus_is_read_or_rejected_cleanly() -> None:
    files = sorted(CORPUS.glob("*.lmgc"))
    assert len(files) >= 20, "run scripts/fuzz.py --write-corpus to regenerate tests/data/fuzz"
    for path in files:
        read_or_reject(path)


DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I32": torch.int32,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for i in range(draw(st.integers(min_value=1, max_value=3))):
        dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
        shape = tuple(draw(st.lists(st.integers(min_value=0, max_value=9), max_size=3)))
        n = int(np.prod(shape)) if shape else 1
        itemsize = torch.empty((), dtype=dtype).element_size()
        # raw random bytes: NaN, Inf, denormals and negative zero all occur for float dtypes
        raw = draw(st.binary(min_size=n * itemsize, max_size=n * itemsize))
        if dtype == torch.bool:
            raw = bytes(b & 1 for b in raw)
        t = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[f"t{i}"] = t.reshape(shape)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tensors=tensors(),
    scheme=st.sampled_from(["none", "space", "comma", "0x", "iso"]),
    window=st.sampled_from([4, 7, 32]),
)
def test_random_tensors_roundtrip_byte_exact(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model: str,
    tensors: dict[str, torch.Tensor],
    scheme: str,
    window: int,
) -> None:
    tmp = tmp_path_factory.mktemp("rt")
    src = tmp / "g.safetensors"
    save_file(tensors, str(src))
    read_layout(src)
    arc, out = tmp / "g.lmgc", tmp / "out.safetensors"
    encode_file(src, arc, EncodeOptions(model=tiny_model, scheme=scheme, window_bytes=window, batch=3))
    decode_file(arc, out)
    assert out.read_bytes() == src.read_bytes()


def test_seed_archive_is_plain() -> None:
    # the mutation tests decode without a model: the seed must hold no LM chunk
    with ArchiveReader(SEED_ARCHIVE) as r:
        assert r.header.model is None
    assert struct.unpack("<I", SEED_ARCHIVE.read_bytes()[16:20])[0] > 0


def test_semantic_mutations_with_recomputed_crcs_are_rejected_or_exact(tmp_path: Path) -> None:
    """Crafted archives whose CRCs and offsets are right (header fields, tensor table with hostile names
    and numbers, rows, filters, procedure, codecs, payloads, zstd bombs): every one is refused with an
    LmgcError or decodes exactly, within 5 s and 256 MiB (scripts/fuzz.py runs the same for longer)."""
    import random
    import struct
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import fuzz

    rng = random.Random(20261130)
    for archive, _ in fuzz.SEEDS:
        decode_file(archive, None, fuzz.WITH_REFERENCE)  # warm the kernel: the first decode loads it
    findings = []
    for case in range(240):
        archive, original = fuzz.SEEDS[case % len(fuzz.SEEDS)]
        target = tmp_path / "case.lmgc"
        try:
            fuzz.semantic_mutation(rng, archive, target)
        except (LmgcError, OverflowError, struct.error):
            continue
        problem = fuzz.check_case(target, original.read_bytes(), tmp_path / "out.safetensors")
        if problem is not None:
            findings.append(f"case {case}: {problem}")
    assert not findings, findings[:5]
