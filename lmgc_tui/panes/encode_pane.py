"""Encode: settings, Start/Cancel, live progress, per-layer table and chart, log; then verify."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, DataTable, Input, Label, RichLog, Select, Static

from lmgc_format import events as ev
from lmgc_format.errors import LmgcError
from lmgc_format.lm.models import DEFAULT_MODEL
from lmgc_format.pipeline.defaults import DEFAULT_BATCH, DEFAULT_WINDOW_BYTES
from lmgc_format.pipeline.levels import DEFAULT_LEVEL, LEVELS
from lmgc_format.tensors.serialize import DEFAULT_SCHEME, SCHEMES
from lmgc_format.tensors.source import read_layout

from ..fmt import human_bytes, plain, shown
from ..jobs import EventBuffer, JobDone, run_job
from ..layers import LayerBoard
from ..widgets import BitsChart, JobProgress, TickBox

REFRESH_SECONDS = 0.25  # how often buffered progress reaches the widgets


class ArchiveWritten(Message):
    """An encode finished and its archive exists (the app offers it to Verify/Inspect)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


class EncodePane(Vertical):
    DEFAULT_CSS = """
    EncodePane .form { height: auto; }
    EncodePane .form Label { padding: 0 1 0 0; }
    EncodePane .form Input { width: 1fr; }
    EncodePane #enc-window, EncodePane #enc-batch { width: 8; }
    EncodePane #enc-scheme { width: 18; }
    EncodePane #enc-level { width: 12; }
    EncodePane #enc-choice { height: auto; padding: 0 1; color: $text-muted; }
    EncodePane #enc-source { height: 1; padding: 0 1; color: $text-muted; }
    EncodePane #enc-result { height: auto; padding: 0 1; }
    EncodePane #enc-result.ok { background: $success 30%; color: $text; text-style: bold; }
    EncodePane #enc-result.bad { background: $error 30%; color: $text; text-style: bold; }
    EncodePane #enc-body { height: 1fr; }
    EncodePane #enc-layers { width: 3fr; }
    EncodePane BitsChart { width: 2fr; min-width: 30; }
    EncodePane #enc-log { height: 5; border-top: solid $primary 40%; }
    """

    def __init__(self, model: str | None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.default_model = model or DEFAULT_MODEL
        self.source: Path | None = None
        self.board: LayerBoard | None = None
        self.buffer = EventBuffer()
        self.cancel_event = threading.Event()
        self.running = False
        self.phase = ""

    def compose(self) -> ComposeResult:
        yield Static("no file opened: pick one in the Open tab (o)", id="enc-source")
        with Horizontal(classes="form"):
            yield Label("level")
            yield Select(
                [(level, level) for level in LEVELS],
                value=DEFAULT_LEVEL,
                allow_blank=False,
                id="enc-level",
                compact=True,
                tooltip="fast: no LM, MB/s; max: the LM, ~1 % smaller, slow; auto: max where it fits the budget",
            )
            yield Label(" model")
            yield Input(self.default_model, id="enc-model", compact=True, tooltip="packaged name, HF dir or .gguf")
            yield Label(" scheme")
            yield Select(
                [(s, s) for s in SCHEMES], value=DEFAULT_SCHEME, allow_blank=False, id="enc-scheme", compact=True
            )
        with Horizontal(classes="form"):
            yield Label("window")
            yield Input(str(DEFAULT_WINDOW_BYTES), id="enc-window", type="integer", compact=True)
            yield Label(" batch")
            yield Input(str(DEFAULT_BATCH), id="enc-batch", type="integer", compact=True)
            yield Label(" output")
            yield Input("", id="enc-output", compact=True, placeholder="FILE.lmgc")
            yield Label(" reference")
            yield Input(
                "",
                id="enc-reference",
                compact=True,
                placeholder="OLD.safetensors (optional)",
                tooltip="the previous step, which the decoder holds too: tensors are coded against it where smaller",
            )
        with Horizontal(classes="form"):
            yield TickBox("verify after encoding", True, id="enc-verify", compact=True)
            yield TickBox("overwrite output", False, id="enc-overwrite", compact=True)
            yield Button("Start", id="enc-start", variant="primary", compact=True)
            yield Label(" ")
            yield Button("Cancel", id="enc-cancel", variant="error", compact=True, disabled=True)
        yield Static("", id="enc-choice")
        yield JobProgress("enc", id="enc-progress-row")
        yield Static("", id="enc-result")
        with Horizontal(id="enc-body"):
            yield DataTable(id="enc-layers", zebra_stripes=True, cursor_type="row")
            yield BitsChart(id="enc-chart")
        yield RichLog(id="enc-log", wrap=True, markup=True)

    def on_mount(self) -> None:
        table = self.query_one("#enc-layers", DataTable)
        for col in ("tensor", "size", "bits/byte", "% orig", "status"):
            table.add_column(col, key=col)
        self.set_interval(REFRESH_SECONDS, self.flush)

    # -- what the rest of the app calls ---------------------------------------------------------

    def set_source(self, path: Path) -> None:
        if self.running:
            self.app.notify("an encode is running: cancel it first", severity="warning")
            return
        layout = read_layout(path)
        self.source = path
        self.board = LayerBoard(layout.tensors)
        self.query_one("#enc-source", Static).update(
            plain(f"source: {path} ({layout.file_size:,} bytes, {len(layout.tensors)} tensors)")
        )
        self.query_one("#enc-output", Input).value = str(path.with_name(path.name + ".lmgc"))
        self.query_one("#enc-result", Static).update("")
        self.query_one("#enc-result", Static).set_classes("")
        self._show_choice()
        self._fill_table()
        self.query_one(BitsChart).show(self.board)

    def start(self) -> None:
        if self.running:
            return
        if self.source is None:
            self.app.notify("open a .safetensors file first (Open tab)", severity="warning")
            return
        try:
            window = int(self.query_one("#enc-window", Input).value)
            batch = int(self.query_one("#enc-batch", Input).value)
        except ValueError:
            self.app.notify("window and batch must be whole numbers", severity="error")
            return
        output = self.query_one("#enc-output", Input).value.strip()
        target = Path(output) if output else self.source.with_name(self.source.name + ".lmgc")
        scheme = self.query_one("#enc-scheme", Select).value
        model = self.query_one("#enc-model", Input).value.strip() or None
        from lmgc_format.pipeline.encoder import EncodeOptions

        level = str(self.query_one("#enc-level", Select).value)
        reference = self.query_one("#enc-reference", Input).value.strip() or None
        if reference is not None and not Path(reference).expanduser().is_file():
            self.app.notify(f"reference {reference}: no such file", title="settings", severity="error", markup=False)
            return
        opts = EncodeOptions(
            model=model,
            scheme=str(scheme),
            window_bytes=window,
            batch=batch,
            level=level,
            reference=None if reference is None else str(Path(reference).expanduser()),
        )
        try:
            opts.check()
        except LmgcError as exc:
            self.app.notify(str(exc), title="settings", severity="error", markup=False)
            return
        self.set_source(self.source)  # fresh table
        self.cancel_event = threading.Event()
        self.buffer.drain()
        self._set_running(True)
        choice = self._show_choice()
        using = f"the LM {model or DEFAULT_MODEL}, scheme {scheme}" if choice == "max" else "the fast level (no LM)"
        if reference is not None:
            using += f", against the reference {reference}"
        self.log_line(f"encoding {shown(self.source)} → {shown(target)} with {shown(using)}")
        if choice == "max":  # a minute or more before the first byte is coded: say why nothing moves
            self.query_one(JobProgress).waiting(f"loading model {model or DEFAULT_MODEL} …")
            self.log_line(f"loading model {shown(model or DEFAULT_MODEL)} …")
        self.run_worker_job(
            self.source,
            target,
            opts,
            self.query_one("#enc-overwrite", Checkbox).value,
            self.query_one("#enc-verify", Checkbox).value,
        )

    def cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.log_line("[yellow]cancelling…[/]")

    # -- the worker ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="encode")
    def run_worker_job(self, source: Path, target: Path, opts: object, overwrite: bool, verify: bool) -> None:
        from lmgc_format.pipeline.decoder import DecodeOptions, decode_file
        from lmgc_format.pipeline.encoder import EncodeOptions, encode_file

        assert isinstance(opts, EncodeOptions)
        outcome = run_job(
            "encode",
            target,
            lambda: encode_file(
                source, target, opts, overwrite=overwrite, on_event=self.buffer, cancel=self.cancel_event
            ),
        )
        self.post_message(JobDone(outcome))
        if outcome.ok and verify:
            check = run_job(
                "verify",
                target,
                lambda: decode_file(
                    target,
                    None,
                    DecodeOptions(model=opts.model, reference=opts.reference),
                    on_event=self.buffer,
                    cancel=self.cancel_event,
                ),
            )
            self.post_message(JobDone(check))

    # -- turning events into widgets (on the UI thread) -----------------------------------------

    def flush(self) -> None:
        events = self.buffer.drain()
        if not events:
            return
        changed: set[str] = set()
        for event in events:
            if isinstance(event, ev.Started):
                self.phase = event.operation
                self.query_one(JobProgress).begin(event.total_bytes)
            elif isinstance(event, ev.Notice):
                self.log_line(f"[yellow]note:[/] {shown(event.message)}")
            elif isinstance(event, ev.Progress):
                self.query_one(JobProgress).show(event, self.phase)
            if self.board is not None and self.phase == "encode":
                changed |= self.board.apply(event)
            if isinstance(event, ev.ChunkDone) and self.phase == "encode":
                names = ", ".join(n for n, _, _ in event.tensors)
                self.log_line(
                    f"chunk {event.index}: {event.data_length:,} B → {event.payload_length:,} B ({event.codec}) "
                    + shown(names)
                )
        if changed:
            self._update_rows(changed)
            self.query_one(BitsChart).show(self.board)

    def on_job_done(self, message: JobDone) -> None:
        message.stop()
        self.flush()
        out = message.outcome
        result = self.query_one("#enc-result", Static)
        if out.operation == "encode" and out.ok:
            r = out.result
            pct = 100 * r.coded_bytes / r.data_bytes if r.data_bytes else 0.0
            text = (
                f"encoded: tensor data {r.data_bytes:,} → {r.coded_bytes:,} bytes ({pct:.2f} %), "
                f"archive {r.archive_size:,} bytes ({100 * r.ratio:.2f} % of the file), {r.seconds:.1f} s"
            )
            if r.stored:
                why = "would not make it smaller" if r.coded_bytes else "cannot pay off on a file this small"
                text = f"stored as it is: archive {r.archive_size:,} bytes (the file + 24): coding {why}"
            self.log_line(f"[green]{shown(text)}[/]")
            result.update(plain(text))
            if out.target is not None:
                self.post_message(ArchiveWritten(out.target))
            if not self.query_one("#enc-verify", Checkbox).value:
                self._set_running(False)
            return
        if out.operation == "verify" and out.ok:
            text = f"verified: {out.result.source_size:,} bytes identical (SHA-256 {out.result.sha256[:16]}…)"
            result.set_classes("ok")
            result.update(plain("✔ " + text))
            self.log_line(f"[bold green]{shown(text)}[/]")
            self.app.notify(text, title="round trip verified", markup=False)
        elif out.cancelled:
            text = f"{out.operation} cancelled: no output was written"
            self._stop_rows("cancelled")
            result.set_classes("bad")
            result.update(plain(text))
            self.log_line(f"[yellow]{shown(text)}[/]")
            self.app.notify(text, severity="warning", markup=False)
        else:
            text = f"{out.operation} failed: {out.error}"
            self._stop_rows("failed")
            result.set_classes("bad")
            result.update(plain("✘ " + text))
            self.log_line(f"[red]{shown(text)}[/]")
            self.app.notify(str(out.error), title=f"{out.operation} failed", severity="error", markup=False)
        self._set_running(False)

    # -- helpers ----------------------------------------------------------------------------------

    def _stop_rows(self, status: str) -> None:
        """No row stays "coding" and no ETA stays on screen once a job has stopped early."""
        self.query_one(JobProgress).stopped(status)
        if self.board is not None and self.phase == "encode":
            self._update_rows(self.board.stop(status))

    def _show_choice(self) -> str:
        """Say before Start which level the settings give for the opened file (as the CLI does)."""
        from lmgc_format.pipeline.encode_job import EncodeOptions, level_for

        label = self.query_one("#enc-choice", Static)
        if self.source is None:
            label.update("")
            return ""
        level = str(self.query_one("#enc-level", Select).value)
        choice = level_for(read_layout(self.source), EncodeOptions(level=level))
        label.update(Text(choice.message or f"{choice.level} level, as chosen"))
        return choice.level

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "enc-level" and not self.running:
            self._show_choice()

    def log_line(self, text: str) -> None:
        self.query_one("#enc-log", RichLog).write(text)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#enc-start", Button).disabled = running
        self.query_one("#enc-cancel", Button).disabled = not running

    def _fill_table(self) -> None:
        table = self.query_one("#enc-layers", DataTable)
        table.clear()
        if self.board is None:
            return
        for row in self.board.rows.values():
            table.add_row(plain(row.name), human_bytes(row.nbytes), "-", "-", row.status, key=row.name)

    def _update_rows(self, names: set[str]) -> None:
        table = self.query_one("#enc-layers", DataTable)
        assert self.board is not None
        for name in names:
            row = self.board.rows[name]
            bpb = row.bits_per_byte
            table.update_cell(name, "bits/byte", "-" if bpb is None else f"{bpb:.3f}")
            table.update_cell(name, "% orig", "-" if row.percent is None else f"{row.percent:.1f}")
            table.update_cell(name, "status", row.status)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "enc-start":
            event.stop()
            self.start()
        elif event.button.id == "enc-cancel":
            event.stop()
            self.cancel()
