"""Compression levels: ``quick`` (static rANS tables over each value's fields, hundreds of MB/s),
``fast`` (the compiled context-mixing model, no LM), ``max`` (the LM with the whole modelling stack), and
``auto``, which picks fast or max from the file's size before any work.

The LM level codes a few dozen bytes of tensor data per second on a 2-core CPU
(EXPERIMENTS.md "Speed"); the fast level megabytes. ``auto`` runs the LM level only where it can pay:
its expected saving (about 1 % of the float data) must exceed the bytes its header adds (the model
record), and its projected time (from the bytes of float tensors and the measured rate) must fit the
time budget; the encoder then codes the fast level beside it and keeps the smaller archive
(encoder.py). Otherwise the fast level, saying why in one line. The rates and shares are measurements
of one kind of machine and of the shipped samples, not promises: the message says "est.".
"""

from __future__ import annotations

from dataclasses import dataclass

from lmgc_format.errors import UnsupportedError

LEVELS = ("auto", "quick", "fast", "max")
DEFAULT_LEVEL = "auto"
DEFAULT_TIME_BUDGET = 180.0  # seconds the LM level may take under auto
# Measured on 2 cores, no GPU: the portable LM procedure (the default) encodes 70-110 B/s of tensor data
# (each window read whole, lmgc 0.13: BENCHMARKS.md "Portable LM level"; it decodes at ~35 B/s, stepping);
# the float procedures 22-45 B/s per direction (lmgc 0.9, EXPERIMENTS.md "Speed"); the fast level 2.3-2.8 MB/s
# per worker thread.
LM_BYTES_PER_SECOND = 80.0
FLOAT_LM_BYTES_PER_SECOND = 25.0
FAST_BYTES_PER_SECOND = 2.0e6
# What the LM adds over the fast level: 39,296 against 39,741 bytes of payload on the 18 samples, 1.1 % of
# the fast level's payload, 0.7 % of the float data (BENCHMARKS.md "The fast level on the shipped
# samples"); taken as 1 % of the float data, the generous side. And what its archive's header adds over the
# fast level's, the model record and runtime: 397 bytes on ConvNet fp32 (lmgc 0.15.0, `inspect`: 645 bytes
# beyond the coded data at the LM level, 248 at the fast level).
LM_GAIN_SHARE = 0.01
LM_HEADER_BYTES = 400
# The fast level's window layout: large windows (the model learns across a whole chunk), chunks of up to 4 MiB
# so that workers share a file and memory stays bounded. 1 MiB chunks for files up to 16 MiB let 2 threads
# share a 5-10 MB file evenly (a 10 MB fp32 gradient encoded in 2.7 s instead of 2.9-3.9) but cost the
# corpus's mostly-zero embedding gradients 10-21 % (zstd and the model lose context at each cut): not taken
# (BENCHMARKS.md "Scale").
FAST_WINDOW_BYTES = 1 << 18
FAST_BATCH = 16


@dataclass(frozen=True)
class LevelChoice:
    level: str  # "quick", "fast" or "max"
    requested: str
    lm_seconds: float  # projected time of the LM level
    fast_seconds: float  # projected time of the fast level
    message: str  # one line for the user ("" when the level was asked for explicitly)


def human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


def choose_level(
    float_bytes: int,
    requested: str = DEFAULT_LEVEL,
    budget: float = DEFAULT_TIME_BUDGET,
    workers: int = 1,
    lm_rate: float = LM_BYTES_PER_SECOND,
    smallest: bool = True,
) -> LevelChoice:
    """The level to use for ``float_bytes`` of float tensor data; ``lm_rate``: the LM procedure's bytes a
    second (LM_BYTES_PER_SECOND for the portable default, FLOAT_LM_BYTES_PER_SECOND for the float ones).
    ``smallest``: the smallest archive is wanted (the encoder's fallback), so the LM runs only where it can
    pay for its header; off (``--no-fallback``, measuring the LM), only the time budget counts."""
    if requested not in LEVELS:
        raise UnsupportedError(f"level must be one of {', '.join(LEVELS)}")
    if budget <= 0:
        raise UnsupportedError("the time budget must be positive")
    lm = float_bytes / lm_rate
    fast = float_bytes / (FAST_BYTES_PER_SECOND * max(1, workers))
    if requested != "auto":
        return LevelChoice(requested, requested, lm, fast, "")
    size = _human_bytes(float_bytes)
    gain = LM_GAIN_SHARE * float_bytes
    if smallest and gain <= LM_HEADER_BYTES:
        msg = (
            f"using the fast level: the LM level would save about {gain:.0f} bytes est. (~1 % of {size} of "
            f"tensors), less than the ~{LM_HEADER_BYTES} bytes its header adds; --level max to insist"
        )
        return LevelChoice("fast", requested, lm, fast, msg)
    if lm <= budget:
        msg = (
            f"LM level: ~{human_seconds(lm)} est. for {size} of tensors (budget {human_seconds(budget)}); "
            "the fast level's archive is kept if it is smaller"
        )
        return LevelChoice("max", requested, lm, fast, msg)
    msg = (
        f"LM level would take ~{human_seconds(lm)} for {size}; using the fast level "
        f"(est. {human_seconds(max(fast, 1.0))}); --level max to insist"
    )
    return LevelChoice("fast", requested, lm, fast, msg)
