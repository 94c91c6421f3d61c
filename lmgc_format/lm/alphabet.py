"""The tokens a scheme's text can be made of, and how a window's text becomes them.

The model's vocabulary is restricted to the tokens whose bytes all belong to
the scheme (hex digits, separator, prefix): the coder only spends probability
on what can occur (docs/DESIGN.md rule 3). The alphabet (token ids and their bytes) is
stored in the archive header, so the decoder needs the model's weights but not
its tokenizer: decoding a token is appending its stored bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import msgpack

from lmgc_format.errors import UnsupportedError
from lmgc_format.tensors.serialize import Scheme


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte <-> printable-character map used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


_BYTE_DECODER = {c: b for b, c in _bytes_to_unicode().items()}
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return "ByteLevel" in repr(getattr(backend, "decoder", None))


def byte_fallback_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of SentencePiece byte-fallback pieces (``<0x33>``): the tokenizer emits them only for
    bytes no ordinary piece covers, so a model has rarely seen them where an ordinary piece fits."""
    if _is_byte_level(tokenizer):
        return frozenset()
    return frozenset(i for piece, i in tokenizer.get_vocab().items() if _BYTE_FALLBACK.match(piece))


def vocabulary_bytes(tokenizer: Any) -> dict[int, bytes]:
    """Map every ordinary token id to the bytes it stands for (special tokens left out)."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab: dict[str, int] = tokenizer.get_vocab()
    byte_level = _is_byte_level(tokenizer)
    out: dict[int, bytes] = {}
    for piece, idx in vocab.items():
        if idx in special:
            continue
        if byte_level:
            try:
                out[idx] = bytes(_BYTE_DECODER[c] for c in piece)
            except KeyError:
                continue  # added tokens that are not byte-level pieces
        else:  # SentencePiece style: "▁" is a space, <0xAB> a raw byte
            m = _BYTE_FALLBACK.match(piece)
            out[idx] = bytes([int(m.group(1), 16)]) if m else piece.replace("▁", " ").encode("utf-8")
    return out


# How an alphabet is drawn from a vocabulary where several tokens spell the same bytes (for_tokenizer):
# RULE, ordinary pieces before byte-fallback ones (lmgc 0.7 on), or the lowest id (lmgc <= 0.6). Format 1.4
# headers record the rule; older ones are matched by their digest.
RULE = "ordinary-first"
RULES = (RULE, "lowest-id")


@dataclass(frozen=True)
class Alphabet:
    """Token ids the coder works with, in a fixed order; symbol i is ``ids[i]``."""

    ids: tuple[int, ...]
    texts: tuple[bytes, ...]
    _index: dict[bytes, int] = field(default_factory=dict, compare=False, repr=False)
    _by_id: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({t: i for i, t in enumerate(self.texts)})
        for i, token in enumerate(self.ids):  # escape rows repeat a stand-in id: keep its real row
            self._by_id.setdefault(token, i)

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def max_len(self) -> int:
        return max(len(t) for t in self.texts)

    def digest(self) -> str:
        """SHA-256 (hex) of the rows ``[[token_id, bytes], ...]`` as msgpack: what archives record."""
        rows = [[i, t] for i, t in zip(self.ids, self.texts, strict=True)]
        return hashlib.sha256(msgpack.packb(rows, use_bin_type=True)).hexdigest()

    def greedy(self, text: bytes) -> list[int]:
        """Longest-match tokenization over the alphabet (always possible: single bytes exist)."""
        out: list[int] = []
        pos, longest = 0, self.max_len
        while pos < len(text):
            for n in range(min(longest, len(text) - pos), 0, -1):
                sym = self._index.get(text[pos : pos + n])
                if sym is not None:
                    out.append(sym)
                    pos += n
                    break
            else:  # pragma: no cover - from_vocabulary guarantees single bytes
                raise UnsupportedError(f"byte {text[pos]:#x} has no token in the alphabet")
        return out

    def tokenize(self, text: bytes, tokenizer: Any | None) -> list[int]:
        """Symbols for ``text``: the tokenizer's own split when it stays in the alphabet, else greedy.

        The model predicts best on the tokenization it was trained with; the
        greedy split is the always-valid fallback (sentencepiece prefixes,
        tokens outside the alphabet).
        """
        if tokenizer is not None:
            ids = tokenizer(text.decode("utf-8"), add_special_tokens=False)["input_ids"]
            syms = [self._by_id.get(i, -1) for i in ids]
            if -1 not in syms and b"".join(self.texts[s] for s in syms) == text:
                return syms
        return self.greedy(text)

    @classmethod
    def for_tokenizer(
        cls, tokenizer: Any, scheme: Scheme, digest: str | None = None, rule: str | None = None
    ) -> Alphabet:
        """The alphabet of ``tokenizer``'s vocabulary for ``scheme``, ordinary pieces preferred
        over byte-fallback ones that spell the same bytes.

        lmgc 0.6 and earlier kept the lowest id instead, which on SentencePiece vocabularies
        (Llama-2/TinyLlama, Gemma) is the byte-fallback piece: ``3`` became ``<0x33>``, a token
        the model hardly knows (Gemma 3 270M: ~13 bits per token instead of ~4). With an
        archive's ``digest``, that older alphabet is returned when it is the one that matches,
        so such archives still decode. Byte-level vocabularies (SmolLM2) have no byte-fallback
        pieces: their alphabet is the same under both rules.
        """
        vocab = vocabulary_bytes(tokenizer)
        if rule is not None:  # format 1.4 headers name the rule: no guessing
            if rule not in RULES:
                raise UnsupportedError(f"archive's alphabet rule {rule!r} is not one of {', '.join(RULES)}")
            return cls.from_vocabulary(vocab, scheme, byte_fallback_ids(tokenizer) if rule == RULE else frozenset())
        demoted = byte_fallback_ids(tokenizer)
        alphabet = cls.from_vocabulary(vocab, scheme, demoted)
        if digest is not None and demoted and alphabet.digest() != digest:
            older = cls.from_vocabulary(vocab, scheme)
            if older.digest() == digest:
                return older
        return alphabet

    @classmethod
    def from_vocabulary(
        cls, vocab: dict[int, bytes], scheme: Scheme, demoted: frozenset[int] = frozenset()
    ) -> Alphabet:
        """Every token that only holds the scheme's bytes; where several spell the same bytes, the
        lowest id not in ``demoted`` (else the lowest id). Rows in id order."""
        allowed = scheme.allowed_bytes()
        # For latin-1 text nearly the whole vocabulary qualifies; random bytes almost never spell a
        # word, so iso keeps tokens of at most one character (two UTF-8 bytes): ~10x smaller alphabet.
        longest = 64 if scheme.hex else 2
        rows = sorted((i, t) for i, t in vocab.items() if t and len(t) <= longest and all(b in allowed for b in t))
        if not rows:
            raise UnsupportedError(f"the model's vocabulary has no token for scheme {scheme.name!r}")
        # One token per byte string: the lowest id when a vocabulary repeats one, demoted ids last.
        chosen: dict[bytes, int] = {}
        for i, t in sorted(rows, key=lambda r: (r[0] in demoted, r[0])):
            chosen.setdefault(t, i)
        unique = sorted((i, t) for t, i in chosen.items())
        seen = set(chosen)
        # Some vocabularies lack a few single bytes (SmolLM2 has no token for 0x04, 0x06, ...: its
        # tokenizer silently drops them). Each missing byte gets an escape symbol that is scored and
        # fed to the model as a stand-in token ("?" when it exists), so every byte stays codable.
        stand_in = next((i for i, t in unique if t == b"?"), unique[0][0])
        escapes = [(stand_in, bytes([b])) for b in sorted(allowed) if bytes([b]) not in seen]
        rows_out = unique + escapes
        return cls(tuple(i for i, _ in rows_out), tuple(t for _, t in rows_out))
