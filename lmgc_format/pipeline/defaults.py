"""The option defaults and ranges that the library, the CLI and the app share, in one place.

The command line builds its options from these at start-up, so this module imports nothing heavy;
the modules that act on an option (encoder.py, predictor.py, levels.py, models.py, serialize.py)
take their defaults from here or are re-exported by it.
"""

from __future__ import annotations

from lmgc_format.container.constants import MAX_BATCH, MAX_BYTES_PER_GROUP, MAX_WINDOW_BYTES
from lmgc_format.lm.models import DEFAULT_DTYPE, DEFAULT_MODEL, DTYPES
from lmgc_format.pipeline.levels import DEFAULT_LEVEL, DEFAULT_TIME_BUDGET, LEVELS
from lmgc_format.tensors.serialize import BYTE_ORDERS, DEFAULT_BYTE_ORDER, DEFAULT_SCHEME, SCHEMES

# The LM level's window layout (EXPERIMENTS.md "Speed"): data bytes per window, windows
# run in lockstep (one chunk).
DEFAULT_WINDOW_BYTES = 512
DEFAULT_BATCH = 16
# LM engines: lmgc's own Llama-family engine, transformers (the reference), or auto (lmgc's where the
# model fits it); predictor.ENGINES names their procedures.
ENGINE_CHOICES = ("auto", "int8", "lmgc", "transformers")
DEFAULT_ENGINE = "auto"

__all__ = [
    "BYTE_ORDERS",
    "DEFAULT_BATCH",
    "DEFAULT_BYTE_ORDER",
    "DEFAULT_DTYPE",
    "DEFAULT_ENGINE",
    "DEFAULT_LEVEL",
    "DEFAULT_MODEL",
    "DEFAULT_SCHEME",
    "DEFAULT_TIME_BUDGET",
    "DEFAULT_WINDOW_BYTES",
    "DTYPES",
    "ENGINE_CHOICES",
    "LEVELS",
    "MAX_BATCH",
    "MAX_BYTES_PER_GROUP",
    "MAX_WINDOW_BYTES",
    "SCHEMES",
]
