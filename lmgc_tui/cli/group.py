"""The ``lmgc-tui`` command group: error mapping, the consoles, tables on stdout, and ``main``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from lmgc_format import __version__
from lmgc_format.errors import LmgcError

from ..fmt import shown
from .options import model_option

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
    lmgc-tui bench FILE...                       lmgc's levels vs classical codecs, round-trip checked
    lmgc-tui models                              models available offline
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if ctx.invoked_subcommand is None:
        ctx.invoke(app_command)


@cli.command("app")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@model_option
def app_command(path: Path | None, model: str | None) -> None:
    """Open the terminal app (also what a bare `lmgc-tui` or `lmgc-tui FILE` does)."""
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError("the app needs a terminal; use a subcommand (see lmgc-tui --help)")
    if path is not None and not path.exists():
        raise click.BadParameter(f"{path}: no such file or directory", param_hint="PATH")
    from ..app import make_app

    root = path if path is not None and path.is_dir() else None
    make_app(path=None if root else path, model=model, root=root).run()


def _terminate(_signum: int, _frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so temp files are removed and no partial output is left
    raise KeyboardInterrupt


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="lmgc-tui")
