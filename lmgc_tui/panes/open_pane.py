"""Open: browse to a .safetensors or .lmgc file (or type its path) and preview its tensors."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, DirectoryTree, Input, Static

from lmgc_format.errors import LmgcError
from lmgc_format.inspect import describe_archive
from lmgc_format.tensors.source import read_layout

from ..fmt import human_bytes, plain

SUFFIXES = (".safetensors", ".lmgc")


class GradientTree(DirectoryTree):
    """A directory tree that lists only folders and the files lmgc can open."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix in SUFFIXES)]


class FileChosen(Message):
    """A file was opened successfully: ``kind`` is "safetensors" or "lmgc"."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__()
        self.path = path
        self.kind = kind


class OpenPane(Vertical):
    DEFAULT_CSS = """
    OpenPane #open-body { height: 1fr; }
    OpenPane GradientTree { width: 1fr; min-width: 30; }
    OpenPane #open-right { width: 1fr; }
    OpenPane #open-info { height: auto; padding: 0 1; }
    OpenPane #open-info.error { color: $error; }
    OpenPane #open-tensors { height: 1fr; }
    """

    def __init__(self, root: Path, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.root = root

    def compose(self) -> ComposeResult:
        yield Input(placeholder="path to a .safetensors or .lmgc file, then Enter", id="open-path", compact=True)
        with Horizontal(id="open-body"):
            yield GradientTree(self.root, id="open-tree")
            with Vertical(id="open-right"):
                yield Static(
                    "Pick a .safetensors file to encode or a .lmgc archive to verify and inspect.", id="open-info"
                )
                yield DataTable(id="open-tensors", cursor_type="row", zebra_stripes=True)

    def reload(self) -> None:
        self.query_one(GradientTree).reload()

    def on_descendant_focus(self, event: object) -> None:
        # Coming back to the tree shows the files written meanwhile (the archives this app made, say).
        if getattr(event, "widget", None) is self.query_one(GradientTree):
            self.reload()

    def on_mount(self) -> None:
        table = self.query_one("#open-tensors", DataTable)
        for col in ("tensor", "dtype", "shape", "size"):
            table.add_column(col, key=col)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.open_path(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "open-path" and event.value.strip():
            event.stop()
            self.open_path(Path(event.value.strip()).expanduser())

    def open_path(self, path: Path) -> None:
        """Read the file's header (no tensor data, no model) and show what it holds."""
        info = self.query_one("#open-info", Static)
        table = self.query_one("#open-tensors", DataTable)
        table.clear()
        try:
            if path.suffix == ".lmgc":
                desc = describe_archive(path)
                rows = [(t["name"], t["dtype"], t["shape"], t["bytes"]) for t in desc["tensors"]]
                model = desc["model"]["id"] if desc["model"] else "no model"
                text = (
                    f"{path}: .lmgc archive, {desc['archive_size']:,} bytes = "
                    f"{desc['totals']['percent_of_original']} % of {desc['source']['size']:,}; "
                    f"{len(rows)} tensors; {model}, scheme {desc['serialization']['scheme']}"
                )
                kind = "lmgc"
            else:
                layout = read_layout(path)
                rows = [(t.name, t.dtype, list(t.shape), t.nbytes) for t in layout.tensors]
                text = (
                    f"{path}: safetensors, {layout.file_size:,} bytes, {len(rows)} tensors, "
                    f"{layout.data_size:,} bytes of tensor data"
                )
                kind = "safetensors"
        except LmgcError as exc:
            info.set_class(True, "error")
            info.update(plain(f"cannot open {path}: {exc}"))
            self.app.notify(str(exc), title="cannot open file", severity="error", markup=False)
            return
        info.set_class(False, "error")
        info.update(plain(text))
        for name, dtype, shape, nbytes in rows:
            table.add_row(plain(name), dtype, "×".join(map(str, shape)) or "scalar", human_bytes(nbytes))
        self.post_message(FileChosen(path, kind))
