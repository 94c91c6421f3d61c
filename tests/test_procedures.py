"""The table of everything an archive can name agrees with the registries, the goldens and FORMAT.md."""

from __future__ import annotations

import re

import pytest

from lmgc_format.cm.codec import NAME as FAST
from lmgc_format.container.constants import FAST2_PROCEDURE, QUICK_PROCEDURE, STORED_PROCEDURE, Codec
from lmgc_format.container.procedures import (
    PORTABLE_ENGINE,
    PORTABLE_MIXING,
    PORTABLE_MIXINGS,
    PROCEDURES,
    check_procedure,
    codec,
    named,
    portable,
    portable_procedure,
)
from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.mixing import MIXINGS
from lmgc_format.lm.predictor import ENGINES
from lmgc_format.tensors.serialize import SCHEMES
from lmgc_format.transforms.filters import KINDS
from tests.conftest import ROOT


def test_table_matches_the_registries() -> None:
    codecs = named("codec")
    assert {p.id: p.name for p in codecs.values()} == dict(Codec.NAMES)
    for p in codecs.values():
        assert p.since_format == Codec.SINCE.get(p.id, (1, 0)), p.name
    assert set(named("engine")) == set(ENGINES.values())
    assert set(named("mixing")) == {*MIXINGS, *PORTABLE_MIXINGS}
    assert PORTABLE_MIXING == "cm-int-v2"
    assert set(named("filter")) == set(KINDS)
    assert set(named("scheme")) == set(SCHEMES)
    assert set(named("level")) == {FAST, FAST2_PROCEDURE, QUICK_PROCEDURE, STORED_PROCEDURE}
    assert len({(p.kind, p.name) for p in PROCEDURES}) == len(PROCEDURES)


def test_every_entry_has_its_spec_section_and_golden() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "FORMAT.md").read_text(), re.M)
    for p in PROCEDURES:
        assert any(p.spec in h for h in headings), (p.name, p.spec)
        if p.golden:
            assert (ROOT / "tests" / "data" / f"{p.golden}.safetensors.lmgc").exists(), p.golden


def test_procedures_are_checked_by_name() -> None:
    floats = [e for e in named("engine") if e != PORTABLE_ENGINE]
    for engine in floats:
        check_procedure(engine)
        for mixing in named("mixing"):
            if mixing not in PORTABLE_MIXINGS:
                check_procedure(f"{engine}+{mixing}")
    for mixing in PORTABLE_MIXINGS:  # every portable mixing decodes, the old ones too
        check_procedure(f"{PORTABLE_ENGINE}+{mixing}")
    for bad in (PORTABLE_ENGINE, f"{PORTABLE_ENGINE}+cm-top-v4", *(f"lmgc-llama-v1+{m}" for m in PORTABLE_MIXINGS)):
        with pytest.raises(UnsupportedError, match="and nothing else"):
            check_procedure(bad)
    check_procedure(FAST)
    check_procedure(STORED_PROCEDURE)
    for bad in ("lmgc-llama-v9", "lmgc-llama-v1+cm-top-v9", "cm-fast-v9", "", "+cm-top-v4"):
        with pytest.raises(UnsupportedError, match="this version runs"):
            check_procedure(bad)


def test_portable_lm_procedure() -> None:
    assert portable({Codec.LM, Codec.ZSTD}, f"{PORTABLE_ENGINE}+{PORTABLE_MIXING}")
    assert all(portable_procedure(f"{PORTABLE_ENGINE}+{m}") for m in PORTABLE_MIXINGS)
    assert not portable({Codec.LM}, "lmgc-llama-v1+cm-top-v4")
    assert not portable_procedure("lmgc-llama-v1+cm-top-v4") and not portable_procedure("nonsense+cm-int-v1")


def test_portable_means_no_lm_chunk() -> None:
    assert portable({Codec.CM_FAST, Codec.ZSTD, Codec.RAW})
    assert portable({Codec.ZSTD, Codec.SHUFFLE_ZSTD})  # an LM-level archive whose every LM chunk fell back
    assert not portable({Codec.LM, Codec.ZSTD})
    assert not portable({99})
    assert codec(Codec.LM) is not None and codec(99) is None
