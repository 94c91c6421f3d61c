"""``lmgc-tui bench``: lmgc's levels against classical codecs, every output decoded and compared; or bits per
byte position (--positions), or LM speed (--speed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lmgc_format.pipeline.defaults import DEFAULT_SCHEME, SCHEMES

from ..fmt import plain, shown
from ..progress import EventProgress
from .group import cli, err_console, out_console, print_table
from .options import (
    batch_option,
    byte_order_option,
    dtype_option,
    engine_option,
    filters_option,
    mix_option,
    model_option,
    quiet_option,
    reference_option,
    top_byte_option,
    wide_option,
    window_bytes_option,
)


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
@window_bytes_option()
@batch_option()
@dtype_option
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
@click.option("--engines", default="int8,lmgc", show_default=True, metavar="LIST", help="Engines for --speed.")
@click.option("--dtypes", default="float32,bfloat16", show_default=True, metavar="LIST", help="Dtypes for --speed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results on stdout.")
@click.option("--markdown", is_flag=True, help="Results as a Markdown table on stdout.")
@click.option(
    "--save", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results as JSON to this file."
)
@reference_option
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
    reference: Path | None,
    wide: bool,
    quiet: bool,
) -> None:
    """Compare lmgc's levels with classical codecs on the same tensor bytes.

    Every codec's output is decoded and compared before its size counts; sizes are %
    of the tensor data (the paper's metric). The LM codec is timed encoding and decoding.
    With --estimate the LM rows are estimates instead (marked so), for quick comparisons.
    With --reference OLD, the classical codecs code the tensors XOR-ed with OLD's (ZipNN's delta method,
    rows "XOR+...") and lmgc codes with OLD as its reference.
    """
    from lmgc_format.bench.classical import by_name
    from lmgc_format.bench.runner import BenchOptions, LmSetting, bench_file
    from lmgc_format.pipeline.encoder import EncodeOptions

    from ..bench_view import bench_markdown, bench_table, summary

    if reference is not None and (speed or positions or estimate):
        raise click.UsageError("--reference goes with size benches, not --speed, --positions or --estimate")
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
    level_list = [] if no_lm else _list_option(levels, ("quick", "fast", "auto", "max"), "--levels")
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
                EncodeOptions(
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
                    level="max",
                    reference=None if reference is None else str(reference),
                ),
                estimate=estimate,
                model_tag=_model_tag(m) if len(model_list) > 1 else "",
            )
            for m in model_list
            for sc in scheme_list
        ]
        + [
            LmSetting(EncodeOptions(level=level, reference=None if reference is None else str(reference)))
            for level in level_list
            if level != "max"
        ],
        reference=reference,
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
            out_console.print(plain(summary(r)), soft_wrap=True, highlight=False)
            print_table(bench_table(r), wide)


def _model_tag(model: str | None) -> str:
    """A short name for a model in bench labels: the packaged name, or the file/directory name."""
    from lmgc_format.lm.models import DEFAULT_MODEL, PACKAGED

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

    from ..bench_view import positions_markdown, positions_table

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

    from ..bench_view import speed_markdown, speed_table

    engine_list = _list_option(engines, ("int8", "lmgc", "transformers", "auto"), "--engines")
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
