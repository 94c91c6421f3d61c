"""Coding the chunks of one file at the LM level, one at a time: the mirror of decoder.ChunkDecoder.

An LM chunk is coded by the setup's predictor (lmchunk.encode_windows), here or in a worker pool
(parallel.py), and then, like every chunk, stored with the smallest of the LM payload, zstd, the
shuffles and raw (:func:`choose_codec`). The encoder (encoder.py) and ``bench --estimate``
(bench/estimate.py) both code through it, so an estimate makes the encoder's choices.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import zstandard

from lmgc_format.cm import ints_codec
from lmgc_format.container import lzma2
from lmgc_format.container.constants import Codec
from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.callbacks import PrimeCallback, StepCallback
from lmgc_format.lm.lmchunk import encode_windows
from lmgc_format.lm.lmsetup import LmSetup
from lmgc_format.pipeline.parallel import Pool, result
from lmgc_format.tensors.plan import ChunkPlan, value_size
from lmgc_format.tensors.source import SourceLayout
from lmgc_format.transforms.shuffle import bit_shuffle, byte_shuffle

ZSTD_LEVEL = 19


def choose_codec(
    raw: bytes,
    lm_payload: bytes | None,
    fallback: bool = True,
    value_size: int = 1,
    ints: bytes | None = None,
    xz: bool = False,
) -> tuple[int, bytes]:
    """Smallest of LM, zstd, shuffle+zstd, bitshuffle+zstd, the integer codec (``ints``: its payload, for
    chunks of integer tensors), lzma2 (``xz``: in small files) and raw (docs/DESIGN.md rule 4: never let the
    LM make a chunk bigger); ties go to the lower codec number. ``fallback=False`` keeps the LM payload (to
    measure the LM). The shuffles win on dense float chunks: BENCHMARKS.md."""
    if lm_payload is not None and not fallback:
        return Codec.LM, lm_payload
    zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    options = [(len(raw), Codec.RAW, raw)]
    packed = zstd.compress(raw)
    options.append((len(packed), Codec.ZSTD, packed))
    if value_size > 1:
        for codec, shuffle in ((Codec.SHUFFLE_ZSTD, byte_shuffle), (Codec.BITSHUFFLE_ZSTD, bit_shuffle)):
            packed = zstd.compress(shuffle(raw, value_size))
            options.append((len(packed), codec, packed))
    if lm_payload is not None:
        options.append((len(lm_payload), Codec.LM, lm_payload))
    if ints is not None:
        options.append((len(ints), Codec.CM_INTS, ints))
    if xz:
        packed = lzma2.compress(raw, value_size)
        options.append((len(packed), Codec.LZMA2, packed))
    _, codec, payload = min(options, key=lambda o: (o[0], o[1]))
    return codec, payload


class ChunkEncoder:
    """Everything needed to code the chunks of one file, one at a time.

    ``setup`` is None when no chunk is an LM chunk. With a ``pool``, :meth:`submit` starts an LM chunk
    in a worker ahead of time (the encoder keeps ``lookahead`` chunks in flight) and :meth:`code` takes
    its result; the bytes are the same as coding here.
    """

    def __init__(
        self,
        layout: SourceLayout,
        setup: LmSetup | None,
        *,
        msb_first: bool,
        fallback: bool = True,
        pool: Pool | None = None,
        cancel: threading.Event | None = None,
        prime: PrimeCallback | None = None,
    ) -> None:
        self.layout, self.setup, self.msb_first, self.fallback = layout, setup, msb_first, fallback
        self.pool, self.cancel, self.prime = pool, cancel, prime
        self._pending: dict[int, tuple[Future[Any], bytes]] = {}  # chunk -> (its future, the bytes it was given)

    @property
    def lookahead(self) -> int:
        """How many LM chunks are worth having in flight."""
        return 2 * self.pool.workers if self.pool is not None else 0

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, chunk: ChunkPlan, raw: bytes, stored: bytes) -> None:
        """With a pool: start coding LM chunk ``chunk`` (``raw``: its source bytes, ``stored``: what the
        codecs see) in a worker."""
        if self.pool is None or not chunk.lm or chunk.index in self._pending:
            return
        parts = [stored[w.begin - chunk.begin : w.end - chunk.begin] for w in chunk.windows]
        self._pending[chunk.index] = (self.pool.encode(chunk.windows, parts, self.msb_first), raw)

    def code(self, chunk: ChunkPlan, raw: bytes, stored: bytes, step: StepCallback) -> tuple[int, bytes, list[float]]:
        """(codec, payload, the LM's ideal bits per window) of ``chunk``; ``step(fraction, tokens)`` reports
        progress inside an LM chunk."""
        lm_payload: bytes | None = None
        window_bits: list[float] = []
        if chunk.lm:
            if self.setup is None:
                raise UnsupportedError("an LM chunk needs a model")  # the encoder loads one when any chunk is
            if self.pool is not None:
                self.submit(chunk, raw, stored)
                future, given = self._pending.pop(chunk.index)
                if given != raw:
                    raise UnsupportedError("the file changed while being read")
                lm_payload, window_bits, tokens = result(future, self.cancel)
                step(1.0, tokens)
            else:
                s = self.setup
                data = [stored[w.begin - chunk.begin : w.end - chunk.begin] for w in chunk.windows]
                lm_payload, window_bits, _ = encode_windows(
                    s.predictor,
                    s.alphabet,
                    s.scheme,
                    chunk.windows,
                    data,
                    s.lm.tokenizer,
                    self.msb_first,
                    self.cancel,
                    step,
                    mixing=s.mixing,
                    prime=self.prime,
                )
        ints = ints_codec.encode_chunk(chunk, self.layout, stored)
        small = self.layout.data_size <= lzma2.SMALL_FILES
        codec, payload = choose_codec(stored, lm_payload, self.fallback, value_size(chunk, self.layout), ints, small)
        return codec, payload, window_bits
