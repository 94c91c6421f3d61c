"""What the LM level needs of a loaded model for one archive, made in one place.

An encoder, a decoder, a worker process and ``bench --estimate`` all turn a model into the same
four things: the serialization scheme, the alphabet (new for an encoder; the one an archive or the
main process names, checked, for the others), the predictor that runs the procedure, and the
mixing stage the procedure names after its engine (``engine+mixing``, predictor.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lmgc_format.errors import ModelMismatchError
from lmgc_format.events import EventSink, Notice, ignore
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.models import LoadedModel
from lmgc_format.lm.predictor import Predictor, make_predictor, split_procedure
from lmgc_format.tensors.serialize import Scheme, get_scheme


@dataclass(frozen=True)
class LmSetup:
    lm: LoadedModel
    scheme: Scheme
    alphabet: Alphabet
    predictor: Predictor
    procedure: str  # engine, optionally "+mixing"
    mixing: str | None  # the procedure's mixing stage (mixing.MIXINGS), None for the LM alone


@dataclass(frozen=True)
class ExpectedAlphabet:
    """The alphabet an archive (or the main process) used: its digest, its size if known, and whose it is
    (for the message when the model gives another)."""

    sha256: str
    size: int | None = None
    whose: str = "the archive's"
    rule: str | None = None  # how it was drawn from the vocabulary, when the archive says (format 1.4)


def prepare_lm(
    lm: LoadedModel,
    scheme_name: str,
    procedure: str,
    restricted_head: bool = True,
    *,
    expected: ExpectedAlphabet | None = None,
    force: bool = False,
    on_event: EventSink = ignore,
    predictor: Callable[[LoadedModel, Alphabet], Predictor] | None = None,
) -> LmSetup:
    """The setup for ``procedure`` on ``lm``. With ``expected``, an alphabet that differs refuses
    (ModelMismatchError), or with ``force`` says so and goes on. ``predictor`` replaces the procedure's
    engine (``bench --estimate``'s teacher-forced one)."""
    scheme = get_scheme(scheme_name)
    alphabet = Alphabet.for_tokenizer(
        lm.tokenizer, scheme, expected.sha256 if expected else None, expected.rule if expected else None
    )
    if expected is not None and (
        alphabet.digest() != expected.sha256 or (expected.size is not None and alphabet.size != expected.size)
    ):
        theirs = f" ({expected.size})" if expected.size is not None else ""
        msg = (
            f"the model's tokenizer gives a different {scheme.name!r} alphabet ({alphabet.size} tokens) than "
            f"{expected.whose}{theirs}"
        )
        if not force:
            raise ModelMismatchError(msg + (" (use --ignore-model-mismatch to try anyway)" if expected.size else ""))
        on_event(Notice("forced: " + msg))
    made = predictor(lm, alphabet) if predictor else make_predictor(lm, alphabet, procedure, restricted_head)
    return LmSetup(lm, scheme, alphabet, made, procedure, split_procedure(procedure)[1])
