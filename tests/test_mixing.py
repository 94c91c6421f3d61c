"""Context mixing (lmgc_format/mixing.py): grammar mask, learning, exact round trips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.alphabet import Alphabet
from lmgc_format.container.reader import ArchiveReader
from lmgc_format.decoder import DecodeOptions, decode_file
from lmgc_format.encoder import EncodeOptions, encode_file
from lmgc_format.errors import UnsupportedError
from lmgc_format.lmchunk import decode_windows, encode_windows
from lmgc_format.mixing import TokenMixer
from lmgc_format.plan import Window
from lmgc_format.predictor import check_procedure
from lmgc_format.serialize import get_scheme

from .conftest import gradient_like

TEXTS = (b",", *(bytes([c]) for c in b"0123456789abcdef"), b"ab", b"bead", b",,", b"f,")
ALPHABET = Alphabet(tuple(range(100, 100 + len(TEXTS))), TEXTS)
COMMA = get_scheme("comma")


def _sym(text: bytes) -> int:
    return TEXTS.index(text)


def _allowed(mixer: TokenMixer, row: int) -> set[bytes]:
    logp = mixer.mix([row], np.zeros((1, ALPHABET.size)))[0]
    return {TEXTS[a] for a in range(ALPHABET.size) if logp[a] > -1e299}


def test_grammar_mask_follows_the_window_template() -> None:
    # Two fp32 values: "dddddddd,dddddddd" (17 text bytes).
    mixer = TokenMixer(ALPHABET, COMMA, [Window(0, 0, 8, 4)])
    digits = {t for t in TEXTS if len(t) == 1 and t != b","}
    assert _allowed(mixer, 0) == digits | {b"ab", b"bead"}
    for piece in (b"bead", b"0", b"1"):  # 6 digits of the first value: two remain
        mixer.mix([0], np.zeros((1, ALPHABET.size)))
        mixer.update([_sym(piece)])
    assert _allowed(mixer, 0) == digits | {b"ab"}  # "bead" would cross the separator
    for piece in (b"f", b"f"):
        mixer.mix([0], np.zeros((1, ALPHABET.size)))
        mixer.update([_sym(piece)])
    assert _allowed(mixer, 0) == {b","}  # ",," and "f," never fit
    mixer.mix([0], np.zeros((1, ALPHABET.size)))
    mixer.update([_sym(b",")])
    for _ in range(7):
        mixer.mix([0], np.zeros((1, ALPHABET.size)))
        mixer.update([_sym(b"1")])
    assert _allowed(mixer, 0) == digits  # the window's last digit: nothing longer, no separator


def test_grammar_mask_matches_a_hex_digit_that_is_part_of_a_prefix() -> None:
    texts = (*(bytes([c]) for c in b"0123456789abcdef"), b"x", b" ", b"0x", b"ab")
    alphabet = Alphabet(tuple(range(len(texts))), texts)
    mixer = TokenMixer(alphabet, get_scheme("0x"), [Window(0, 0, 4, 2)])  # "0xdddd 0xdddd"

    def allowed() -> set[bytes]:
        logp = mixer.mix([0], np.zeros((1, alphabet.size)))[0]
        return {texts[a] for a in range(alphabet.size) if logp[a] > -1e299}

    assert allowed() == {b"0", b"0x"}  # the prefix's "0" is a literal, not any digit
    mixer.update([texts.index(b"0")])
    assert allowed() == {b"x"}
    mixer.mix([0], np.zeros((1, alphabet.size)))
    mixer.update([texts.index(b"x")])
    assert allowed() == {t for t in texts if t not in (b"x", b" ", b"0x")}


def test_mixed_distribution_is_normalized_over_allowed_tokens() -> None:
    mixer = TokenMixer(ALPHABET, COMMA, [Window(0, 0, 8, 4), Window(0, 8, 12, 4)])
    rng = np.random.default_rng(0)
    logp = mixer.mix([0, 1], rng.normal(size=(2, ALPHABET.size)))
    for row in logp:
        allowed = row > -1e299
        assert math.isclose(np.exp(row[allowed]).sum(), 1.0, rel_tol=1e-12)


def test_mixer_learns_what_the_lm_does_not_know() -> None:
    """An LM that knows nothing (uniform) on a tensor of repeated values: mixing must learn it."""
    values = np.full(64, 0.15625, dtype=np.float32).tobytes()[::-1]  # msb-first "3e200000" x 64
    text = COMMA.to_text(values, 4)
    syms = ALPHABET.greedy(text)
    window = Window(0, 0, len(values), 4)
    mixer = TokenMixer(ALPHABET, COMMA, [window])
    bits = 0.0
    for s in syms:
        logp = mixer.mix([0], np.zeros((1, ALPHABET.size)))[0]
        bits -= logp[s] / math.log(2)
        mixer.update([s])
    uniform = len(syms) * math.log2(16)  # what the LM alone (uniform over digits) would cost, at least
    assert bits < 0.2 * uniform


class _Markov:
    """A deterministic fake predictor: logits depend on every token fed so far."""

    bos_id = 1
    head_mode = "restricted"

    def __init__(self, size: int) -> None:
        self.size = size

    def reset(self, capacity: int = 0) -> None:
        self._seen: list[list[int]] | None = None

    def step(self, tokens: list[int]) -> np.ndarray:
        if self._seen is None:
            self._seen = [[] for _ in tokens]
        out = np.zeros((len(tokens), self.size), dtype=np.float32)
        for i, tok in enumerate(tokens):
            self._seen[i].append(tok)
            rng = np.random.default_rng(sum(self._seen[i][-3:]) + len(self._seen[i]))
            out[i] = rng.normal(size=self.size).astype(np.float32) * 2
        return out


@pytest.mark.parametrize("scheme_name", ["comma", "none", "0x", "comma_space"])
def test_mixed_chunk_round_trips_exactly(scheme_name: str) -> None:
    scheme = get_scheme(scheme_name)
    texts = (*sorted({bytes([b]) for b in scheme.allowed_bytes()}), b"ab", b"bead")
    alphabet = Alphabet(tuple(range(200, 200 + len(texts))), texts)
    rng = np.random.default_rng(3)
    data = [(rng.normal(size=24) * 1e-3).astype(np.float32).tobytes(), rng.bytes(6), bytes(16)]
    windows = [Window(0, 0, 96, 4), Window(1, 96, 102, 2), Window(2, 102, 118, 4)]
    payload, bits, _ = encode_windows(_Markov(alphabet.size), alphabet, scheme, windows, data, None, True, mixing=True)
    plain, plain_bits, _ = encode_windows(_Markov(alphabet.size), alphabet, scheme, windows, data, None, True)
    assert payload != plain
    back = decode_windows(_Markov(alphabet.size), alphabet, scheme, windows, payload, True, mixing=True)
    assert back == data
    assert sum(bits) < sum(plain_bits)  # mask + mixing beat the (random) LM alone


def test_unknown_mixing_is_refused() -> None:
    check_procedure("lmgc-llama-v1+cm-mix-v1")
    check_procedure("lockstep-kv-v1")
    with pytest.raises(UnsupportedError, match=r"cm-mix-v9"):
        check_procedure("lmgc-llama-v1+cm-mix-v9")


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((12, 16), 5), "b": gradient_like((40,), 6, torch.bfloat16)}, str(src))
    return src


@pytest.mark.parametrize(
    ("scheme", "mixing", "recorded"),
    [
        ("comma", True, "lmgc-llama-v1+cm-mix-v1"),
        ("comma", False, "lmgc-llama-v1"),
        ("iso", True, "lmgc-llama-v1"),  # mixing needs hex text: iso archives are coded without it
    ],
)
def test_archive_records_mixing_and_decodes(
    tmp_path: Path, tiny_model: str, scheme: str, mixing: bool, recorded: str
) -> None:
    src = _source(tmp_path)
    arc = tmp_path / "g.lmgc"
    opts = EncodeOptions(model=tiny_model, scheme=scheme, window_bytes=128, batch=4, fallback=False, mixing=mixing)
    encode_file(src, arc, opts)
    with ArchiveReader(arc) as r:
        assert r.header.layout.procedure == recorded
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == src.read_bytes()
