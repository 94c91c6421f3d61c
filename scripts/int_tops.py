"""Bytes the portable procedure's top-byte part costs with the kernel's parameters: how cm-int-v2's were chosen.

    .venv/bin/python scripts/int_tops.py [--search]

The top bytes of every LM chunk of the 18 samples (the default layout: 512-byte windows, batch 16; no
filters), coded by the fast level's kernel as ``intchunk`` lays them out, with ``cm-fast-v1``'s parameters
(what ``cm-int-v1`` uses) and with ``intchunk.TOP_PARAMS_V2`` (``cm-int-v2``), each stream closed by the
kernel's 4-byte flush so that both count alike; beside them the ideal code length of the float
``cm-top-v4`` model on the same bytes, and without its rank-one value fit (the context the kernel
lacks). The 10 samples in samples/ are the tuning set, samples/unseen/ the held-out one. ``--search``
scores a grid of parameters on the tuning set and shows the best ten with their held-out bytes. No LM
involved: seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lmgc_format.cm import codec as cm
from lmgc_format.cm import fixed
from lmgc_format.cm.kernel import run
from lmgc_format.lm import topbyte
from lmgc_format.lm.coder import Encoder
from lmgc_format.lm.intchunk import TOP_PARAMS_V2, _item_sizes, _top_windows
from lmgc_format.lm.mixing import has_tops
from lmgc_format.lm.topbyte import encode_tops, places, split_tops
from lmgc_format.tensors.plan import Window, plan_chunks
from lmgc_format.tensors.source import read_layout

ROOT = Path(__file__).resolve().parents[1]
Stream = tuple[bool, list[Window], bytes, list[Window]]  # held out, top windows, top bytes, chunk windows


def streams() -> list[Stream]:
    out = []
    files = sorted((ROOT / "samples").glob("*.safetensors")) + sorted((ROOT / "samples/unseen").glob("*.safetensors"))
    for path in files:
        layout = read_layout(path)
        data = path.read_bytes()[layout.data_offset :]
        for chunk in plan_chunks(layout, 512, 16, 0):
            windows = list(chunk.windows)
            which = [has_tops(w) for w in windows]
            tops = b"".join(
                split_tops(data[w.begin : w.end], w.group) for w, t in zip(windows, which, strict=True) if t
            )
            if tops:
                out.append((path.parent.name == "unseen", _top_windows(windows, which), tops, windows))
    return out


def kernel_bytes(all_streams: Sequence[Stream], params: Sequence[int]) -> tuple[int, int]:
    """(tuning, held-out) bytes of the kernel's closed streams."""
    squash, stretch, rate = fixed.tables()
    total = [0, 0]
    for held, top_windows, tops, windows in all_streams:
        table = cm.window_table(top_windows, 0, _item_sizes(windows))
        out = np.empty(12 * len(tops) + 64, dtype=np.uint8)
        ends = np.zeros(len(top_windows), dtype=np.int64)
        buf = np.frombuffer(tops, dtype=np.uint8).copy()
        none = np.zeros(0, dtype=np.int64)  # a stream of its own, no cost report
        args = (table, squash, stretch, rate, np.array(params, dtype=np.int64), ends, none, none, none)
        total[held] += run(False, buf, out, *args)
    return total[0], total[1]


@contextlib.contextmanager
def _rank_one(keep: bool) -> Iterator[None]:
    """cm-top-v4 as it is, or with its ninth model (the value fit's sign and scale) seeing a constant."""
    if keep:
        yield
        return
    version = topbyte.VERSIONS[(True, True)]

    def contexts(model: topbyte.TopByteModel, m: int, n: int) -> topbyte.Contexts:
        return (*version.contexts(model, m, n)[:8], (m + 8, n))

    topbyte.VERSIONS[(True, True)] = dataclasses.replace(version, contexts=contexts)
    try:
        yield
    finally:
        topbyte.VERSIONS[(True, True)] = version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", action="store_true", help="score a grid of kernel parameters")
    args = ap.parse_args()
    all_streams = streams()
    print(f"{'':34s} {'tuning':>8s} {'held out':>8s}")
    for name, rank_one in (("cm-top-v4 (float, ideal)", True), ("  without its rank-one value fit", False)):
        v4 = [0.0, 0.0]
        with _rank_one(rank_one):
            for held, top_windows, tops, _ in all_streams:
                v4[held] += sum(encode_tops(Encoder(), tops, places(top_windows), fit=True)) / 8
        print(f"{name:34s} {v4[0]:8.0f} {v4[1]:8.0f}")
    for name, params in (
        ("cm-fast-v1 parameters (cm-int-v1)", cm.PARAMS),
        ("TOP_PARAMS_V2 (cm-int-v2)", TOP_PARAMS_V2),
    ):
        tune, held = kernel_bytes(all_streams, params)
        print(f"{name:34s} {tune:8d} {held:8d}   {params}")
    if args.search:
        grid = itertools.product((20, 40, 60, 127, 255), (10000, 12000, 16000), (12, 24, 48), (6, 7), (0, 1, 2, 3))
        scored = sorted((kernel_bytes(all_streams, p), p) for p in grid)
        for (tune, held), p in scored[:10]:
            print(f"{'':34s} {tune:8d} {held:8d}   {p}")


if __name__ == "__main__":
    main()
