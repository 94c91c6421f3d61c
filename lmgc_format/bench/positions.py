"""Bits the LM spends per byte position within a value, beside that position's order-0 entropy.

Shows where the model earns its keep: on fp32 gradients the sign/exponent byte
is very predictable, the low mantissa bytes are close to random. The numbers
are the ideal code length of the coder's own tables: it runs the encoder's
own loop (``lmchunk.encode_windows``: same procedure, tokens, quantization;
the range coder adds a few bytes per chunk). A token's bits are shared
equally among the text bytes it covers; a hex digit belongs to the byte it
encodes, a separator or prefix byte to the
"separator" row. Positions are in text order: with ``msb_first`` position 0 is
the most significant byte (sign and exponent of a float).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from lmgc_format.bench.estimate import TeacherForcedPredictor
from lmgc_format.errors import UnsupportedError
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.lmchunk import encode_windows
from lmgc_format.lm.mixing import mixing_for
from lmgc_format.lm.models import get
from lmgc_format.lm.predictor import make_predictor, procedure_for
from lmgc_format.lm.topbyte import top_index
from lmgc_format.tensors.plan import plan_chunks
from lmgc_format.tensors.serialize import get_scheme, reorder
from lmgc_format.tensors.source import read_layout

SEPARATOR = -1


@dataclass(frozen=True)
class PositionRow:
    position: int  # byte position within a group (text order), or SEPARATOR
    nbytes: int  # data bytes at this position (text bytes for the separator row)
    lm_bits: float  # bits the LM spent on them
    order0_bits: float  # what an ideal order-0 code of these bytes costs (entropy x count; 0 for separators)

    @property
    def lm_bits_per_byte(self) -> float:
        return self.lm_bits / self.nbytes if self.nbytes else 0.0

    @property
    def order0_bits_per_byte(self) -> float:
        return self.order0_bits / self.nbytes if self.nbytes else 0.0


def _char_positions(group_lens: list[int], scheme: Any) -> np.ndarray:
    """For every text byte of a window: the byte position it encodes, or SEPARATOR."""
    out: list[int] = []
    for gi, n in enumerate(group_lens):
        if gi:
            out += [SEPARATOR] * len(scheme.separator)
        out += [SEPARATOR] * len(scheme.prefix)
        for p in range(n):
            out += [p, p]
    return np.array(out, dtype=np.int64)


def _entropy_bits(values: bytes) -> float:
    counts = Counter(values)
    n = len(values)
    return -sum(c * math.log2(c / n) for c in counts.values()) if n else 0.0


def position_report(
    path: Path,
    *,
    model: str | None = None,
    scheme_name: str = "comma",
    msb_first: bool = True,
    window_bytes: int = 512,
    batch: int = 16,
    dtype: str = "float32",
    engine: str = "auto",
    mixing: bool = True,
    top_byte: bool = True,
    cancel: threading.Event | None = None,
    on_step: Callable[[int, int], None] | None = None,
    estimate: bool = False,
) -> list[PositionRow]:
    """Bits per byte position over every LM chunk of ``path``. ``estimate``: the LM reads each
    window in one forward pass (estimate.py) instead of one token per step: minutes become seconds,
    and the bits move only by the logits' last bits."""
    scheme = get_scheme(scheme_name)
    if not scheme.hex:
        raise UnsupportedError("byte positions are only defined for the hex schemes")
    layout = read_layout(path)
    with open(path, "rb") as f:
        f.seek(layout.data_offset)
        data = f.read()
    lm = get(model, dtype)
    alphabet = Alphabet.for_tokenizer(lm.tokenizer, scheme)
    forced = TeacherForcedPredictor(lm, alphabet) if estimate else None
    predictor = (
        forced if forced is not None else make_predictor(lm, alphabet, procedure_for(engine, lm, portable=False))
    )
    prime = None if forced is None else partial(forced.prime, cancel=cancel)
    chunks = [c for c in plan_chunks(layout, window_bytes, batch, 0) if c.lm]
    bits: dict[int, float] = {}
    separators = 0
    by_position: dict[int, bytearray] = {}
    for ci, chunk in enumerate(chunks):
        owners = []
        for w in chunk.windows:
            lens = [min(w.group, w.nbytes - i) for i in range(0, w.nbytes, w.group)]
            owners.append(_char_positions(lens, scheme))
            separators += int(np.count_nonzero(owners[-1] == SEPARATOR))
            ordered = reorder(data[w.begin : w.end], w.group) if msb_first else data[w.begin : w.end]
            for p in range(w.group):
                by_position.setdefault(p, bytearray()).extend(ordered[p :: w.group])
        offsets = [0] * len(chunk.windows)

        def share(
            window: int, sym: int, cost: float, owners: list[np.ndarray] = owners, offsets: list[int] = offsets
        ) -> None:
            # A token's bits go in equal parts to the text bytes it covers.
            width = len(alphabet.texts[sym])
            for pos in owners[window][offsets[window] : offsets[window] + width]:
                bits[int(pos)] = bits.get(int(pos), 0.0) + cost / width
            offsets[window] += width

        def top(window: int, cost: float, chunk: Any = chunk) -> None:
            # cm-top-v*: the window's top bytes, coded apart, belong to the top byte's position.
            p = top_index(chunk.windows[window].group, msb_first)
            bits[p] = bits.get(p, 0.0) + cost

        # The encoder's own coding loop: same procedure, tokens and quantized tables.
        encode_windows(
            predictor,
            alphabet,
            scheme,
            chunk.windows,
            [data[w.begin : w.end] for w in chunk.windows],
            lm.tokenizer,
            msb_first,
            cancel,
            on_token=share,
            mixing=mixing_for(scheme, mixing, top_byte),
            on_top=top,
            prime=prime,
        )
        assert offsets == [len(o) for o in owners]  # every text byte got its share
        if on_step is not None:
            on_step(ci + 1, len(chunks))
    rows = [PositionRow(p, len(v), bits.get(p, 0.0), _entropy_bits(bytes(v))) for p, v in sorted(by_position.items())]
    if separators:
        rows.append(PositionRow(SEPARATOR, separators, bits.get(SEPARATOR, 0.0), 0.0))
    return rows
