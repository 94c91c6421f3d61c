"""Inspect: an archive's header, model, scheme, window layout, per-tensor bits/byte and chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from lmgc_format.errors import LmgcError
from lmgc_format.inspect import describe_archive

from ..inspect_view import inspect_renderables


class InspectPane(VerticalScroll):
    DEFAULT_CSS = """
    InspectPane > Static { padding: 0 1; }
    InspectPane #insp-empty.error { color: $error; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.info: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static("Open a .lmgc archive (Open tab) to see what is inside.", id="insp-empty")

    def show(self, path: Path) -> bool:
        """Describe ``path``; on a bad archive show the error instead. Returns success."""
        self.remove_children()
        try:
            self.info = describe_archive(path)
        except LmgcError as exc:
            self.info = None
            self.mount(Static(f"cannot inspect {path}: {exc}", id="insp-empty", classes="error"))
            self.app.notify(str(exc), title="not a valid archive", severity="error", markup=False)
            return False
        self.mount_all([Static(part) for part in inspect_renderables(self.info, with_chunks=True)])
        return True
