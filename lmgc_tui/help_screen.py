"""The `?` screen: what each tab does and the keys."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# lmgc-tui

Lossless compression of gradients (safetensors) with a language model (LM-GC):
each tensor's bytes become hex text, the LM predicts every next token, and a
range coder spends about `-log2 p` bits on it. Decoding runs the same model
step by step, so it takes as long as encoding.

| key | |
|---|---|
| `o` | **Open**: browse to a `.safetensors` or `.lmgc` file; `o` again: type its path (`r` reloads the tree) |
| `e` | **Encode** the opened safetensors file (settings, Start / Cancel) |
| `v` | **Verify** an archive: decode in memory, check CRCs and SHA-256 |
| `i` | **Inspect** an archive: header, model, scheme, per-tensor bits/byte |
| `s` | start the encode (Encode tab) |
| `escape` | leave a text field; otherwise cancel the running encode / verify |
| `t` | dark / light theme |
| `?` | this help |
| `q` | quit |

While a text field has focus, letters are text: `escape` leaves it and the keys above work again.

**Reading the numbers.** *bits/byte* is what a tensor cost after coding
(8 = stored as is); *% orig* is the same as a share of the original size.
A chunk keeps zstd or raw where the LM would not beat them.

Cancelling leaves no output file behind; an existing output is never
overwritten unless *overwrite output* is ticked.

Press `escape` or `?` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 90; height: 90%; border: thick $primary; background: $surface;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
