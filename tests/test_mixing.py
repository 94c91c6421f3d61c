"""Context mixing (lmgc_format/lm/mixing.py): grammar mask, learning, exact round trips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lmgc_format.container.reader import ArchiveReader
from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.coder import Encoder
from lmgc_format.lm.lmchunk import _tokens_with_tops, _top_tokens, decode_windows, encode_windows
from lmgc_format.lm.mixing import MIXINGS, TOP_MIXING, TokenMixer
from lmgc_format.lm.predictor import check_procedure
from lmgc_format.lm.topbyte import encode_tops, places, split_tops
from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_format.tensors.plan import Window
from lmgc_format.tensors.serialize import get_scheme, reorder

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


@pytest.mark.parametrize("mixing", MIXINGS)
@pytest.mark.parametrize("msb_first", [True, False])
@pytest.mark.parametrize("scheme_name", ["comma", "none", "0x", "comma_space"])
def test_mixed_chunk_round_trips_exactly(scheme_name: str, msb_first: bool, mixing: str) -> None:
    scheme = get_scheme(scheme_name)
    texts = (*sorted({bytes([b]) for b in scheme.allowed_bytes()}), b"ab", b"bead", b"3f", b"00")
    alphabet = Alphabet(tuple(range(200, 200 + len(texts))), texts)
    rng = np.random.default_rng(3)
    data = [(rng.normal(size=24) * 1e-3).astype(np.float32).tobytes(), rng.bytes(6), bytes(16), rng.bytes(5)]
    # fp32, bf16-like, all zeros, and single bytes (group 1: no top byte to code apart)
    windows = [Window(0, 0, 96, 4), Window(1, 96, 102, 2), Window(2, 102, 118, 4), Window(3, 118, 123, 1)]
    payload, bits, _ = encode_windows(
        _Markov(alphabet.size), alphabet, scheme, windows, data, None, msb_first, mixing=mixing
    )
    plain, plain_bits, _ = encode_windows(_Markov(alphabet.size), alphabet, scheme, windows, data, None, msb_first)
    assert payload != plain
    back = decode_windows(_Markov(alphabet.size), alphabet, scheme, windows, payload, msb_first, mixing=mixing)
    assert back == data
    assert sum(bits) < sum(plain_bits)  # mask + mixing (+ top bytes apart) beat the (random) LM alone


def test_top_byte_mode_codes_tops_apart_and_lm_reads_them() -> None:
    """cm-top-v2: the top digits are known text; no coded token may reach into them."""
    mixer = TokenMixer(ALPHABET, COMMA, [Window(0, 0, 8, 4)], "cm-top-v2")  # "TTdddddd,TTdddddd"
    assert mixer.tops == [True]
    assert mixer.top_slots(0).tolist() == [True, True] + [False] * 7 + [True, True] + [False] * 6
    assert mixer.at_top(0) and mixer.value_index(0) == 0
    mixer.feed(0, _sym(b"ab"))  # the first value's top byte, known
    assert not mixer.at_top(0)
    for piece in (b"bead", b"0"):
        mixer.mix([0], np.zeros((1, ALPHABET.size)))
        mixer.update([_sym(piece)])
    digits = {t for t in TEXTS if len(t) == 1 and t != b","}
    assert _allowed(mixer, 0) == digits | {b"f,"}  # one digit left: no "ab"; a digit with its separator fits
    mixer.mix([0], np.zeros((1, ALPHABET.size)))
    mixer.update([_sym(b"1")])
    assert _allowed(mixer, 0) == {b","}  # ",," would reach into the next value's top byte
    mixer.mix([0], np.zeros((1, ALPHABET.size)))
    mixer.update([_sym(b",")])
    assert mixer.at_top(0) and mixer.value_index(0) == 1
    # The same window stored least-significant byte first: the top byte's digits come last.
    stored = TokenMixer(ALPHABET, COMMA, [Window(0, 0, 8, 4)], "cm-top-v2", msb_first=False)
    assert stored.top_slots(0).tolist() == [False] * 6 + [True, True] + [False] * 7 + [True, True]
    # Group 1 (one byte per value) has no top byte to code apart.
    assert TokenMixer(ALPHABET, COMMA, [Window(0, 0, 8, 1)], TOP_MIXING).tops == [False]


def test_single_digit_mode_codes_one_digit_per_token() -> None:
    """cm-top-v3: a coded digit is a token of its own (no "bead", no "f,"); separators stay free."""
    mixer = TokenMixer(ALPHABET, COMMA, [Window(0, 0, 8, 4)], "cm-top-v3")  # "TTdddddd,TTdddddd"
    assert mixer.single_digits
    assert mixer.digit_slots(0).tolist() == [False, False] + [True] * 6 + [False] * 3 + [True] * 6
    mixer.feed(0, _sym(b"ab"))  # the top byte, known: it may still be a merged token
    digits = {t for t in TEXTS if len(t) == 1 and t != b","}
    for _ in range(6):
        assert _allowed(mixer, 0) == digits
        mixer.mix([0], np.zeros((1, ALPHABET.size)))
        mixer.update([_sym(b"e")])
    assert _allowed(mixer, 0) == {b","}
    # The encoder's symbols agree: one token per coded digit, the top byte's known tokens as before.
    text = b"abeeeeee,00000000"
    syms, known = _tokens_with_tops(
        ALPHABET, text, mixer.top_slots(0), None, _top_tokens(ALPHABET), mixer.digit_slots(0)
    )
    assert [TEXTS[s] for s in syms] == [b"ab", *[b"e"] * 6, b",", b"0", b"0", *[b"0"] * 6]
    assert known == [True, *[False] * 7, True, True, *[False] * 6]


def test_zero_values_get_weights_of_their_own() -> None:
    """cm-top-v3: a value whose known top byte is 0x00 / 0x80 learns apart from the others."""
    window = Window(0, 0, 8, 4)
    mixer = TokenMixer(ALPHABET, COMMA, [window], "cm-top-v3")
    mixer.feed(0, _sym(b"0"))
    mixer.feed(0, _sym(b"0"))  # top byte 0x00: a zero
    key, _ = mixer._contexts(0)
    assert key[1] == 1
    mixer.mix([0], np.zeros((1, ALPHABET.size)))
    mixer.update([_sym(b"0")])
    assert set(mixer._weights) == {(key[0], 1)}  # only the zero class's weights moved
    older = TokenMixer(ALPHABET, COMMA, [window], "cm-top-v2")
    older.feed(0, _sym(b"0"))
    older.feed(0, _sym(b"0"))
    assert older._contexts(0)[0][1] == -1  # no classes before cm-top-v3


def test_top_byte_mode_accounts_top_bytes_apart_and_known_tokens_free() -> None:
    """Window bits = the top-byte model's bits + the coded tokens' bits; known tokens cost nothing."""
    rng = np.random.default_rng(5)
    data = [
        (rng.normal(size=64) * 1e-3).astype(np.float32).tobytes(),
        (rng.normal(size=32)).astype(np.float32).tobytes(),
    ]
    windows = [Window(0, 0, 256, 4), Window(0, 256, 384, 4)]
    texts = (*sorted({bytes([b]) for b in COMMA.allowed_bytes()}), b"3a", b"ba", b"80")
    alphabet = Alphabet(tuple(range(200, 200 + len(texts))), texts)
    tops: dict[int, float] = {}
    coded = [0.0, 0.0]
    known: list[bytes] = [b"", b""]

    def on_token(window: int, sym: int, cost: float) -> None:
        coded[window] += cost
        if cost == 0.0:
            known[window] += texts[sym]

    _, bits, _ = encode_windows(
        _Markov(alphabet.size),
        alphabet,
        COMMA,
        windows,
        data,
        None,
        True,
        on_token=on_token,
        mixing=TOP_MIXING,
        on_top=lambda w, cost: tops.__setitem__(w, cost),
    )
    both = split_tops(data[0], 4) + split_tops(data[1], 4)
    expected = encode_tops(Encoder(), both, places(windows), MIXINGS[TOP_MIXING].fit)
    assert tops[0] == pytest.approx(sum(expected[:64])) and tops[1] == pytest.approx(sum(expected[64:]))
    for w in range(2):
        assert bits[w] == pytest.approx(tops[w] + coded[w])
        assert known[w] == reorder(data[w], 4)[::4].hex().encode()  # every top byte's digits, fed as known


def test_unknown_mixing_is_refused() -> None:
    check_procedure("lmgc-llama-v1+cm-mix-v1")
    check_procedure("lmgc-llama-v1+cm-top-v1")
    check_procedure("lmgc-llama-v1+cm-top-v2")
    check_procedure("lmgc-llama-v1+cm-top-v3")
    check_procedure("lmgc-llama-v1+cm-top-v4")
    check_procedure("lockstep-kv-v1")
    with pytest.raises(UnsupportedError, match=r"cm-mix-v9"):
        check_procedure("lmgc-llama-v1+cm-mix-v9")


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "g.safetensors"
    save_file({"w": gradient_like((12, 16), 5), "b": gradient_like((40,), 6, torch.bfloat16)}, str(src))
    return src


@pytest.mark.parametrize(
    ("scheme", "mixing", "top_byte", "byte_order", "recorded"),
    [
        ("comma", True, True, "msb_first", "lmgc-int8-v1+cm-int-v2"),  # the default: the portable procedure
        ("comma", True, True, "stored", "lmgc-int8-v1+cm-int-v2"),
        ("comma", True, False, "msb_first", "lmgc-llama-v1+cm-mix-v1"),
        ("comma", False, True, "msb_first", "lmgc-llama-v1"),
        ("iso", True, True, "msb_first", "lmgc-llama-v1"),  # mixing needs hex text: iso archives are coded without it
    ],
)
def test_archive_records_mixing_and_decodes(
    tmp_path: Path, tiny_model: str, scheme: str, mixing: bool, top_byte: bool, byte_order: str, recorded: str
) -> None:
    src = _source(tmp_path)
    arc = tmp_path / "g.lmgc"
    opts = EncodeOptions(
        model=tiny_model,
        scheme=scheme,
        byte_order=byte_order,
        window_bytes=128,
        batch=4,
        fallback=False,
        mixing=mixing,
        top_byte=top_byte,
    )
    encode_file(src, arc, opts)
    with ArchiveReader(arc) as r:
        assert r.header.layout.procedure == recorded
    out = tmp_path / "out.safetensors"
    decode_file(arc, out, DecodeOptions(model=tiny_model))
    assert out.read_bytes() == src.read_bytes()
