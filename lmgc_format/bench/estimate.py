"""``bench --estimate``: what an archive's chunks would cost, from one forward pass per window.

The coder must run the LM one token per step (predictor.py): the decoder only learns
token t+1 after decoding token t. To *measure* a size nothing has to be decoded, and
the encoder knows every window's text in advance, so the LM can read each window
whole in one teacher-forced forward pass (measured before lmgc 0.1: 491 tok/s that way vs
18-172 tok/s stepping, on 2 cores). Everything after the LM is the encoder's own:
the same plan, tokens, mixer, top-byte model, quantization, range coder and per-chunk
choice of the smallest codec (chunk_encoder.ChunkEncoder, as the encoder). What differs is the last bits of
the logits (full-window vs incremental attention, and transformers vs the lmgc
engine), so a size can move by a few bytes; `tests/test_estimate.py` bounds that
against real archives. Such payloads could not be decoded and are never written.

The portable procedure (``lmgc-int8-v1+cm-int-v1``) needs none of this: its integers do not depend
on how positions are batched, so its encoder itself reads every window whole
(``IntLlamaEngine.forward``) and the estimate runs that encoder: its sizes are the archive's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from lmgc_format.container.constants import Codec
from lmgc_format.container.procedures import PORTABLE_MIXING
from lmgc_format.errors import CancelledError
from lmgc_format.events import EventSink, Finished, Progress, Started, ignore
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.lmsetup import prepare_lm
from lmgc_format.lm.mixing import mixing_for
from lmgc_format.lm.models import LoadedModel, get
from lmgc_format.lm.predictor import Replay, alphabet_head, split_procedure, teacher_feeds
from lmgc_format.pipeline.chunk_encoder import ChunkEncoder
from lmgc_format.pipeline.encode_job import EncodeOptions
from lmgc_format.pipeline.encode_lm import lm_procedure
from lmgc_format.pipeline.file_plan import plan_for
from lmgc_format.tensors.serialize import get_scheme
from lmgc_format.tensors.source import read_layout

PROCEDURE = "teacher-forced"  # what an estimate's sizes come from (never written into an archive)


class TeacherForcedPredictor:
    """A predictor whose windows are known in advance: :meth:`prime` runs one forward pass
    per window, :meth:`step` hands out the rows in the coder's order and checks that it is
    fed exactly the tokens it was primed with."""

    def __init__(self, lm: LoadedModel, alphabet: Alphabet, restricted_head: bool = True) -> None:
        import torch

        self._torch = torch
        self.model = lm.model
        self.device = lm.device
        self.bos_id = lm.info.bos_id
        self._ids = list(alphabet.ids)
        self._ids_t = torch.tensor(alphabet.ids, dtype=torch.long, device=self.device)
        self.base, self._head_w = alphabet_head(lm, self._ids_t, restricted_head)
        self.restricted = self._head_w is not None
        self._replay = Replay([], [], len(self._ids), np.float32)

    @property
    def head_mode(self) -> str:
        return "restricted" if self.restricted else "full"

    def _forward(self, feed: list[int]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            inp = torch.tensor([feed], dtype=torch.long, device=self.device)
            if self.restricted:
                assert self.base is not None and self._head_w is not None
                hidden = self.base(input_ids=inp, use_cache=False).last_hidden_state[0]
                logits = hidden @ self._head_w.T
            else:
                logits = self.model(input_ids=inp, use_cache=False).logits[0].index_select(1, self._ids_t)
            return logits.float().cpu().numpy()

    def prime(self, symbols: list[list[int]], cancel: threading.Event | None = None) -> int:
        """Run the LM over every window's symbols (BOS first); returns the tokens read."""
        feeds = teacher_feeds(self.bos_id, self._ids, symbols)
        rows = []
        for feed in feeds:
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            rows.append(self._forward(feed) if feed else np.zeros((0, len(self._ids)), np.float32))
        self._replay = Replay(feeds, rows, len(self._ids), np.float32)
        return sum(map(len, feeds))

    def reset(self, capacity: int = 256) -> None:
        self._replay.reset()

    def step(self, tokens: list[int]) -> np.ndarray:
        """The primed rows of this step (float32 logits)."""
        return self._replay.step(tokens)


@dataclass(frozen=True)
class Estimate:
    data_bytes: int  # bytes of the safetensors data section
    coded_bytes: int  # what its chunks would cost (sum of the payloads the encoder would choose)
    tokens: int  # LM tokens read
    seconds: float
    procedure: str  # "teacher-forced" with the mixing the encoder would record ("+cm-top-v4"), or the exact one
    codecs: dict[str, int] = field(default_factory=dict)  # codec name -> chunk count


def estimate_file(
    source: str | Path,
    options: EncodeOptions | None = None,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    model: LoadedModel | None = None,
) -> Estimate:
    """The chunk payload bytes ``encode_file(source, ..., options)`` would write, estimated."""
    opts = options or EncodeOptions()
    opts.check()
    start = time.monotonic()
    layout = read_layout(source)
    plan, forward, _ = plan_for(source, layout, opts)
    scheme = get_scheme(opts.scheme)
    mixing = mixing_for(scheme, opts.mixing, opts.top_byte)
    procedure = PROCEDURE + ("+" + mixing if mixing else "")
    setup = None
    if any(c.lm for c in plan):
        lm = model or get(opts.model, opts.dtype, opts.device)
        real = lm_procedure(opts, lm)
        mixing = split_procedure(real)[1]
        if mixing == PORTABLE_MIXING:
            # The portable procedure's engine is exact in any batching: the encoder itself reads each window
            # whole (IntLlamaEngine.forward), so its estimate is the archive's payload to the byte.
            procedure = real
            setup = prepare_lm(lm, scheme.name, real, opts.restricted_head)
        else:
            procedure = PROCEDURE + ("+" + mixing if mixing else "")
            setup = prepare_lm(
                lm,
                scheme.name,
                procedure,
                predictor=lambda lm, alphabet: TeacherForcedPredictor(lm, alphabet, opts.restricted_head),
            )
    primed = setup is not None and isinstance(setup.predictor, TeacherForcedPredictor)
    prime = partial(setup.predictor.prime, cancel=cancel) if setup and primed else None  # type: ignore[attr-defined]
    chunks = ChunkEncoder(
        layout, setup, msb_first=opts.byte_order == "msb_first", fallback=opts.fallback, cancel=cancel, prime=prime
    )
    on_event(Started("estimate", str(source), layout.data_size))
    coded = tokens = done = 0
    codecs: dict[str, int] = {}
    with open(source, "rb") as f:
        for chunk in plan:
            f.seek(layout.data_offset + chunk.begin)
            raw = f.read(chunk.nbytes)

            def step(_fraction: float, n: int) -> None:
                nonlocal tokens
                tokens += n

            codec, payload, _ = chunks.code(chunk, raw, forward.apply(chunk.begin, raw), step)
            codecs[Codec.NAMES[codec]] = codecs.get(Codec.NAMES[codec], 0) + 1
            coded += len(payload)
            done += chunk.nbytes
            on_event(Progress("estimate", done, layout.data_size, tokens))
    seconds = time.monotonic() - start
    on_event(Finished("estimate", layout.file_size, coded, "", seconds, tokens))
    return Estimate(layout.data_size, coded, tokens, seconds, procedure, codecs)
