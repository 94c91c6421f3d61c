"""Verify: decode an archive in memory, check every CRC and the SHA-256, say so in green or red."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, RichLog, Static

from lmgc_format import events as ev

from ..fmt import plain
from ..jobs import EventBuffer, JobDone, run_job
from ..widgets import JobProgress

REFRESH_SECONDS = 0.25


class VerifyPane(Vertical):
    DEFAULT_CSS = """
    VerifyPane .form { height: auto; }
    VerifyPane #ver-path { width: 1fr; }
    VerifyPane #ver-progress-row { margin: 1 0 0 0; }
    VerifyPane #ver-result { height: auto; padding: 1 2; margin: 1 0; }
    VerifyPane #ver-result.ok { background: $success 30%; text-style: bold; }
    VerifyPane #ver-result.bad { background: $error 30%; text-style: bold; }
    VerifyPane #ver-log { height: 1fr; }
    """

    def __init__(self, model: str | None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.buffer = EventBuffer()
        self.cancel_event = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form"):
            yield Input(placeholder="archive.lmgc", id="ver-path", compact=True)
            yield Input(
                placeholder="reference (if coded against one)",
                id="ver-reference",
                compact=True,
                tooltip="the safetensors file the archive was coded against (compress --reference)",
            )
            yield Button("Verify", id="ver-start", variant="primary", compact=True)
            yield Button("Cancel", id="ver-cancel", variant="error", compact=True, disabled=True)
        yield JobProgress("ver", id="ver-progress-row")
        yield Static(
            "Decodes the archive in memory and compares CRCs and the SHA-256 of the original.", id="ver-result"
        )
        yield RichLog(id="ver-log", wrap=True, markup=True)

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self.flush)

    def set_archive(self, path: Path) -> None:
        self.query_one("#ver-path", Input).value = str(path)

    def start(self) -> None:
        if self.running:
            return
        text = self.query_one("#ver-path", Input).value.strip()
        if not text:
            self.app.notify("give an archive path (or open one in the Open tab)", severity="warning")
            return
        path = Path(text).expanduser()
        self.cancel_event = threading.Event()
        self.buffer.drain()
        self._set_running(True)
        result = self.query_one("#ver-result", Static)
        result.set_classes("")
        result.update(plain(f"verifying {path} …"))
        self.query_one("#ver-log", RichLog).write(plain(f"verifying {path}"))
        reference = self.query_one("#ver-reference", Input).value.strip() or None
        self.run_verify(path, reference)

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify")
    def run_verify(self, path: Path, reference: str | None = None) -> None:
        from lmgc_format.pipeline.decoder import DecodeOptions, decode_file

        # model=None: the archive names its model; a user override comes from the app's --model
        opts = DecodeOptions(model=self.model, reference=reference)
        self.post_message(
            JobDone(
                run_job(
                    "verify",
                    path,
                    lambda: decode_file(path, None, opts, on_event=self.buffer, cancel=self.cancel_event),
                )
            )
        )

    def flush(self) -> None:
        for event in self.buffer.drain():
            if isinstance(event, ev.Started):
                self.query_one(JobProgress).begin(event.total_bytes)
            elif isinstance(event, ev.Progress):
                self.query_one(JobProgress).show(event)
            elif isinstance(event, ev.Notice):
                self.query_one("#ver-log", RichLog).write(Text("note: ", style="yellow") + plain(event.message))

    def on_job_done(self, message: JobDone) -> None:
        message.stop()
        self.flush()
        out = message.outcome
        result = self.query_one("#ver-result", Static)
        log = self.query_one("#ver-log", RichLog)
        if out.ok:
            text = (
                f"✔ verified: {out.result.source_size:,} bytes identical "
                f"(SHA-256 {out.result.sha256[:16]}…, {out.seconds:.1f} s)"
            )
            result.set_classes("ok")
            self.app.notify(text, title="round trip verified", markup=False)
        elif out.cancelled:
            text = "verify cancelled"
            result.set_classes("bad")
        else:
            text = f"✘ {out.error}"
            result.set_classes("bad")
            self.app.notify(str(out.error), title="verify failed", severity="error", markup=False)
        result.update(plain(text))
        log.write(plain(text))
        self._set_running(False)

    def cancel(self) -> None:
        if self.running:
            self.cancel_event.set()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#ver-start", Button).disabled = running
        self.query_one("#ver-cancel", Button).disabled = not running

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ver-start":
            event.stop()
            self.start()
        elif event.button.id == "ver-cancel":
            event.stop()
            self.cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "ver-path":
            event.stop()
            self.start()
