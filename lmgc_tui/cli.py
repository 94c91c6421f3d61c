"""``lmgc-tui``: compress, decompress, verify, inspect, models.

Exit codes: 0 success; 1 other lmgc error; 2 usage error; 3 bad input file;
4 malformed archive; 5 damaged data (CRC or SHA-256 mismatch); 6 model not
found or not loadable; 7 archive made with another model (see --force);
8 output exists (see -f); 9 unsupported request; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from lmgc_format import __version__
from lmgc_format.errors import LmgcError
from lmgc_format.levels import DEFAULT_TIME_BUDGET
from lmgc_format.serialize import DEFAULT_SCHEME, SCHEMES

from .fmt import human_bytes, shown
from .inspect_view import inspect_renderables
from .progress import EventProgress

err_console = Console(stderr=True)
out_console = Console()
UNBOUNDED = 1 << 14  # columns: wide enough that no table folds a name


def print_table(renderable: Any, wide: bool = False) -> None:
    """Print a table on stdout. In a pipe (or with --wide) it is as wide as its content, so that grep and
    awk see every name whole on one line (as ls and zstd -l do); in a terminal Rich fits it to the
    window, shortening with an ellipsis rather than folding a name (see the columns' settings)."""
    if wide or not out_console.is_terminal:
        # Rich caps print(width=) at the console's width: a console of its own, on the same stdout
        Console(width=UNBOUNDED, no_color=not out_console.is_terminal).print(renderable, crop=False)
    else:
        out_console.print(renderable)


wide_option = click.option(
    "--wide", is_flag=True, help="Never shorten a column, even in a terminal (in a pipe nothing is shortened)."
)


class LmgcGroup(click.Group):
    """Turns LmgcError into one red line and its exit code; --debug keeps the traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `lmgc-tui FILE` is short for `lmgc-tui app FILE` (a path, not a command name)
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            if Path(args[0]).exists():
                args = ["app", *args]
            elif "." in args[0] or "/" in args[0]:  # meant as a file, not as a command
                raise click.UsageError(f"{args[0]}: no such file (and no command of that name; see --help)")
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LmgcError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            err_console.print(f"[bold red]lmgc-tui: error:[/] {shown(exc)}", highlight=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("[bold red]lmgc-tui: interrupted[/] (no partial output was left)")
            ctx.exit(130)


@click.group(cls=LmgcGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(__version__, prog_name="lmgc-tui")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Lossless compression of gradients (safetensors) with a language model (LM-GC).

    \b
    lmgc-tui [FILE]                              the app: open, encode, verify, inspect
    lmgc-tui compress grads.safetensors          -> grads.safetensors.lmgc
    lmgc-tui decompress grads.safetensors.lmgc   -> grads.safetensors
    lmgc-tui verify grads.safetensors.lmgc       decode in memory, check CRCs + SHA-256
    lmgc-tui inspect grads.safetensors.lmgc      header, model, chunks, bits/byte per tensor
    lmgc-tui bench FILE...                       LM codec vs classical codecs, round-trip checked
    lmgc-tui models                              models available offline
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if ctx.invoked_subcommand is None:
        ctx.invoke(app)


model_option = click.option(
    "--model",
    "-m",
    metavar="NAME|DIR|FILE.gguf",
    help="Model: a packaged name (see `lmgc-tui models`), a Hugging Face model directory or a .gguf file.",
)
byte_order_option = click.option(
    "--byte-order",
    type=click.Choice(["msb_first", "stored"]),
    default="msb_first",
    show_default=True,
    help="Hex of each value most-significant byte first, or as stored in the file (the paper).",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
engine_option = click.option(
    "--engine",
    type=click.Choice(["auto", "lmgc", "transformers"]),
    default="auto",
    show_default=True,
    help="LM engine: lmgc's own Llama-family engine (faster), transformers (the reference), "
    "or auto (lmgc where the model fits it). Recorded in the archive; decoding uses the same.",
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
    "one process with those threads; pays off on files of several chunks (batch x window bytes each)."
)
decode_workers_option = _workers_option(
    "Decode LM chunks in this many processes at once [1; with --ray: one per CPU of the cluster] (each "
    "loads the model, ~30 s, and runs the thread count the archive records). Pays off on archives of several chunks."
)
ray_option = click.option(
    "--ray",
    metavar="ADDRESS",
    help="Run the workers as Ray actors: 'auto' (the cluster this machine belongs to, or RAY_ADDRESS), "
    "host:port, ray://host:10001, or 'local' (a private Ray instance on this machine). Needs "
    "pip install 'lmgc[ray]', and lmgc plus the model on every node; same bytes as one process.",
)


def _workers(workers: int | None, ray: str | None) -> int:
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
    type=click.Choice(["auto", "fast", "max"]),
    default="auto",
    show_default=True,
    help="fast: the gradient model alone, compiled, megabytes per second, no LM; max: the LM with the same "
    "model (a few dozen bytes per second on a CPU, about 1 % smaller); auto: max where its estimated time fits "
    "--time-budget, else fast. Every level decodes on any machine that has lmgc (max also needs the model).",
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


@cli.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive path [SOURCE.lmgc]; - for standard output. One input only.",
)
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write the archive to standard output.")
@click.option("-f", "--overwrite", "overwrite", is_flag=True, help="Overwrite an existing output.")
@keep_option
@model_option
@click.option(
    "--scheme",
    type=click.Choice(list(SCHEMES)),
    default=DEFAULT_SCHEME,
    show_default=True,
    help="How bytes become text.",
)
@byte_order_option
@click.option(
    "--no-fallback",
    is_flag=True,
    help="Keep the LM coding even where zstd/raw would be smaller (to measure the LM itself).",
)
@click.option(
    "--window-bytes", type=click.IntRange(1, 1 << 20), default=512, show_default=True, help="Data bytes per LM window."
)
@click.option(
    "--batch", type=click.IntRange(1, 4096), default=16, show_default=True, help="Windows run in lockstep (one chunk)."
)
@click.option(
    "--bytes-per-group",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    help="Bytes per hex group; 0 = the dtype's size.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Dtype the model runs in.",
)
@engine_option
@mix_option
@top_byte_option
@filters_option
@level_option
@time_budget_option
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    help="LM level: torch threads (recorded; the decoder uses the same). Fast level: coding threads "
    "[one per CPU]; the bytes do not depend on it.",
)
@workers_option
@ray_option
@click.option("--verify/--no-verify", default=False, show_default=True, help="Decode the archive again and compare.")
@quiet_option
def compress(
    sources: tuple[Path, ...],
    output: Path | None,
    to_stdout: bool,
    overwrite: bool,
    keep: bool,
    model: str | None,
    scheme: str,
    byte_order: str,
    no_fallback: bool,
    window_bytes: int,
    batch: int,
    bytes_per_group: int,
    dtype: str,
    engine: str,
    mix: bool,
    top_byte: bool,
    filters: bool,
    level: str,
    time_budget: float,
    threads: int | None,
    workers: int | None,
    ray: str | None,
    verify: bool,
    quiet: bool,
) -> None:
    """Compress safetensors files into .lmgc archives (SOURCE.lmgc beside each; - reads standard input).

    The level decides the model: fast (the gradient model alone, compiled: megabytes per second), max (the
    LM on top of it: about 1 % smaller, a few dozen bytes per second on a CPU), or auto (the default: the
    LM where its estimated time fits --time-budget). The LM options (--model, --scheme, --window-bytes,
    ...) apply to the max level; the fast level has a fixed layout.
    """
    from lmgc_format.encoder import EncodeOptions

    opts = EncodeOptions(
        model=model,
        scheme=scheme,
        byte_order=byte_order,
        fallback=not no_fallback,
        window_bytes=window_bytes,
        batch=batch,
        bytes_per_group=bytes_per_group,
        dtype=dtype,
        threads=threads,
        engine=engine,
        mixing=mix,
        top_byte=top_byte,
        filters=filters,
        workers=_workers(workers, ray),
        ray=ray,
        level=level,
        time_budget=time_budget,
    )
    opts.check()
    streams = _Streams.check(sources, output, to_stdout, ".lmgc")
    for source in sources:
        with streams.paths(source, output, lambda p: p.with_name(p.name + ".lmgc")) as (path, target, final):
            named = "(standard input)" if str(source) == "-" else str(source)
            _compress_one(path, target, f"{named} -> {final}", opts, overwrite, quiet, streams.summary)
            if verify:
                _verify(target, None, False, quiet, workers, ray)


def _compress_one(
    source: Path, target: Path, what: str, opts: Any, overwrite: bool, quiet: bool, summary: Console
) -> None:
    from lmgc_format.atomic import refuse_existing
    from lmgc_format.encoder import encode_file, float_bytes, level_for
    from lmgc_format.source import read_layout

    # Everything that can be checked is checked before a model takes a minute to load.
    layout = read_layout(source)
    refuse_existing(target, overwrite)
    if not quiet and level_for(layout, opts).level == "max" and float_bytes(layout):
        err_console.print(f"loading model {opts.model or 'smollm2-135m'} …", style="dim")
    with EventProgress(err_console, quiet) as bar:
        result = encode_file(source, target, opts, overwrite=overwrite, on_event=bar)
    if not quiet:
        rate = (result.source_size / result.seconds) if result.seconds else 0.0
        tok = (result.tokens / result.seconds) if result.seconds else 0.0
        data_pct = 100 * result.coded_bytes / result.data_bytes if result.data_bytes else 0.0
        line = (
            f"{shown(what)}: tensor data {result.data_bytes:,} -> {result.coded_bytes:,} bytes "
            f"([bold]{data_pct:.2f} %[/]), whole file {result.source_size:,} -> {result.archive_size:,} bytes "
            f"({100 * result.ratio:.2f} %); {human_bytes(rate)}/s, {tok:,.0f} tokens/s, {result.seconds:.1f} s"
        )
        if result.stored:
            why = "would not make it smaller" if result.coded_bytes else "cannot pay off on a file this small"
            line = (
                f"{shown(what)}: stored as it is, {result.source_size:,} -> {result.archive_size:,} bytes "
                f"(coding {why}), {result.seconds:.1f} s"
            )
        summary.print(line, highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class _Streams:
    """Where each input comes from and each output goes (files, or - for standard input/output), as
    zstd and xz do: several inputs each get an output beside them; standard input and output are
    spooled through a temporary file (the codecs read a file more than once, and an output is only
    released once it is complete)."""

    stdin: bool  # some input is -
    stdout: bool  # the output is standard output
    summary: Console  # where the one-line summaries go (stderr when stdout carries data)

    @classmethod
    def check(cls, inputs: tuple[Path, ...], output: Path | None, to_stdout: bool, suffix: str) -> _Streams:
        stdin = any(str(p) == "-" for p in inputs)
        stdout = to_stdout or str(output) == "-" or (stdin and output is None)
        if len(inputs) > 1 and (output is not None or stdout):
            raise click.UsageError("-o and -c take one input; with several, each output goes beside its input")
        if sum(str(p) == "-" for p in inputs) > 1:
            raise click.UsageError("standard input (-) can be read once")
        if stdout and sys.stdout.buffer.isatty():
            raise click.UsageError(f"refusing to write {suffix or 'binary'} data to a terminal: redirect it or use -o")
        return cls(stdin, stdout, err_console if stdout else out_console)

    @contextlib.contextmanager
    def paths(
        self, given: Path, output: Path | None, default: Callable[[Path], Path]
    ) -> Iterator[tuple[Path, Path, str]]:
        """(input path, output path, what to call the output) for ``given``; copies standard input in
        before and the output to standard output after."""
        with contextlib.ExitStack() as stack:
            tmp: Path | None = None
            if str(given) == "-" or self.stdout:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lmgc-")))
            path = given
            if str(given) == "-":
                assert tmp is not None
                path = tmp / "stdin"
                with path.open("wb") as f:
                    shutil.copyfileobj(sys.stdin.buffer, f)
            if self.stdout:
                assert tmp is not None
                yield path, tmp / "out", "(standard output)"
                with (tmp / "out").open("rb") as f:
                    out = sys.stdout.buffer
                    shutil.copyfileobj(f, out)
                    out.flush()
                return
            target = output or default(given)
            yield path, target, str(target)


def _mismatch_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--ignore-model-mismatch, and --force, its old spelling (hidden: -f is --overwrite)."""
    f = click.option("--force", "force_old", is_flag=True, hidden=True)(f)
    return click.option(
        "--ignore-model-mismatch",
        "force",
        is_flag=True,
        help="Decode even if the model fingerprint differs (the SHA-256 still guards the output).",
    )(f)


@cli.command()
@click.argument("archives", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output path [ARCHIVE without .lmgc]; - for standard output. One archive only.",
)
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write the decoded file to standard output.")
@click.option("-f", "--overwrite", "overwrite", is_flag=True, help="Overwrite an existing output.")
@keep_option
@model_option
@_mismatch_options
@click.option(
    "--salvage",
    is_flag=True,
    help="For a damaged archive: write the tensors that are intact to a new safetensors file "
    "[NAME.salvaged.safetensors] and list those lost (exit 5 if any).",
)
@decode_workers_option
@ray_option
@quiet_option
def decompress(
    archives: tuple[Path, ...],
    output: Path | None,
    to_stdout: bool,
    overwrite: bool,
    keep: bool,
    model: str | None,
    force: bool,
    force_old: bool,
    salvage: bool,
    workers: int | None,
    ray: str | None,
    quiet: bool,
) -> None:
    """Decompress .lmgc archives back to the original files, byte for byte (- reads standard input)."""
    from lmgc_format.decoder import DecodeOptions, decode_file

    opts = DecodeOptions(model=model, force=force or force_old, workers=_workers(workers, ray), ray=ray)
    if salvage:
        if len(archives) != 1 or str(archives[0]) == "-":
            raise click.UsageError("--salvage takes one archive file")
        _salvage(archives[0], output, overwrite, opts, quiet)
        return
    for archive in archives:
        if output is None and not to_stdout and str(archive) not in ("-",) and archive.suffix != ".lmgc":
            raise click.UsageError(f"{archive}: name does not end in .lmgc: give the output with -o")
    streams = _Streams.check(archives, output, to_stdout, "")
    for archive in archives:
        with streams.paths(archive, output, lambda p: p.with_suffix("")) as (path, target, final):
            with EventProgress(err_console, quiet) as bar:
                result = decode_file(path, target, opts, overwrite=overwrite, on_event=bar)
            if not quiet:
                rate = (result.source_size / result.seconds) if result.seconds else 0.0
                streams.summary.print(
                    f"{shown(archive)} -> {shown(final)}: {result.source_size:,} bytes, SHA-256 "
                    f"{result.sha256[:16]}… ok, {human_bytes(rate)}/s, {result.seconds:.1f} s",
                    highlight=False,
                    soft_wrap=True,
                )


def _salvage(archive: Path, output: Path | None, overwrite: bool, opts: Any, quiet: bool) -> None:
    from lmgc_format.salvage import salvage_file

    base = archive.name.removesuffix(".lmgc").removesuffix(".safetensors")
    target = output or archive.with_name(base + ".salvaged.safetensors")
    with EventProgress(err_console, quiet) as bar:
        result = salvage_file(archive, target, opts, overwrite=overwrite, on_event=bar)
    for line in result.damaged_chunks:
        err_console.print(f"[red]damaged:[/] {shown(line)}", highlight=False, soft_wrap=True)
    if result.written:
        out_console.print(f"{shown(target)}: {len(result.kept)} intact tensor(s) written", highlight=False)
    else:
        out_console.print("no tensor could be salvaged; nothing was written", highlight=False)
    for t in result.lost:
        out_console.print(f"  lost: {shown(t.name)}", highlight=False)
    if result.lost:
        raise SystemExit(5)


def _verify(
    archive: Path, model: str | None, force: bool, quiet: bool, workers: int | None = None, ray: str | None = None
) -> None:
    from lmgc_format.decoder import DecodeOptions, decode_file

    opts = DecodeOptions(model=model, force=force, workers=_workers(workers, ray), ray=ray)
    with EventProgress(err_console, quiet) as bar:
        result = decode_file(archive, None, opts, on_event=bar)
    if not quiet:
        out_console.print(
            f"[bold green]verified[/]: {shown(archive)} decodes to {result.source_size:,} bytes identical to the "
            f"original (SHA-256 {result.sha256[:16]}…, {result.seconds:.1f} s)",
            highlight=False,
            soft_wrap=True,
        )


@cli.command()
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@model_option
@_mismatch_options
@decode_workers_option
@ray_option
@quiet_option
def verify(
    archive: Path, model: str | None, force: bool, force_old: bool, workers: int | None, ray: str | None, quiet: bool
) -> None:
    """Decode in memory and check every CRC and the SHA-256 (exit 0 = intact)."""
    _verify(archive, model, force or force_old, quiet, workers, ray)


@cli.command()
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--chunks", is_flag=True, help="Also list every chunk.")
@wide_option
def inspect(archive: Path, as_json: bool, chunks: bool, wide: bool) -> None:
    """Describe an archive: header, model, scheme, window layout, per-tensor bits/byte."""
    from lmgc_format.inspect import describe_archive

    info = describe_archive(archive)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for part in inspect_renderables(info, chunks):
        print_table(part, wide)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--codecs",
    metavar="LIST",
    help="Comma-separated classical codecs [all]: gzip-9, bz2-9, xz-9e, zstd-19, zstd-22, brotli11, PPMdo6, "
    "blosc2shuffle+zstd, blosc2bitshuffle+zstd, fpzip, zfp, ZipNN, FLAC, PNG (spaces optional).",
)
@model_option
@click.option(
    "--schemes",
    default=DEFAULT_SCHEME,
    show_default=True,
    metavar="LIST",
    help=f"LM serialization schemes to run side by side ({', '.join(SCHEMES)}), comma-separated.",
)
@click.option(
    "--models",
    metavar="LIST",
    help="Several models side by side (comma-separated names, directories or .gguf files), each with "
    "every scheme; replaces --model.",
)
@click.option("--no-lm", is_flag=True, help="Classical codecs only (no model needed, seconds).")
@click.option(
    "--levels",
    default="fast,max",
    show_default=True,
    metavar="LIST",
    help="lmgc levels to bench: fast, max (one row per model and scheme), auto (what compress would pick).",
)
@byte_order_option
@click.option(
    "--no-fallback",
    is_flag=True,
    help="LM sizes as the LM coded them, even where the encoder would store a chunk with zstd/raw instead.",
)
@click.option("--window-bytes", type=click.IntRange(1, 1 << 20), default=512, show_default=True)
@click.option("--batch", type=click.IntRange(1, 4096), default=16, show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@engine_option
@mix_option
@top_byte_option
@filters_option
@click.option(
    "--speed",
    is_flag=True,
    help="Measure LM encode/decode tokens/s and bytes/s instead: every engine in --engines x every dtype in "
    "--dtypes, side by side, each a real round trip with every chunk LM-coded.",
)
@click.option(
    "--positions",
    is_flag=True,
    help="Report instead the bits the coder spends per byte position within a value (sign/exponent byte "
    "first with msb_first), the LM mixed unless --no-mix, beside each position's order-0 entropy.",
)
@click.option(
    "--estimate",
    is_flag=True,
    help="LM sizes (and --positions bits) from one forward pass per window (5-10x faster; the encoder's own "
    "mixer, coder and codec choice after it) instead of real archives: within a few bytes of them, but nothing "
    "is decoded. For comparing schemes and models; --engine does not apply.",
)
@click.option("--engines", default="lmgc,transformers", show_default=True, metavar="LIST", help="Engines for --speed.")
@click.option("--dtypes", default="float32,bfloat16", show_default=True, metavar="LIST", help="Dtypes for --speed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results on stdout.")
@click.option("--markdown", is_flag=True, help="Results as a Markdown table on stdout.")
@click.option(
    "--save", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results as JSON to this file."
)
@wide_option
@quiet_option
def bench(
    files: tuple[Path, ...],
    codecs: str | None,
    model: str | None,
    schemes: str,
    models: str | None,
    no_lm: bool,
    levels: str,
    byte_order: str,
    no_fallback: bool,
    window_bytes: int,
    batch: int,
    dtype: str,
    engine: str,
    mix: bool,
    top_byte: bool,
    filters: bool,
    speed: bool,
    positions: bool,
    estimate: bool,
    engines: str,
    dtypes: str,
    as_json: bool,
    markdown: bool,
    save: Path | None,
    wide: bool,
    quiet: bool,
) -> None:
    """Compare the LM codec with classical codecs on the same tensor bytes.

    Every codec's output is decoded and compared before its size counts; sizes are %
    of the tensor data (the paper's metric). The LM codec is timed encoding and decoding.
    With --estimate the LM rows are estimates instead (marked so), for quick comparisons.
    """
    from lmgc_format.bench.classical import by_name
    from lmgc_format.bench.runner import BenchOptions, LmSetting, bench_file

    from .bench_view import bench_markdown, bench_table

    if estimate and (speed or no_lm):
        raise click.UsageError("--estimate gives LM sizes and bits; it does not go with --speed or --no-lm")
    if (positions or speed) and (byte_order != "msb_first" or no_fallback):
        raise click.UsageError("--byte-order and --no-fallback go with size benches, not --positions or --speed")
    if positions:
        _bench_positions(
            files,
            model,
            schemes,
            window_bytes,
            batch,
            dtype,
            engine,
            (mix, top_byte),
            estimate,
            as_json,
            markdown,
            save,
            quiet,
            wide,
        )
        return
    if speed:
        _bench_speed(
            files,
            model,
            schemes,
            window_bytes,
            batch,
            engines,
            dtypes,
            (mix, top_byte),
            as_json,
            markdown,
            save,
            quiet,
            wide,
        )
        return
    picked = by_name([c.strip() for c in codecs.split(",") if c.strip()] if codecs else None)
    level_list = [] if no_lm else _list_option(levels, ("fast", "auto", "max"), "--levels")
    scheme_list = [s.strip() for s in schemes.split(",") if s.strip()] if "max" in level_list else []
    for sc in scheme_list:
        if sc not in SCHEMES:
            raise click.BadParameter(
                f"unknown scheme {sc!r} (choose from {', '.join(SCHEMES)})", param_hint="--schemes"
            )
    if models is not None and model is not None:
        raise click.UsageError("give --model or --models, not both")
    model_list: list[str | None] = [m.strip() for m in models.split(",") if m.strip()] if models else [model]
    if not model_list:
        raise click.BadParameter("no model named", param_hint="--models")
    opts = BenchOptions(
        picked,
        [
            LmSetting(
                model=m,
                scheme=sc,
                byte_order=byte_order,
                window_bytes=window_bytes,
                batch=batch,
                dtype=dtype,
                fallback=not no_fallback,
                engine=engine,
                mixing=mix,
                top_byte=top_byte,
                filters=filters,
                estimate=estimate,
                model_tag=_model_tag(m) if len(model_list) > 1 else "",
            )
            for m in model_list
            for sc in scheme_list
        ]
        + [LmSetting(level=level) for level in level_list if level != "max"],
    )
    reports = []
    for path in files:
        with EventProgress(err_console, quiet) as bar:

            def step(name: str, path: Path = path) -> None:
                if not quiet:
                    err_console.print(f"[dim]{shown(path.name)}: {shown(name)} …[/]", highlight=False)

            reports.append(bench_file(path, opts, on_event=bar, on_codec=step))
        if save is not None:  # after every file, so a long run that stops keeps what it measured
            save.write_text(json.dumps([r.to_obj() for r in reports], indent=2) + "\n")
    if as_json:
        click.echo(json.dumps([r.to_obj() for r in reports], indent=2))
    elif markdown:
        click.echo(bench_markdown(reports))
    else:
        for r in reports:
            print_table(bench_table(r), wide)


def _model_tag(model: str | None) -> str:
    """A short name for a model in bench labels: the packaged name, or the file/directory name."""
    from lmgc_format.models import DEFAULT_MODEL, PACKAGED

    name = model or DEFAULT_MODEL
    return name if name in PACKAGED else Path(name).name.removesuffix(".gguf")


def _list_option(value: str, allowed: tuple[str, ...], hint: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise click.BadParameter(f"{', '.join(bad) or 'nothing'}: choose from {', '.join(allowed)}", param_hint=hint)
    return items


def _bench_positions(
    files: tuple[Path, ...],
    model: str | None,
    schemes: str,
    window_bytes: int,
    batch: int,
    dtype: str,
    engine: str,
    mixing: tuple[bool, bool],
    estimate: bool,
    as_json: bool,
    markdown: bool,
    save: Path | None,
    quiet: bool,
    wide: bool = False,
) -> None:
    from lmgc_format.bench.positions import position_report

    from .bench_view import positions_markdown, positions_table

    scheme = _list_option(schemes, tuple(SCHEMES), "--schemes")[0]
    mix, top_byte = mixing
    out: list[dict[str, Any]] = []
    for path in files:
        if not quiet:
            mode = "LM alone" if not mix else "top byte apart, LM mixed" if top_byte else "LM mixed"
            err_console.print(f"[dim]{shown(path.name)}: bits per byte position ({mode}) …[/]", highlight=False)
        rows = position_report(
            path,
            model=model,
            scheme_name=scheme,
            window_bytes=window_bytes,
            batch=batch,
            dtype=dtype,
            engine=engine,
            mixing=mix,
            top_byte=top_byte,
            estimate=estimate,
        )
        out.append(
            {
                "file": str(path),
                "estimate": estimate,
                "mixing": mix,
                "top_byte": mix and top_byte,
                "positions": [
                    {
                        "position": "separator" if r.position < 0 else r.position,
                        "bytes": r.nbytes,
                        "lm_bits_per_byte": round(r.lm_bits_per_byte, 4),
                        "order0_bits_per_byte": None if r.position < 0 else round(r.order0_bits_per_byte, 4),
                    }
                    for r in rows
                ],
            }
        )
        if save is not None:
            save.write_text(json.dumps(out, indent=2) + "\n")
        if markdown:
            click.echo(positions_markdown(str(path), rows))
        elif not as_json:
            print_table(positions_table(str(path), rows), wide)
    if as_json:
        click.echo(json.dumps(out, indent=2))


def _bench_speed(
    files: tuple[Path, ...],
    model: str | None,
    schemes: str,
    window_bytes: int,
    batch: int,
    engines: str,
    dtypes: str,
    mixing: tuple[bool, bool],
    as_json: bool,
    markdown: bool,
    save: Path | None,
    quiet: bool,
    wide: bool = False,
) -> None:
    from lmgc_format.bench.speed import measure

    from .bench_view import speed_markdown, speed_table

    engine_list = _list_option(engines, ("lmgc", "transformers", "auto"), "--engines")
    dtype_list = _list_option(dtypes, ("float32", "bfloat16"), "--dtypes")
    scheme = _list_option(schemes, tuple(SCHEMES), "--schemes")[0]
    out: list[dict[str, Any]] = []
    for path in files:
        results = []
        for dt in dtype_list:
            for eng in engine_list:
                if not quiet:
                    err_console.print(f"[dim]{shown(path.name)}: {eng} engine, {dt} …[/]", highlight=False)
                with EventProgress(err_console, quiet) as bar:
                    r = measure(
                        path,
                        eng,
                        dt,
                        model=model,
                        scheme=scheme,
                        window_bytes=window_bytes,
                        batch=batch,
                        mixing=mixing[0],
                        top_byte=mixing[1],
                        on_event=bar,
                    )
                results.append(r)
                out.append({"file": str(path), **r.to_obj()})
                if save is not None:  # after every run: a long bench that stops keeps what it measured
                    save.write_text(json.dumps(out, indent=2) + "\n")
        if markdown:
            click.echo(speed_markdown(str(path), results))
        elif not as_json:
            print_table(speed_table(str(path), results), wide)
    if as_json:
        click.echo(json.dumps(out, indent=2))


@cli.command()
@wide_option
def models(wide: bool) -> None:
    """List the models available offline."""
    from lmgc_format.models import DEFAULT_MODEL, available

    table = Table()
    for col in ("name", "description", "status"):
        table.add_column(col)
    for m in available():
        status = f"[green]installed[/] {m.path}" if m.path else f"[red]not installed[/]: {m.install_hint}"
        name = m.name + (" (default)" if m.name == DEFAULT_MODEL else "")
        table.add_row(name, m.description, status)
    print_table(table, wide)
    out_console.print(
        "Any local Hugging Face causal-LM directory (safetensors weights) or .gguf file also works: --model PATH",
        soft_wrap=True,
    )


@cli.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@model_option
def app(path: Path | None, model: str | None) -> None:
    """Open the terminal app (also what a bare `lmgc-tui` or `lmgc-tui FILE` does)."""
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError("the app needs a terminal; use a subcommand (see lmgc-tui --help)")
    if path is not None and not path.exists():
        raise click.BadParameter(f"{path}: no such file or directory", param_hint="PATH")
    from .app import make_app

    root = path if path is not None and path.is_dir() else None
    make_app(path=None if root else path, model=model, root=root).run()


def _terminate(_signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so temp files are removed and no partial output is left
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="lmgc-tui")


if __name__ == "__main__":
    main()
