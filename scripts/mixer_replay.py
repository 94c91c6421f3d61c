"""Choose a mixer's start and pace offline: one LM run per sample, many mixers replayed on its logits.

    .venv/bin/python scripts/mixer_replay.py dump DIR samples/vit_digits_bf16.safetensors ...
    .venv/bin/python scripts/mixer_replay.py replay DIR "cm-top-v3 w1=1,0,0,0,0@0.1 g=.1,0,0,0,.9@0.03+grid" NAME ...

``dump`` runs the default model (float32, comma, 512-byte windows, batch 16) over every LM chunk of
each sample in the top-byte token layout and pickles the restricted logits of every coded token
(a few minutes per sample on 2 cores). ``replay`` scores mixers on those logits: the ideal code
length of the coded tokens after quantization, plus the top-byte model's bits, as % of the tensor
data. A mixer is a name of ``mixing.MIXINGS`` or NAME=starting weights (LM, three count models,
digit model)@learning rate, optionally followed by ``+grid`` (the top-byte model's grid contexts),
``+zero`` (weights apart for zero values, starting as ``cm-top-v3``'s; ``+zero=W,W,W,W,W`` starts them
at W), ``+single`` (one token per digit: only for dumps made
with that layout, i.e. by ``cm-top-v3`` and later) and ``+fit`` (with ``+grid``: the row x column
fits of ``cm-top-v4``). This is how ``cm-top-v2`` and ``cm-top-v3`` were chosen
(docs/EXPERIMENTS.md "Mixer start and rate", "cm-top-v3"); real archives add the range coder's few bytes
per chunk. The top-byte bits are reported per mixer (a grid mixer's differ). Windows are planned
again from ``samples/NAME.safetensors`` (or ``samples/unseen/``), so dumps made before windows knew
their place in the tensor still replay.
"""

from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lmgc_format.lm import mixing
from lmgc_format.lm.alphabet import Alphabet
from lmgc_format.lm.coder import Encoder, code_bits, quantize
from lmgc_format.lm.lmchunk import _tokens_with_tops, _top_tokens, cache_capacity
from lmgc_format.lm.models import get
from lmgc_format.lm.predictor import make_predictor, procedure_for
from lmgc_format.lm.topbyte import encode_tops, places, split_tops
from lmgc_format.tensors.plan import Window, plan_chunks
from lmgc_format.tensors.serialize import get_scheme, reorder
from lmgc_format.tensors.source import read_layout

SCHEME = get_scheme("comma")


def _alphabet(lm: Any) -> Alphabet:
    return Alphabet.for_tokenizer(lm.tokenizer, SCHEME)


def dump(folder: Path, sources: list[str]) -> None:
    lm = get(None, "float32", None)
    alphabet = _alphabet(lm)
    predictor = make_predictor(lm, alphabet, procedure_for("auto", lm, True), True)
    table = _top_tokens(alphabet)
    folder.mkdir(parents=True, exist_ok=True)
    for src in sources:
        layout = read_layout(src)
        data = Path(src).read_bytes()[layout.data_offset :]
        chunks, t0 = [], time.monotonic()
        for chunk in plan_chunks(layout, 512, 16, 0):
            if not chunk.lm:
                continue
            windows = chunk.windows
            parts = [data[w.begin : w.end] for w in windows]
            layout_mixer = mixing.TokenMixer(alphabet, SCHEME, windows, mixing.TOP_MIXING)
            texts = [SCHEME.to_text(reorder(d, w.group), w.group) for w, d in zip(windows, parts, strict=True)]
            pairs = [
                _tokens_with_tops(
                    alphabet,
                    text,
                    layout_mixer.top_slots(i),
                    lm.tokenizer,
                    table,
                    layout_mixer.digit_slots(i) if layout_mixer.single_digits else None,
                )
                for i, text in enumerate(texts)
            ]
            symbols = [p[0] for p in pairs]
            known = [p[1] for p in pairs]
            lengths = [len(s) for s in symbols]
            predictor.reset(cache_capacity(SCHEME, windows))
            feed = [predictor.bos_id] * len(windows)
            steps = []
            for t in range(max(lengths)):
                logits = predictor.step(feed)
                coded = [i for i, n in enumerate(lengths) if t < n and not known[i][t]]
                steps.append(np.asarray(logits[coded], dtype=np.float64) if coded else None)
                feed = [alphabet.ids[symbols[i][t]] if t + 1 < n else predictor.bos_id for i, n in enumerate(lengths)]
            chunks.append((windows, parts, symbols, known, steps))
        name = Path(src).name.removesuffix(".safetensors")
        with open(folder / f"{name}.pkl", "wb") as f:
            pickle.dump(chunks, f)
        print(f"{name}: {time.monotonic() - t0:.0f} s", flush=True)


def _spec(text: str) -> tuple[str, mixing.Mixing]:
    if text in mixing.MIXINGS:
        return text, mixing.MIXINGS[text]
    name, _, rest = text.partition("=")
    rest, *flags = rest.split("+")
    weights, _, rate = rest.partition("@")
    initial = tuple(float(w) for w in weights.split(","))
    zero = (1.5, 0.0, 0.5, 0.0, 0.0) if "zero" in flags else None  # cm-top-v3's start for zero values
    for flag in flags:
        if flag.startswith("zero="):  # another start for them
            zero = tuple(float(w) for w in flag.removeprefix("zero=").split(","))
    spec = mixing.Mixing(
        name,
        True,
        initial,
        float(rate),
        grid="grid" in flags,
        zero_initial=zero,
        single_digits="single" in flags,
        fit="fit" in flags,
    )
    return name, spec


def _planned(name: str, count: int) -> list[tuple[Window, ...]]:
    """The LM chunks' windows of sample ``name`` as the plan gives them now."""
    for folder in ("samples", "samples/unseen"):
        path = Path(folder) / f"{name}.safetensors"
        if path.exists():
            chunks = [c.windows for c in plan_chunks(read_layout(str(path)), 512, 16, 0) if c.lm]
            assert len(chunks) == count, f"{path} plans {len(chunks)} LM chunks, the dump has {count}"
            return chunks
    raise SystemExit(f"no samples/{name}.safetensors to plan its windows from")


def replay(folder: Path, variants: str, names: list[str]) -> None:
    specs = dict(_spec(v) for v in variants.split())
    mixing.MIXINGS.update({s.name: s for s in specs.values()})  # this process only
    alphabet = _alphabet(get(None, "float32", None))
    for name in names:
        with open(folder / f"{name}.pkl", "rb") as f:
            chunks = pickle.load(f)
        totals = dict.fromkeys(specs, 0.0)
        top_bits = dict.fromkeys(specs, 0.0)
        nbytes = 0
        for windows, (_, parts, symbols, known, steps) in zip(_planned(name, len(chunks)), chunks, strict=True):
            nbytes += sum(map(len, parts))
            tops = b"".join(split_tops(d, w.group) for w, d in zip(windows, parts, strict=True))
            mixers = {k: mixing.TokenMixer(alphabet, SCHEME, windows, k) for k in specs}
            for k, spec in specs.items():
                top_bits[k] += sum(encode_tops(Encoder(), tops, places(windows) if spec.grid else None, spec.fit))
            lengths = [len(s) for s in symbols]
            for t, logits in enumerate(steps):
                active = [i for i, n in enumerate(lengths) if t < n]
                coded = [i for i in active if not known[i][t]]
                for k, mixer in mixers.items():
                    if coded:
                        syms = np.array([symbols[i][t] for i in coded])
                        totals[k] += code_bits(quantize(mixer.mix(coded, logits)), syms)
                        mixer.update(syms)
                    for i in active:
                        if known[i][t]:
                            mixer.feed(i, symbols[i][t])
        bits = 8 * nbytes
        cells = " ".join(
            f"{k} {100 * (v + top_bits[k]) / bits:.2f} (top {100 * top_bits[k] / bits:.2f})" for k, v in totals.items()
        )
        print(f"{name}: {cells} (% of tensor data)", flush=True)


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[1] not in ("dump", "replay"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "dump":
        dump(Path(sys.argv[2]), sys.argv[3:])
    else:
        replay(Path(sys.argv[2]), sys.argv[3], sys.argv[4:])


if __name__ == "__main__":
    main()
