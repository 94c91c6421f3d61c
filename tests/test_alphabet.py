"""Which token stands for which bytes: ordinary pieces before SentencePiece byte-fallback ones."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.alphabet import RULE, Alphabet, byte_fallback_ids, vocabulary_bytes
from lmgc_format.tensors.serialize import get_scheme
from tests.tiny_model import default_tokenizer

COMMA = get_scheme("comma")


class SentencePieceLike:
    """The parts of a Llama-2 / Gemma tokenizer the alphabet reads: byte pieces <0x00>..<0xFF>
    with low ids, then ordinary pieces (a few of them hex digits)."""

    all_special_ids = (0, 1, 2)
    backend_tokenizer = SimpleNamespace(decoder="Sequence([Replace('▁', ' '), ByteFallback(), Fuse()])")

    def get_vocab(self) -> dict[str, int]:
        vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2}
        vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
        vocab.update({"3": 300, "a": 301, ",": 302, "▁3": 303, "3a": 304, "be": 305})
        return vocab


def _id(alphabet: Alphabet, text: bytes) -> int:
    return alphabet.ids[alphabet.texts.index(text)]


def test_ordinary_pieces_win_over_byte_fallback_pieces() -> None:
    tok = SentencePieceLike()
    assert byte_fallback_ids(tok) == frozenset(range(3, 259))
    alphabet = Alphabet.for_tokenizer(tok, COMMA)
    assert _id(alphabet, b"3") == 300 and _id(alphabet, b"a") == 301 and _id(alphabet, b",") == 302
    assert _id(alphabet, b"7") == 3 + 0x37  # no ordinary piece: the byte piece is all there is
    assert _id(alphabet, b"3a") == 304 and _id(alphabet, b"be") == 305
    assert list(alphabet.ids) == sorted(alphabet.ids)  # rows stay in id order
    assert b" 3" not in alphabet.texts  # a space is not comma-scheme text


def test_an_archive_of_the_older_rule_gets_its_own_alphabet_back() -> None:
    tok = SentencePieceLike()
    older = Alphabet.from_vocabulary(vocabulary_bytes(tok), COMMA)  # lmgc <= 0.6: lowest id
    assert _id(older, b"3") == 3 + 0x33
    assert Alphabet.for_tokenizer(tok, COMMA, older.digest()) == older
    current = Alphabet.for_tokenizer(tok, COMMA)
    assert current != older
    assert Alphabet.for_tokenizer(tok, COMMA, current.digest()) == current
    assert Alphabet.for_tokenizer(tok, COMMA, "0" * 64) == current  # neither: the caller reports it


def test_a_recorded_rule_is_followed_without_guessing() -> None:
    """Format 1.4 headers name the rule: the decoder builds that alphabet, whatever digest it expects."""
    tok = SentencePieceLike()
    older = Alphabet.from_vocabulary(vocabulary_bytes(tok), COMMA)
    current = Alphabet.for_tokenizer(tok, COMMA)
    assert Alphabet.for_tokenizer(tok, COMMA, older.digest(), rule="lowest-id") == older
    assert Alphabet.for_tokenizer(tok, COMMA, older.digest(), rule=RULE) == current  # no retry: the caller refuses
    with pytest.raises(UnsupportedError, match="alphabet rule"):
        Alphabet.for_tokenizer(tok, COMMA, rule="newest-first")


def test_byte_level_vocabularies_are_unchanged() -> None:
    tok: Any = default_tokenizer()  # SmolLM2's: byte-level BPE, no byte-fallback pieces
    assert byte_fallback_ids(tok) == frozenset()
    for name in ("comma", "none", "0x", "iso"):
        scheme = get_scheme(name)
        assert Alphabet.for_tokenizer(tok, scheme) == Alphabet.from_vocabulary(vocabulary_bytes(tok), scheme)
