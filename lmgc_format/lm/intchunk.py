"""Coding one LM chunk with the portable procedure ``lmgc-int8-v1+cm-int-v2`` (or ``+cm-int-v1``).

Two parts, both integer-exact (docs/DESIGN.md rule 6):

1. **Top bytes** (sign and exponent: the last stored byte of every whole value of two bytes or more)
   are coded first by the fast level's compiled context-mixing kernel (cm/kernel.py), as a tensor of
   one-byte values with the same rows, bias references and filter marks as the values they come
   from: the fixed-point core the fast level uses.
2. **Digits**: the windows run through the integer LM in lockstep, one token per step, reading the
   text the serializer makes (hex digits, separators). Every top-byte digit and every separator or
   prefix is known to both sides and only fed; every other hex digit is one coded symbol of 16,
   with frequencies from intmix.DigitMixer.

``cm-int-v2`` (lmgc 0.14, the default) codes both parts in **one stream**: the kernel codes the top
bytes with its own parameters (:data:`TOP_PARAMS_V2`) and leaves its binary coder open, and the digits
follow in the same coder as four binary decisions each (cm/binary.py), ended by one flush byte. The
payload is that stream and nothing else.

``cm-int-v1`` (lmgc 0.12-0.13) keeps two: one byte (0: the top bytes follow raw, 1: coded by the
kernel with ``cm-fast-v1``'s parameters), the length of the top-byte part as a LEB128 varint, that part
(ended by the kernel's 4-byte flush), then constriction's range coder's 32-bit words for the digits.
On the 9 bf16 samples that framing cost 7-10 bytes a chunk, most of what separated the portable
procedure from the float one (BENCHMARKS.md "Portable LM level").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lmgc_format.cm import codec as cm_codec
from lmgc_format.cm import varint
from lmgc_format.cm.binary import MASK32, BinaryDecoder, BinaryEncoder
from lmgc_format.container.procedures import PORTABLE_MIXING, PORTABLE_MIXINGS
from lmgc_format.errors import CancelledError, CorruptChunkError, UnsupportedError
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.callbacks import PrimeCallback, StepCallback
from lmgc_format.lm.coder import Decoder, Encoder, code_bits
from lmgc_format.lm.intmix import DIGITS, DigitMixer
from lmgc_format.lm.mixing import has_tops
from lmgc_format.lm.predictor import Predictor, Replay, teacher_feeds
from lmgc_format.lm.topbyte import split_tops, top_index
from lmgc_format.tensors.plan import Window
from lmgc_format.tensors.serialize import Scheme, reorder

NAME = PORTABLE_MIXING
# The kernel's parameters for the top-byte part in cm-int-v2 (kernel.P_*: count limit, mixer start and rate,
# APM rate and share): an LM chunk holds a few hundred to a few thousand top bytes, so the counts adapt
# faster than cm-fast-v1's (limit 20, not 255) and the APM, which needs many bytes to learn, gets 1/4 not
# 3/4. Chosen on the top bytes of the 10 tuning samples (3,134 -> 3,117 bytes), checked on the 8 held-out
# ones (2,898 -> 2,885): scripts/int_tops.py.
TOP_PARAMS_V2 = (20, 12000, 24, 6, 1)
_HEX = b"0123456789abcdef"
_CODED = -1  # a slot whose token is a coded digit


def digit_tokens(alphabet: Alphabet) -> list[int]:
    """The alphabet symbol of each single hex digit (the procedure needs one token per digit)."""
    out = []
    for ch in _HEX:
        tokens = alphabet.greedy(bytes([ch]))
        if len(tokens) != 1:
            raise UnsupportedError(f"{NAME}: the alphabet has no single token for the digit {chr(ch)!r}")
        out.append(tokens[0])
    return out


@dataclass(frozen=True)
class _Slots:
    """A window's token sequence: the symbol of each step (_CODED where a digit is coded), and for each
    coded step the value it belongs to and the digit's place in the value's text."""

    symbols: list[int]
    value: list[int]
    place: list[int]


def _slots(alphabet: Alphabet, scheme: Scheme, window: Window, tops: bytes | None, msb_first: bool,
           digit_syms: list[int]) -> _Slots:  # fmt: skip
    g = window.group
    top_at = top_index(g, msb_first) if tops is not None else -1
    literal_first = alphabet.greedy(scheme.prefix) if scheme.prefix else []
    literal = alphabet.greedy(scheme.separator + scheme.prefix) if scheme.separator + scheme.prefix else []
    symbols: list[int] = []
    value: list[int] = []
    place: list[int] = []
    for vi, start in enumerate(range(0, window.nbytes, g)):
        symbols += literal if vi else literal_first
        value += [-1] * len(literal if vi else literal_first)
        place += [-1] * len(literal if vi else literal_first)
        for b in range(min(g, window.nbytes - start)):
            if b == top_at:
                assert tops is not None
                t = tops[vi]
                symbols += [digit_syms[t >> 4], digit_syms[t & 15]]
                value += [-1, -1]
                place += [-1, -1]
            else:
                symbols += [_CODED, _CODED]
                value += [vi, vi]
                place += [2 * b, 2 * b + 1]
    return _Slots(symbols, value, place)


def _top_windows(windows: Sequence[Window], which: Sequence[bool]) -> list[Window]:
    """The windows of the top-byte stream: one byte per value, laid end to end."""
    out = []
    at = 0
    for w, t in zip(windows, which, strict=True):
        if t:
            n = w.nbytes // w.group
            out.append(replace(w, begin=at, end=at + n, group=1))
            at += n
    return out


def _item_sizes(windows: Sequence[Window]) -> list[int]:
    return [1] * (max((w.tensor for w in windows), default=0) + 1)


class _Digits:
    """Every window's digits so far (text order), for the count models' contexts."""

    def __init__(self, windows: Sequence[Window], tops: list[bytes | None], msb_first: bool) -> None:
        self.values = [np.full((w.nbytes // w.group + 1, 2 * w.group), -1, dtype=np.int64) for w in windows]
        self._tops = tops
        for i, (w, t) in enumerate(zip(windows, tops, strict=True)):
            if t is not None:
                at = top_index(w.group, msb_first)
                v = np.frombuffer(t, dtype=np.uint8).astype(np.int64)
                self.values[i][: len(v), 2 * at] = v >> 4
                self.values[i][: len(v), 2 * at + 1] = v & 15

    def context(self, row: int, vi: int, place: int) -> tuple[tuple[int, int], list[tuple[object, ...]]]:
        digits = self.values[row]
        t = self._tops[row]
        zero = int(t[vi] & 0x7F == 0) if t is not None else -1
        current = tuple(int(d) for d in digits[vi, : min(place, 4)])
        previous = tuple(int(d) for d in digits[vi - 1, place : place + 2]) if vi else ()
        return (place, zero), [(0, place), (1, place, current), (2, place, previous)]


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled")


def encode_windows(
    predictor: Predictor,
    alphabet: Alphabet,
    scheme: Scheme,
    windows: Sequence[Window],
    data: Sequence[bytes],
    msb_first: bool,
    cancel: threading.Event | None = None,
    on_step: StepCallback | None = None,
    prime: PrimeCallback | None = None,
    mixing: str = PORTABLE_MIXING,
) -> tuple[bytes, list[float], int]:
    """Code ``data`` (one bytes per window) with ``mixing`` (``cm-int-v2`` or ``cm-int-v1``); returns
    payload, ideal bits per window, tokens fed. ``prime`` gets every window's symbols before the first
    step (``bench --estimate``)."""
    if not scheme.hex:
        raise UnsupportedError(f"{mixing} needs a hex scheme")
    if mixing not in PORTABLE_MIXINGS:
        raise UnsupportedError(f"intchunk codes {' and '.join(PORTABLE_MIXINGS)}, not {mixing!r}")
    which = [has_tops(w) for w in windows]
    tops: list[bytes | None] = [
        split_tops(d, w.group) if t else None for w, d, t in zip(windows, data, which, strict=True)
    ]
    top_bytes = b"".join(t for t in tops if t is not None)
    top_windows = _top_windows(windows, which)
    bits = [0.0] * len(windows)
    # ``frame``: what precedes the digits' coder in the payload (cm-int-v1's kind byte, length and top bytes;
    # nothing in cm-int-v2, whose coder carries on from the kernel's bytes).
    enc: Encoder | BinaryEncoder
    if mixing == "cm-int-v1":
        coded_tops = cm_codec.encode(top_windows, 0, top_bytes, _item_sizes(windows)) if top_bytes else None
        top_part = top_bytes if coded_tops is None else coded_tops[0]
        frame = bytes([0 if coded_tops is None else 1]) + varint.write(len(top_part)) + top_part
        top_bits = coded_tops[1] if coded_tops is not None else [8.0 * len(t) for t in tops if t is not None]
        enc = Encoder()
    else:
        kernel_bytes, top_bits, x1, x2 = b"", [], 0, MASK32
        if top_bytes:
            kernel_bytes, top_bits, x1, x2 = cm_codec.encode_open(top_windows, 0, top_bytes, _item_sizes(windows),
                                                                  TOP_PARAMS_V2)  # fmt: skip
        frame = b""
        enc = BinaryEncoder(kernel_bytes, x1, x2)
    for i, b in zip((i for i, t in enumerate(which) if t), top_bits, strict=True):
        bits[i] = b
    digit_syms = digit_tokens(alphabet)
    slots = [_slots(alphabet, scheme, w, t, msb_first, digit_syms) for w, t in zip(windows, tops, strict=True)]
    # The coded digits of each window in slot order, read off its bytes in text order.
    truth: list[list[int]] = []
    for w, d, s in zip(windows, data, slots, strict=True):
        text = reorder(d, w.group) if msb_first else d
        truth.append(
            [
                (text[v * w.group + p // 2] >> (0 if p % 2 else 4)) & 15
                for v, p in zip(s.value, s.place, strict=True)
                if v >= 0
            ]
        )
    symbols = [
        [sym if sym != _CODED else digit_syms[next(coded)] for sym in sl.symbols]
        for sl, coded in ((sl, iter(tr)) for sl, tr in zip(slots, truth, strict=True))
    ]
    if prime is not None:
        prime(symbols)
    else:
        predictor = _read_whole(predictor, alphabet, symbols, lambda: _check(cancel))
    digits = _Digits(windows, tops, msb_first)
    tokens = _run(predictor, alphabet, windows, digits, slots, digit_syms, bits, cancel, on_step,
                  lambda freqs, rows: _encode_step(enc, freqs, rows, truth))  # fmt: skip
    return frame + enc.finish(), bits, tokens


class _Replayed:
    """The int8 engine's logits for whole windows, handed out step by step (the encoder's predictor)."""

    def __init__(self, bos_id: int, replay: Replay) -> None:
        self.bos_id = bos_id
        self.head_mode = "restricted"
        self._replay = replay

    def reset(self, capacity: int = 0) -> None:
        self._replay.reset()

    def step(self, tokens: list[int]) -> np.ndarray:
        return self._replay.step(tokens)


def _read_whole(predictor: Predictor, alphabet: Alphabet, symbols: list[list[int]],
                check: Callable[[], None] | None = None) -> Predictor:  # fmt: skip
    """The encoder knows every token in advance: an engine that computes the same integers however
    positions are batched (IntLlamaEngine.forward) reads each window whole, ~8x faster than stepping
    (BENCHMARKS.md "Portable LM level"); the decoder steps. Other predictors are left as they are."""
    forward = getattr(predictor, "forward", None)
    if forward is None:
        return predictor
    feeds = teacher_feeds(predictor.bos_id, list(alphabet.ids), symbols)
    return _Replayed(predictor.bos_id, Replay(feeds, forward(feeds, check), alphabet.size, np.int64))


def _encode_step(
    enc: Encoder | BinaryEncoder, freqs: np.ndarray, rows: list[tuple[int, int]], truth: list[list[int]]
) -> np.ndarray:
    symbols = np.array([truth[i][k] for i, k in rows], dtype=np.int64)
    enc.encode(symbols, freqs)
    return symbols


def _run(
    predictor: Predictor,
    alphabet: Alphabet,
    windows: Sequence[Window],
    digits: _Digits,
    slots: Sequence[_Slots],
    digit_syms: list[int],
    bits: list[float],
    cancel: threading.Event | None,
    on_step: StepCallback | None,
    code: Callable[[np.ndarray, list[tuple[int, int]]], np.ndarray],
) -> int:
    """The lockstep loop both directions share; ``code(freqs, [(row, k)])`` codes or decodes the rows'
    digits (the k-th coded digit of each row) and returns them; ``digits`` ends up holding them all."""
    mixer = DigitMixer()
    lengths = [len(s.symbols) for s in slots]
    steps = max(lengths)
    coded_so_far = [0] * len(windows)
    bos = predictor.bos_id
    ids = alphabet.ids
    feed = [bos] * len(windows)
    columns = np.array(digit_syms, dtype=np.int64)
    predictor.reset(max(lengths))
    for t in range(steps):
        _check(cancel)
        logits = predictor.step(feed)
        active = [i for i, n in enumerate(lengths) if t < n]
        rows = [i for i in active if slots[i].symbols[t] == _CODED]
        symbol_at = {i: slots[i].symbols[t] for i in active}
        if rows:
            keys, contexts = [], []
            for i in rows:
                key, ctx = digits.context(i, slots[i].value[t], slots[i].place[t])
                keys.append(key)
                contexts.append(ctx)
            freqs = mixer.mix(np.asarray(logits)[rows][:, columns], keys, contexts)
            got = code(freqs, [(i, coded_so_far[i]) for i in rows])
            mixer.update(got)
            for r, i in enumerate(rows):
                d = int(got[r])
                bits[i] += code_bits(freqs[r : r + 1], np.array([d]))
                digits.values[i][slots[i].value[t], slots[i].place[t]] = d
                coded_so_far[i] += 1
                symbol_at[i] = digit_syms[d]
        feed = [ids[symbol_at[i]] if t + 1 < n else bos for i, n in enumerate(lengths)]
        if on_step is not None:
            on_step((t + 1) / steps, len(active))
    return sum(lengths)


def _open_v1(payload: bytes, top_windows: list[Window], total: int, item_sizes: list[int]) -> tuple[bytes, Decoder]:
    """``cm-int-v1``'s framing: the top bytes (raw or by the kernel) and constriction's decoder of the digits."""
    if len(payload) < 2 or payload[0] > 1:
        raise CorruptChunkError("cm-int-v1 payload too short or of an unknown kind")
    top_len, start = varint.read(payload, 1, 5, "cm-int-v1 payload: bad length field")
    if start + top_len > len(payload):
        raise CorruptChunkError("cm-int-v1 top-byte part runs past the payload")
    top_part = payload[start : start + top_len]
    if payload[0] == 1:
        top_bytes = cm_codec.decode(top_windows, 0, top_part, total, item_sizes)
    elif len(top_part) == total:
        top_bytes = top_part
    else:
        raise CorruptChunkError(f"cm-int-v1 raw top bytes: {len(top_part)} bytes for {total} values")
    try:
        return top_bytes, Decoder(payload[start + top_len :])
    except ValueError as exc:
        raise CorruptChunkError(str(exc)) from None


def decode_windows(
    predictor: Predictor,
    alphabet: Alphabet,
    scheme: Scheme,
    windows: Sequence[Window],
    payload: bytes,
    msb_first: bool,
    cancel: threading.Event | None = None,
    on_step: StepCallback | None = None,
    mixing: str = PORTABLE_MIXING,
) -> list[bytes]:
    """Inverse of :func:`encode_windows`: the data bytes of every window."""
    if mixing not in PORTABLE_MIXINGS:
        raise UnsupportedError(f"intchunk decodes {' and '.join(PORTABLE_MIXINGS)}, not {mixing!r}")
    which = [has_tops(w) for w in windows]
    counts = [w.nbytes // w.group if t else 0 for w, t in zip(windows, which, strict=True)]
    total = sum(counts)
    top_windows = _top_windows(windows, which)
    dec: Decoder | BinaryDecoder
    if mixing == "cm-int-v1":
        top_bytes, dec = _open_v1(payload, top_windows, total, _item_sizes(windows))
    elif total:
        top_bytes, pos, (x1, x2, x) = cm_codec.decode_open(top_windows, 0, payload, total, _item_sizes(windows),
                                                           TOP_PARAMS_V2)  # fmt: skip
        dec = BinaryDecoder(payload, pos, x1, x2, x)
    else:
        top_bytes, dec = b"", BinaryDecoder(payload)
    tops: list[bytes | None] = []
    at = 0
    for n, t in zip(counts, which, strict=True):
        tops.append(top_bytes[at : at + n] if t else None)
        at += n
    digit_syms = digit_tokens(alphabet)
    slots = [_slots(alphabet, scheme, w, t, msb_first, digit_syms) for w, t in zip(windows, tops, strict=True)]

    def decode_step(freqs: np.ndarray, rows: list[tuple[int, int]]) -> np.ndarray:
        got = dec.decode(freqs)
        if got.min(initial=0) < 0 or got.max(initial=0) >= DIGITS:
            raise CorruptChunkError(f"{mixing} decoded a symbol outside the digits")
        return got

    digits = _Digits(windows, tops, msb_first)
    _run(predictor, alphabet, windows, digits, slots, digit_syms, [0.0] * len(windows), cancel, on_step, decode_step)
    if isinstance(dec, BinaryDecoder):
        dec.check_end(mixing)
    out = []
    for i, w in enumerate(windows):
        v = digits.values[i].reshape(-1)[: 2 * w.nbytes]  # text order, two digits a byte
        text = (v[0::2] * 16 + v[1::2]).astype(np.uint8).tobytes()
        out.append(reorder(text, w.group) if msb_first else text)
    return out
