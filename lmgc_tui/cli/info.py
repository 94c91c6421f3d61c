"""``lmgc-tui models``: the models available offline."""

from __future__ import annotations

from rich.table import Table

from .group import cli, out_console, print_table
from .options import wide_option


@cli.command()
@wide_option
def models(wide: bool) -> None:
    """List the models available offline."""
    from lmgc_format.lm.models import DEFAULT_MODEL, available

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
