"""Everything an archive can name, in one table (numcodecs' registry is the model).

An archive names its procedures by value: a chunk codec number in the index, a procedure string in
the header (``engine``, ``engine+mixing``, ``cm-fast-v1`` or ``stored``), a filter kind per filtered
tensor, a serialization scheme. Each entry says when it appeared (format version and lmgc version),
whether its bytes decode on any machine (``portable``), where docs/FORMAT.md specifies it, which
golden archive pins it, and which module codes it. A reader refuses what the table does not hold
(:func:`check_procedure`); tests/test_procedures.py checks the table against the registries the
modules keep (codec numbers, engines, mixings, filter kinds, schemes), the goldens and FORMAT.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmgc_format.errors import UnsupportedError


@dataclass(frozen=True)
class Procedure:
    kind: str  # "codec" | "engine" | "mixing" | "level" | "filter" | "transform" | "scheme"
    name: str  # what the archive writes (for codecs: Codec.NAMES's name; ``id`` is the number)
    since_format: tuple[int, int]  # the oldest format version that may carry it
    since_lmgc: str
    portable: bool  # decodes byte-exact on any machine (integer arithmetic, or no model at all)
    module: str  # what codes it
    spec: str  # docs/FORMAT.md section
    golden: str = ""  # tests/data archive that pins it ("" where a larger golden covers it)
    id: int = -1  # codecs: the number in the index


_LM_SPEC = "How an LM chunk is coded"
_INT_SPEC = "The portable LM procedure"
_QUICK_SPEC = "How a quick-level chunk is coded"
_FAST2_SPEC = "How a fast-level chunk is coded (`cm-fast-v2`"
# Integer-exact, only together; new archives use the last mixing.
PORTABLE_ENGINE, PORTABLE_MIXINGS = "lmgc-int8-v1", ("cm-int-v1", "cm-int-v2")
PORTABLE_MIXING = PORTABLE_MIXINGS[-1]
PROCEDURES: tuple[Procedure, ...] = (
    Procedure("codec", "raw", (1, 0), "0.1", True, "container", "Frame", "golden_ints", 0),
    Procedure("codec", "zstd", (1, 0), "0.1", True, "chunk_encoder", "Frame", "golden_ints", 1),
    Procedure("codec", "lm", (1, 0), "0.1", False, "lmchunk", _LM_SPEC, "golden_engine", 2),
    Procedure("codec", "shuffle+zstd", (1, 1), "0.2", True, "shuffle", "Frame", "golden_shuffle", 3),
    Procedure("codec", "bitshuffle+zstd", (1, 1), "0.2", True, "shuffle", "Frame", "golden_shuffle", 4),
    Procedure("codec", "cm-fast-v1", (1, 3), "0.10", True, "cm", "How a fast-level chunk is coded", "golden_fast", 5),
    Procedure("codec", "cm-ints-v1", (1, 5), "0.15", True, "cm", "How an integer chunk is coded", "golden_quant", 6),
    Procedure("codec", "lzma2", (1, 5), "0.15", True, "container", "Frame", "golden_quant", 7),
    Procedure("codec", "quick-v1", (1, 7), "0.17", True, "cm", _QUICK_SPEC, "golden_quick", 8),
    Procedure("codec", "cm-fast-v2", (1, 8), "0.18", True, "cm", _FAST2_SPEC, "golden_fast2", 9),
    Procedure("engine", "lockstep-kv-v1", (1, 0), "0.1", False, "predictor", _LM_SPEC, "golden_lockstep"),
    Procedure("engine", "lmgc-llama-v1", (1, 1), "0.2", False, "engine", _LM_SPEC, "golden_engine"),
    Procedure("engine", "lmgc-int8-v1", (1, 4), "0.12", True, "intengine", _INT_SPEC, "golden_int8"),
    Procedure("mixing", "cm-mix-v1", (1, 1), "0.3", False, "mixing", _LM_SPEC, "golden_mix"),
    Procedure("mixing", "cm-top-v1", (1, 1), "0.4", False, "topbyte", _LM_SPEC, "golden_top"),
    Procedure("mixing", "cm-top-v2", (1, 1), "0.5", False, "topbyte", _LM_SPEC, "golden_top2"),
    Procedure("mixing", "cm-top-v3", (1, 1), "0.6", False, "topbyte", _LM_SPEC, "golden_top3"),
    Procedure("mixing", "cm-top-v4", (1, 2), "0.9", False, "topbyte", _LM_SPEC, "golden_top4"),
    Procedure("mixing", "cm-int-v1", (1, 4), "0.12", True, "intchunk", _INT_SPEC, "golden_int8"),
    Procedure("mixing", "cm-int-v2", (1, 4), "0.14", True, "intchunk", _INT_SPEC, "golden_int8_v2"),
    Procedure("level", "cm-fast-v1", (1, 3), "0.10", True, "cm", "How a fast-level chunk is coded", "golden_fast"),
    Procedure("level", "quick-v1", (1, 7), "0.17", True, "cm", _QUICK_SPEC, "golden_quick"),
    Procedure("level", "cm-fast-v2", (1, 8), "0.18", True, "cm", _FAST2_SPEC, "golden_fast2"),
    Procedure("level", "stored", (1, 4), "0.11", True, "container", "Stored archives", "golden_stored"),
    Procedure("filter", "sum-first-axis-v1", (1, 2), "0.8", True, "filters", "Filters", "golden_filters"),
    Procedure("filter", "sum-last-axis-v1", (1, 2), "0.8", True, "filters", "Filters", "golden_filters"),
    # header ``x`` (preamble flag 16): tensors stored as differences from a reference file's
    Procedure(
        "transform",
        "delta-reference-v1",
        (1, 6),
        "0.16",
        True,
        "reference",
        "Coded against a reference",
        "golden_reference",
    ),
    *(
        Procedure("scheme", s, (1, 0), "0.1", False, "serialize", _LM_SPEC)
        for s in ("none", "space", "comma", "comma_space", "semicolon", "0x", "iso")
    ),
)


def named(kind: str) -> dict[str, Procedure]:
    return {p.name: p for p in PROCEDURES if p.kind == kind}


def codec(number: int) -> Procedure | None:
    return next((p for p in PROCEDURES if p.kind == "codec" and p.id == number), None)


def check_procedure(procedure: str) -> None:
    """Refuse a header procedure this version cannot run, naming what it can: a level's name alone, or an
    engine optionally followed by ``+`` and a mixing."""
    if procedure in named("level"):
        return
    engine, _, mixing = procedure.partition("+")
    engines, mixings = named("engine"), named("mixing")
    floats = [m for m in mixings if m not in PORTABLE_MIXINGS]
    if engine not in engines or (mixing and mixing not in mixings):
        raise UnsupportedError(
            f"archive uses LM procedure {procedure!r}; this version runs {PORTABLE_ENGINE}+{PORTABLE_MIXING} and "
            f"{', '.join(repr(e) for e in engines if e != PORTABLE_ENGINE)}, each optionally followed by "
            f"{' or '.join('+' + m for m in floats)}"
        )
    if (engine == PORTABLE_ENGINE) != (mixing in PORTABLE_MIXINGS):
        raise UnsupportedError(
            f"archive uses LM procedure {procedure!r}: {PORTABLE_ENGINE} goes with "
            f"{' or '.join(PORTABLE_MIXINGS)} and nothing else"
        )


def portable_procedure(procedure: str) -> bool:
    """Whether an LM procedure (``engine`` or ``engine+mixing``) is integer-exact: both parts portable."""
    engine, _, mixing = procedure.partition("+")
    engines, mixings = named("engine"), named("mixing")
    return (
        engine in engines
        and engines[engine].portable
        and (not mixing or (mixing in mixings and mixings[mixing].portable))
    )


def portable(codecs: set[int], procedure: str = "") -> bool:
    """Whether an archive whose chunks use ``codecs`` decodes byte-exact on any machine. An LM chunk does
    when the header's procedure is integer-exact (``lmgc-int8-v1+cm-int-v2`` or ``+cm-int-v1``); one of the
    float procedures decodes only where the LM computes as the encoder's machine did. An archive none of
    whose chunks the LM coded needs no model, whatever its procedure."""
    lm = next(p for p in PROCEDURES if p.kind == "codec" and p.name == "lm")
    return all(
        p is not None and (p.portable or (p is lm and portable_procedure(procedure))) for p in map(codec, codecs)
    )
