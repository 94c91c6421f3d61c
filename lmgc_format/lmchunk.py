"""Coding one LM chunk: B windows in lockstep, one range coder, identical steps both ways."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from .alphabet import Alphabet
from .coder import Decoder, Encoder, code_bits, quantize
from .errors import CancelledError, CorruptChunkError
from .mixing import TokenMixer
from .plan import Window
from .predictor import Predictor
from .serialize import Scheme, reorder

StepCallback = Callable[[float, int], None]  # (fraction of the chunk done, tokens this step)
TokenCallback = Callable[[int, int, float], None]  # (window, symbol, ideal bits it cost)


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
    mixing: bool = False,
) -> tuple[bytes, list[float], int]:
    """Range-code ``data`` (one bytes per window); returns payload, ideal bits per window, tokens.

    ``mixing``: combine the LM with the chunk's own statistics (mixing.py, procedure ``+cm-mix-v1``).
    """
    syms = [
        alphabet.tokenize(scheme.to_text(reorder(d, w.group) if msb_first else d, w.group), tokenizer)
        for w, d in zip(windows, data, strict=True)
    ]
    lengths = [len(s) for s in syms]
    steps = max(lengths)
    bos = predictor.bos_id
    ids = alphabet.ids
    feed = [bos] * len(windows)
    bits = [0.0] * len(windows)
    enc = Encoder()
    mixer = TokenMixer(alphabet, scheme, windows) if mixing else None
    predictor.reset(cache_capacity(scheme, windows))
    for t in range(steps):
        _check(cancel)
        logits = predictor.step(feed)
        active = [i for i, n in enumerate(lengths) if t < n]
        freqs = quantize(logits[active] if mixer is None else mixer.mix(active, logits[active]))
        symbols = np.array([syms[i][t] for i in active], dtype=np.int64)
        enc.encode(symbols, freqs)
        if mixer is not None:
            mixer.update(symbols)
        for row, i in enumerate(active):
            cost = code_bits(freqs[row : row + 1], symbols[row : row + 1])
            bits[i] += cost
            if on_token is not None:
                on_token(i, int(symbols[row]), cost)
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
    mixing: bool = False,
) -> list[bytes]:
    """Inverse of :func:`encode_windows`: the data bytes of every window."""
    try:
        dec = Decoder(payload)
    except ValueError as exc:
        raise CorruptChunkError(str(exc)) from None
    texts = [bytearray() for _ in windows]
    done = [False] * len(windows)
    bos = predictor.bos_id
    feed = [bos] * len(windows)
    limit = _step_limit(scheme, windows)
    expected = sum(scheme.text_length(w.nbytes, w.group) for w in windows)
    produced = 0
    mixer = TokenMixer(alphabet, scheme, windows) if mixing else None
    predictor.reset(cache_capacity(scheme, windows))
    steps = 0
    while not all(done):
        _check(cancel)
        steps += 1
        if steps > limit:
            raise CorruptChunkError("decoding ran past the window length")
        logits = predictor.step(feed)
        active = [i for i, d in enumerate(done) if not d]
        symbols = dec.decode(quantize(logits[active] if mixer is None else mixer.mix(active, logits[active])))
        if mixer is not None:
            mixer.update(symbols)
        for i, sym in zip(active, symbols, strict=True):
            piece = alphabet.texts[int(sym)]
            texts[i] += piece
            produced += len(piece)
            w = windows[i]
            done[i] = scheme.is_complete(texts[i], w.nbytes, w.group)
            feed[i] = bos if done[i] else alphabet.ids[int(sym)]
        if on_step is not None:
            on_step(min(1.0, produced / expected), len(active))
    out = [scheme.from_text(bytes(t), w.nbytes, w.group) for t, w in zip(texts, windows, strict=True)]
    return [reorder(d, w.group) for d, w in zip(out, windows, strict=True)] if msb_first else out
