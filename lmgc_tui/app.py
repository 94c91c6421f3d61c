"""The Textual app: four tabs over the core (open, encode, verify, inspect).

The core (``lmgc_format``) knows nothing of this module; long work runs in thread
workers inside the panes and reaches the widgets through batched events.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane

from lmgc_format import __version__
from lmgc_format.errors import LmgcError

from .help_screen import HelpScreen
from .panes.encode_pane import ArchiveWritten, EncodePane
from .panes.inspect_pane import InspectPane
from .panes.open_pane import FileChosen, OpenPane
from .panes.verify_pane import VerifyPane


class LmgcApp(App[None]):
    TITLE = "lmgc-tui"
    SUB_TITLE = f"lossless gradient compression with a language model · {__version__}"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open", "Open"),
        Binding("e", "show_tab('encode')", "Encode"),
        Binding("v", "show_tab('verify')", "Verify"),
        Binding("i", "show_tab('inspect')", "Inspect"),
        Binding("s", "start", "Start"),
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("t", "toggle_theme", "Theme"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("r", "reload_tree", "Reload", show=False),
        Binding("q", "quit", "Quit"),
    ]
    # Single-letter keys are text while a text field has focus: typing "quest.safetensors" must not quit,
    # start an encode or switch tabs (Escape leaves the field, then they work again).
    LETTER_ACTIONS = frozenset({"open", "show_tab", "start", "toggle_theme", "help", "reload_tree", "quit"})

    def __init__(self, path: Path | None = None, model: str | None = None, root: Path | None = None) -> None:
        super().__init__()
        self.initial_path = path
        self.model = model
        self.root = root or (path.parent if path else Path.cwd())

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="open", id="tabs"):
            with TabPane("Open", id="open"):
                yield OpenPane(self.root, id="open-pane")
            with TabPane("Encode", id="encode"):
                yield EncodePane(self.model, id="encode-pane")
            with TabPane("Verify", id="verify"):
                yield VerifyPane(self.model, id="verify-pane")
            with TabPane("Inspect", id="inspect"):
                yield InspectPane(id="inspect-pane")
        yield Footer()

    def on_mount(self) -> None:
        if self.initial_path is not None:
            self.query_one(OpenPane).open_path(self.initial_path)
        else:
            self.query_one("#open-tree").focus()

    # -- wiring between tabs --------------------------------------------------------------------

    def on_file_chosen(self, message: FileChosen) -> None:
        if message.kind == "safetensors":
            try:
                self.query_one(EncodePane).set_source(message.path)
            except LmgcError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.action_show_tab("encode")
        else:
            self.query_one(VerifyPane).set_archive(message.path)
            self.query_one(InspectPane).show(message.path)
            self.action_show_tab("inspect")

    def on_archive_written(self, message: ArchiveWritten) -> None:
        self.query_one(VerifyPane).set_archive(message.path)
        self.query_one(InspectPane).show(message.path)

    # -- actions ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.LETTER_ACTIONS and isinstance(self.focused, Input):
            return None  # not run (the key bar shows the field's keys meanwhile)
        return True

    def action_open(self) -> None:
        """The Open tab (its tree focused); pressed again there, the cursor goes to the path field."""
        if self.query_one(TabbedContent).active == "open":
            self.query_one("#open-path").focus()
            return
        self.action_show_tab("open")

    def action_reload_tree(self) -> None:
        """Files made since the app started show up in the Open tab's tree."""
        self.query_one(OpenPane).reload()

    def action_show_tab(self, tab: str) -> None:
        # Blur first: a focused widget inside the pane being hidden would hand focus to a
        # sibling in the same pane, and TabbedContent follows focus back to that pane.
        self.set_focus(None)
        self.query_one(TabbedContent).active = tab
        self.call_after_refresh(self._focus_pane, tab)

    def _focus_pane(self, tab: str) -> None:
        """Put focus where the keys of that tab make sense (never in a text field)."""
        target = {
            "open": "#open-tree",
            "encode": "#enc-layers" if self.query_one(EncodePane).running else "#enc-start",
            "verify": "#ver-start",
            "inspect": "#inspect-pane",
        }[tab]
        widget = self.query_one(target)
        if widget.disabled:
            widget = self.query_one("#enc-layers") if tab == "encode" else self.query_one("#ver-log")
        widget.focus()

    def action_start(self) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active == "verify":
            self.query_one(VerifyPane).start()
        else:
            self.action_show_tab("encode")
            self.query_one(EncodePane).start()

    def action_cancel(self) -> None:
        if isinstance(self.focused, Input):  # Escape leaves a text field; a second Escape cancels
            self.set_focus(None)
            return
        self.query_one(EncodePane).cancel()
        self.query_one(VerifyPane).cancel()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def make_app(path: Path | None = None, model: str | None = None, root: Path | None = None) -> LmgcApp:
    """The one place the app is built: used by the CLI and by the tests."""
    return LmgcApp(path=path, model=model, root=root)
