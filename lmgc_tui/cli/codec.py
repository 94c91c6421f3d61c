"""The codec commands: compress, decompress (and salvage), verify, inspect; files or standard streams."""

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

from lmgc_format.errors import CorruptChunkError
from lmgc_format.lm.models import DEFAULT_MODEL

from ..fmt import human_bytes, shown
from ..inspect_view import inspect_renderables
from ..progress import EventProgress
from .group import cli, err_console, out_console, print_table
from .options import (
    batch_option,
    byte_order_option,
    bytes_per_group_option,
    decode_workers_option,
    dtype_option,
    engine_option,
    filters_option,
    keep_option,
    level_option,
    mismatch_options,
    mix_option,
    model_option,
    quiet_option,
    ray_option,
    reference_option,
    scheme_option,
    time_budget_option,
    top_byte_option,
    wide_option,
    window_bytes_option,
    workers_count,
    workers_option,
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
@scheme_option
@byte_order_option
@click.option(
    "--no-fallback",
    is_flag=True,
    help="Keep the LM coding even where zstd/raw would be smaller (to measure the LM itself).",
)
@window_bytes_option()
@batch_option()
@bytes_per_group_option
@dtype_option
@engine_option
@mix_option
@top_byte_option
@filters_option
@level_option
@time_budget_option
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    help="LM level: torch threads (recorded; the decoder uses the same). Quick and fast levels: coding threads "
    "[one per CPU]; the bytes do not depend on it.",
)
@workers_option
@ray_option
@reference_option
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
    reference: Path | None,
    verify: bool,
    quiet: bool,
) -> None:
    """Compress safetensors files into .lmgc archives (SOURCE.lmgc beside each; - reads standard input).

    The level decides the model: fast (the gradient model alone, compiled: megabytes per second), max (the
    LM on top of it: about 1 % smaller, a few dozen bytes per second on a CPU), or auto (the default: the
    LM where its estimated time fits --time-budget). The LM options (--model, --scheme, --window-bytes,
    ...) apply to the max level; the fast level has a fixed layout.
    """
    from lmgc_format.pipeline.encoder import EncodeOptions

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
        workers=workers_count(workers, ray),
        ray=ray,
        level=level,
        time_budget=time_budget,
        reference=None if reference is None else str(reference),
    )
    opts.check()
    streams = _Streams.check(sources, output, to_stdout, ".lmgc")
    from lmgc_format.pipeline.parallel import ray_session

    with ray_session(ray, len(sources)):  # a sharded checkpoint's files share one Ray instance
        for source in sources:
            with streams.paths(source, output, lambda p: p.with_name(p.name + ".lmgc")) as (path, target, final):
                named = "(standard input)" if str(source) == "-" else str(source)
                _compress_one(path, target, f"{named} -> {final}", opts, overwrite, quiet, streams.summary)
                if verify:
                    _verify(target, None, False, quiet, workers, ray, reference)


def _compress_one(
    source: Path, target: Path, what: str, opts: Any, overwrite: bool, quiet: bool, summary: Console
) -> None:
    from lmgc_format.atomic import refuse_existing
    from lmgc_format.pipeline.encode_job import float_bytes, level_for
    from lmgc_format.pipeline.encoder import encode_file
    from lmgc_format.tensors.source import read_layout

    # Everything that can be checked is checked before a model takes a minute to load.
    layout = read_layout(source)
    refuse_existing(target, overwrite)
    if not quiet and level_for(layout, opts).level == "max" and float_bytes(layout):
        err_console.print(f"loading model {opts.model or DEFAULT_MODEL} …", style="dim")
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
@mismatch_options
@click.option(
    "--salvage",
    is_flag=True,
    help="For a damaged archive: write the tensors that are intact to a new safetensors file "
    "[NAME.salvaged.safetensors] and list those lost (exit 5 if any).",
)
@decode_workers_option
@ray_option
@reference_option
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
    reference: Path | None,
    quiet: bool,
) -> None:
    """Decompress .lmgc archives back to the original files, byte for byte (- reads standard input)."""
    from lmgc_format.pipeline.decoder import DecodeOptions, decode_file

    opts = DecodeOptions(
        model=model,
        force=force or force_old,
        workers=workers_count(workers, ray),
        ray=ray,
        reference=None if reference is None else str(reference),
    )
    if salvage:
        if len(archives) != 1 or str(archives[0]) == "-":
            raise click.UsageError("--salvage takes one archive file")
        _salvage(archives[0], output, overwrite, opts, quiet)
        return
    for archive in archives:
        if output is None and not to_stdout and str(archive) not in ("-",) and archive.suffix != ".lmgc":
            raise click.UsageError(f"{archive}: name does not end in .lmgc: give the output with -o")
    streams = _Streams.check(archives, output, to_stdout, "")
    from lmgc_format.pipeline.parallel import ray_session

    with ray_session(ray, len(archives)):  # a sharded checkpoint's archives share one Ray instance
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
    from lmgc_format.pipeline.salvage import salvage_file

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
    if result.lost:  # exit 5, as for any damaged archive
        names = ", ".join(t.name for t in result.lost)
        raise CorruptChunkError(f"{archive}: the archive is damaged; {len(result.lost)} tensor(s) lost: {names}")


def _verify(
    archive: Path,
    model: str | None,
    force: bool,
    quiet: bool,
    workers: int | None = None,
    ray: str | None = None,
    reference: Path | None = None,
) -> None:
    from lmgc_format.pipeline.decoder import DecodeOptions, decode_file

    ref = None if reference is None else str(reference)
    opts = DecodeOptions(model=model, force=force, workers=workers_count(workers, ray), ray=ray, reference=ref)
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
@mismatch_options
@decode_workers_option
@ray_option
@reference_option
@quiet_option
def verify(
    archive: Path,
    model: str | None,
    force: bool,
    force_old: bool,
    workers: int | None,
    ray: str | None,
    reference: Path | None,
    quiet: bool,
) -> None:
    """Decode in memory and check every CRC and the SHA-256 (exit 0 = intact)."""
    _verify(archive, model, force or force_old, quiet, workers, ray, reference)


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
