"""Options shared by several commands. Defaults and ranges come from the core (lmgc_format.pipeline.defaults),
so the command line cannot drift from the library."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lmgc_format.pipeline.defaults import (
    BYTE_ORDERS,
    DEFAULT_BATCH,
    DEFAULT_BYTE_ORDER,
    DEFAULT_DTYPE,
    DEFAULT_ENGINE,
    DEFAULT_LEVEL,
    DEFAULT_SCHEME,
    DEFAULT_TIME_BUDGET,
    DEFAULT_WINDOW_BYTES,
    DTYPES,
    ENGINE_CHOICES,
    LEVELS,
    MAX_BATCH,
    MAX_BYTES_PER_GROUP,
    MAX_WINDOW_BYTES,
    SCHEMES,
)

wide_option = click.option(
    "--wide", is_flag=True, help="Never shorten a column, even in a terminal (in a pipe nothing is shortened)."
)

model_option = click.option(
    "--model",
    "-m",
    metavar="NAME|DIR|FILE.gguf",
    help="Model: a packaged name (see `lmgc-tui models`), a Hugging Face model directory or a .gguf file.",
)
byte_order_option = click.option(
    "--byte-order",
    type=click.Choice(list(BYTE_ORDERS)),
    default=DEFAULT_BYTE_ORDER,
    show_default=True,
    help="Hex of each value most-significant byte first, or as stored in the file (the paper).",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
reference_option = click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A safetensors file the other side holds too (the previous checkpoint, round or step): tensors "
    "paired by name, shape and dtype are coded against it where that is smaller. The archive records its "
    "SHA-256; decompress and verify need the same file.",
)
engine_option = click.option(
    "--engine",
    type=click.Choice(list(ENGINE_CHOICES)),
    default=DEFAULT_ENGINE,
    show_default=True,
    help="LM engine: int8 (integer arithmetic: the archive decodes on any machine), lmgc "
    "(lmgc's float Llama-family engine: decodes only where the same float kernels run), transformers "
    "(the float reference), or auto (int8 where the model fits it). Recorded in the archive; decoding uses the same.",
)
mix_option = click.option(
    "--mix/--no-mix",
    default=True,
    show_default=True,
    help="Mix the LM's predictions with the chunk's own statistics and allow only tokens the scheme's "
    "text can hold there (hex schemes): smaller archives at the same speed. Recorded in the archive.",
)


def _workers_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--workers", type=click.IntRange(1, 256), default=None, help=help)


workers_option = _workers_option(
    "Code LM chunks in this many processes at once [1; with --ray: one per CPU of the cluster] (each "
    "loads the model, ~30 s, and runs --threads threads, 1 by default with workers; recorded). Same bytes as "
    "one process with those threads; pays off on files of several chunks (batch x window bytes each). "
    "With --ray at the quick and fast levels: that many Ray actors of one CPU each code the 4 MiB chunks."
)
decode_workers_option = _workers_option(
    "Decode LM chunks in this many processes at once [1; with --ray: one per CPU of the cluster] (each "
    "loads the model, ~30 s, and runs the thread count the archive records). Pays off on archives of several chunks. "
    "With --ray, an archive of the quick or fast level: that many Ray actors of one CPU each decode its chunks."
)
ray_option = click.option(
    "--ray",
    metavar="ADDRESS",
    help="Run the workers as Ray actors: 'auto' (the cluster this machine belongs to, or RAY_ADDRESS), "
    "host:port, ray://host:10001, or 'local' (a private Ray instance on this machine). Needs "
    "pip install 'lmgc[ray]', and lmgc plus the model (the LM level) on every node; same bytes as one "
    "process. At the quick and fast levels the chunks go to the actors instead of this process's threads.",
)


def workers_count(workers: int | None, ray: str | None) -> int:
    """--workers as the options take it: unset is 1 process, or with Ray one actor per CPU (0)."""
    if workers is not None:
        return workers
    return 0 if ray is not None else 1


top_byte_option = click.option(
    "--top-byte/--no-top-byte",
    default=True,
    show_default=True,
    help="With --mix: code every value's top byte (sign, exponent) with a small byte model instead of the "
    "LM; the LM still reads it. Smaller archives at the same speed. Recorded in the archive.",
)

keep_option = click.option(
    "-k", "--keep", is_flag=True, help="Accepted for zstd/xz habits: inputs are never deleted anyway."
)
level_option = click.option(
    "--level",
    type=click.Choice(list(LEVELS)),
    default=DEFAULT_LEVEL,
    show_default=True,
    help="quick: each value's exponent and mantissa bytes under static rANS tables, hundreds of MB/s, "
    "smaller than pcodec and ZipNN on gradients; fast: the gradient model alone, compiled, megabytes per "
    "second, no LM; max: the LM with the same "
    "model (a few dozen bytes per second on a CPU, about 1 % smaller); auto: max where its estimated time fits "
    "--time-budget (and fast beside it, keeping the smaller archive), else fast. Every level decodes on any "
    "machine that has lmgc (max also needs the model).",
)
time_budget_option = click.option(
    "--time-budget",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_TIME_BUDGET,
    show_default=True,
    metavar="SECONDS",
    help="With --level auto: the longest the LM level may take (estimated from the file size).",
)

filters_option = click.option(
    "--filters/--no-filters",
    default=True,
    show_default=True,
    help="Store tensors whose lines sum to zero (softmax heads, layers read through LayerNorm) as each line's "
    "distance from that sum: one value per line almost free. Recorded in the archive (format 1.2).",
)


def window_bytes_option(help: str = "Data bytes per LM window.") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--window-bytes",
        type=click.IntRange(1, MAX_WINDOW_BYTES),
        default=DEFAULT_WINDOW_BYTES,
        show_default=True,
        help=help,
    )


def batch_option(
    help: str = "Windows run in lockstep (one chunk).",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--batch", type=click.IntRange(1, MAX_BATCH), default=DEFAULT_BATCH, show_default=True, help=help
    )


bytes_per_group_option = click.option(
    "--bytes-per-group",
    type=click.IntRange(0, MAX_BYTES_PER_GROUP),
    default=0,
    show_default=True,
    help="Bytes per hex group; 0 = the dtype's size.",
)
dtype_option = click.option(
    "--dtype",
    type=click.Choice(list(DTYPES)),
    default=DEFAULT_DTYPE,
    show_default=True,
    help="Dtype the model runs in.",
)
scheme_option = click.option(
    "--scheme",
    type=click.Choice(list(SCHEMES)),
    default=DEFAULT_SCHEME,
    show_default=True,
    help="How bytes become text.",
)


def mismatch_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--ignore-model-mismatch, and --force, its old spelling (hidden: -f is --overwrite)."""
    f = click.option("--force", "force_old", is_flag=True, hidden=True)(f)
    return click.option(
        "--ignore-model-mismatch",
        "force",
        is_flag=True,
        help="Decode even if the model fingerprint differs (the SHA-256 still guards the output).",
    )(f)
