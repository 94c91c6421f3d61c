"""Coding one LM chunk: B windows in lockstep, one range coder, identical steps both ways."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from lmgc_format.container.procedures import PORTABLE_MIXINGS
from lmgc_format.errors import CancelledError, CorruptChunkError
from lmgc_format.lm import intchunk
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.callbacks import PrimeCallback, StepCallback, TokenCallback, TopCallback
from lmgc_format.lm.coder import Decoder, Encoder, code_bits, quantize
from lmgc_format.lm.mixing import MIXINGS, TokenMixer
from lmgc_format.lm.predictor import Predictor
from lmgc_format.lm.topbyte import Place, decode_tops, encode_tops, places, split_tops
from lmgc_format.tensors.plan import Window
from lmgc_format.tensors.serialize import Scheme, reorder


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError("cancelled")


def cache_capacity(scheme: Scheme, windows: Sequence[Window]) -> int:
    """KV-cache positions for a chunk, from the plan alone: the same on both sides.

    A valid window takes at most as many steps as its text has bytes (a token is
    >= 1 byte): the hex text length, or 2 bytes per latin-1 character. Both sides
    allocate exactly this, so even the memory layout the kernels see (strides) is
    identical; a corrupt stream that runs longer grows the cache the same way.
    """
    return max(scheme.text_length(w.nbytes, w.group) if scheme.hex else 2 * w.nbytes for w in windows)


def _step_limit(scheme: Scheme, windows: Sequence[Window]) -> int:
    # Loose on purpose: it only stops a corrupt stream from running forever.
    return max(2 * w.nbytes + scheme.text_length(w.nbytes, w.group) for w in windows)


def _mixer(
    alphabet: Alphabet, scheme: Scheme, windows: Sequence[Window], mixing: str | None, msb_first: bool
) -> TokenMixer | None:
    if mixing is None:
        return None
    if mixing not in MIXINGS:  # cm-int-v1 never gets here: intchunk.py codes it
        raise ValueError(f"unknown mixing {mixing!r}")
    return TokenMixer(alphabet, scheme, windows, mixing, msb_first)


def _places(windows: Sequence[Window], mixer: TokenMixer) -> list[Place] | None:
    """Where each coded top byte sits in its tensor, for a mixing whose top-byte model uses the grid."""
    if not mixer.grid:
        return None
    return places([w for w, t in zip(windows, mixer.tops, strict=True) if t])


def _top_tokens(alphabet: Alphabet) -> list[list[int]]:
    """The known tokens of each top byte's two digits: greedy over the alphabet, so the decoder
    needs no tokenizer for them (the alphabet's digest is in the header)."""
    return [alphabet.greedy(b"%02x" % b) for b in range(256)]


def _tokens_with_tops(
    alphabet: Alphabet,
    text: bytes,
    top_slots: np.ndarray,
    tokenizer: object | None,
    known: list[list[int]],
    digit_slots: np.ndarray | None = None,
) -> tuple[list[int], list[bool]]:
    """Symbols for a window whose top-byte digits are known text, and which of them are known.

    Top-byte digits become their own tokens (``known``); the text between them is
    tokenized on its own, so no coded token reaches into a top byte. With ``digit_slots``
    (``cm-top-v3`` and later) every coded digit is a token of its own too, and only the literal text
    between digits (separators, prefixes) goes through the tokenizer.
    """
    kind = top_slots.astype(np.int8) * 2
    if digit_slots is not None:
        kind = kind + digit_slots.astype(np.int8)  # 0 literal, 1 coded digit, 2 top-byte digit
    syms: list[int] = []
    is_known: list[bool] = []
    pos = 0
    edges = np.flatnonzero(np.diff(kind)) + 1
    for end in [*edges.tolist(), len(text)]:
        run = text[pos:end]
        if run:
            if kind[pos] == 2:
                part = known[int(run, 16)]
            elif kind[pos] == 1 and digit_slots is not None:
                part = [symbol for byte in run for symbol in alphabet.greedy(bytes([byte]))]
            else:
                part = alphabet.tokenize(run, tokenizer)
            syms += part
            is_known += [bool(kind[pos] == 2)] * len(part)
        pos = end
    return syms, is_known


def _symbols(
    alphabet: Alphabet,
    scheme: Scheme,
    windows: Sequence[Window],
    data: Sequence[bytes],
    tokenizer: object | None,
    msb_first: bool,
    mixer: TokenMixer | None,
) -> tuple[list[list[int]], list[list[bool]] | None]:
    """Every window's symbols (the tokens the LM reads, in order), and which of them the
    coder does not code (known top-byte digits; None when every token is coded)."""
    texts = [
        scheme.to_text(reorder(d, w.group) if msb_first else d, w.group) for w, d in zip(windows, data, strict=True)
    ]
    if mixer is None or not (any(mixer.tops) or mixer.single_digits):
        return [alphabet.tokenize(x, tokenizer) for x in texts], None
    table = _top_tokens(alphabet)
    pairs = [
        _tokens_with_tops(
            alphabet, x, mixer.top_slots(i), tokenizer, table, mixer.digit_slots(i) if mixer.single_digits else None
        )
        for i, x in enumerate(texts)
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def encode_windows(
    predictor: Predictor,
    alphabet: Alphabet,
    scheme: Scheme,
    windows: Sequence[Window],
    data: Sequence[bytes],
    tokenizer: object | None,
    msb_first: bool,
    cancel: threading.Event | None = None,
    on_step: StepCallback | None = None,
    on_token: TokenCallback | None = None,
    mixing: str | None = None,
    on_top: TopCallback | None = None,
    prime: PrimeCallback | None = None,
) -> tuple[bytes, list[float], int]:
    """Range-code ``data`` (one bytes per window); returns payload, ideal bits per window, tokens.

    ``mixing``: None (the LM alone) or a name of mixing.MIXINGS: ``cm-mix-v1`` combines
    the LM with the chunk's own statistics; ``cm-top-v1`` .. ``cm-top-v4`` also code every
    value's top byte apart first (topbyte.py) and feed its digits to the LM as known tokens.
    ``prime`` gets every window's symbols before the first step: the teacher-forced
    predictor of ``bench --estimate`` (bench/estimate.py) reads them whole.
    """
    if mixing in PORTABLE_MIXINGS:
        return intchunk.encode_windows(
            predictor, alphabet, scheme, windows, data, msb_first, cancel, on_step, prime, mixing=mixing
        )
    mixer = _mixer(alphabet, scheme, windows, mixing, msb_first)
    enc = Encoder()
    bits = [0.0] * len(windows)
    if mixer is not None and any(mixer.tops):
        tops = [split_tops(d, w.group) if t else b"" for w, d, t in zip(windows, data, mixer.tops, strict=True)]
        costs = encode_tops(enc, b"".join(tops), _places(windows, mixer), mixer.fit)
        at = 0
        for i, window_tops in enumerate(tops):
            bits[i] = sum(costs[at : at + len(window_tops)])
            at += len(window_tops)
            if on_top is not None and window_tops:
                on_top(i, bits[i])
    syms, known = _symbols(alphabet, scheme, windows, data, tokenizer, msb_first, mixer)
    if prime is not None:
        prime(syms)
    lengths = [len(s) for s in syms]
    steps = max(lengths)
    bos = predictor.bos_id
    ids = alphabet.ids
    feed = [bos] * len(windows)
    predictor.reset(cache_capacity(scheme, windows))
    for t in range(steps):
        _check(cancel)
        logits = predictor.step(feed)
        active = [i for i, n in enumerate(lengths) if t < n]
        coded = [i for i in active if known is None or not known[i][t]]
        if coded:
            freqs = quantize(logits[coded] if mixer is None else mixer.mix(coded, logits[coded]))
            symbols = np.array([syms[i][t] for i in coded], dtype=np.int64)
            enc.encode(symbols, freqs)
            if mixer is not None:
                mixer.update(symbols)
            for row, i in enumerate(coded):
                cost = code_bits(freqs[row : row + 1], symbols[row : row + 1])
                bits[i] += cost
                if on_token is not None:
                    on_token(i, int(symbols[row]), cost)
        if known is not None:
            assert mixer is not None
            for i in active:
                if known[i][t]:
                    mixer.feed(i, syms[i][t])
                    if on_token is not None:
                        on_token(i, syms[i][t], 0.0)
        feed = [ids[syms[i][t]] if t + 1 < n else bos for i, n in enumerate(lengths)]
        if on_step is not None:
            on_step((t + 1) / steps, len(active))
    return enc.finish(), bits, sum(lengths)


def decode_windows(
    predictor: Predictor,
    alphabet: Alphabet,
    scheme: Scheme,
    windows: Sequence[Window],
    payload: bytes,
    msb_first: bool,
    cancel: threading.Event | None = None,
    on_step: StepCallback | None = None,
    mixing: str | None = None,
) -> list[bytes]:
    """Inverse of :func:`encode_windows`: the data bytes of every window."""
    if mixing in PORTABLE_MIXINGS:
        return intchunk.decode_windows(
            predictor, alphabet, scheme, windows, payload, msb_first, cancel, on_step, mixing=mixing
        )
    try:
        dec = Decoder(payload)
    except ValueError as exc:
        raise CorruptChunkError(str(exc)) from None
    mixer = _mixer(alphabet, scheme, windows, mixing, msb_first)
    tops: list[bytes] = []
    table: list[list[int]] = []
    queued: list[list[int]] = [[] for _ in windows]  # known tokens still to feed, per window
    if mixer is not None and any(mixer.tops):
        counts = [w.nbytes // w.group if t else 0 for w, t in zip(windows, mixer.tops, strict=True)]
        everything = decode_tops(dec, sum(counts), _places(windows, mixer), mixer.fit)
        at = 0
        for n in counts:
            tops.append(everything[at : at + n])
            at += n
        table = _top_tokens(alphabet)
    texts = [bytearray() for _ in windows]
    done = [False] * len(windows)
    bos = predictor.bos_id
    feed = [bos] * len(windows)
    limit = _step_limit(scheme, windows)
    expected = sum(scheme.text_length(w.nbytes, w.group) for w in windows)
    produced = 0
    predictor.reset(cache_capacity(scheme, windows))
    steps = 0
    while not all(done):
        _check(cancel)
        steps += 1
        if steps > limit:
            raise CorruptChunkError("decoding ran past the window length")
        logits = predictor.step(feed)
        active = [i for i, d in enumerate(done) if not d]
        step_symbols: dict[int, int] = {}
        if tops:
            assert mixer is not None
            for i in active:
                if not queued[i] and mixer.at_top(i):
                    queued[i] = list(table[tops[i][mixer.value_index(i)]])
                if queued[i]:
                    step_symbols[i] = queued[i].pop(0)
        known = set(step_symbols)
        coded = [i for i in active if i not in known]
        if coded:
            symbols = dec.decode(quantize(logits[coded] if mixer is None else mixer.mix(coded, logits[coded])))
            if mixer is not None:
                mixer.update(symbols)
            step_symbols.update(zip(coded, (int(s) for s in symbols), strict=True))
        for i in active:
            sym = step_symbols[i]
            if i in known:
                assert mixer is not None
                mixer.feed(i, sym)
            piece = alphabet.texts[sym]
            texts[i] += piece
            produced += len(piece)
            w = windows[i]
            done[i] = scheme.is_complete(texts[i], w.nbytes, w.group)
            feed[i] = bos if done[i] else alphabet.ids[sym]
        if on_step is not None:
            on_step(min(1.0, produced / expected), len(active))
    out = [scheme.from_text(bytes(t), w.nbytes, w.group) for t, w in zip(texts, windows, strict=True)]
    return [reorder(d, w.group) for d, w in zip(out, windows, strict=True)] if msb_first else out
