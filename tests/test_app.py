"""The Textual app, driven by Pilot with the tiny seeded model: real encodes, real verifies."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from safetensors.torch import save_file
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, RichLog, Static, TabbedContent

from lmgc_format.pipeline.encoder import EncodeOptions, encode_file
from lmgc_tui.app import LmgcApp, make_app
from lmgc_tui.help_screen import HelpScreen
from lmgc_tui.panes.encode_pane import EncodePane
from lmgc_tui.panes.inspect_pane import InspectPane
from lmgc_tui.widgets import TickBox
from tests.conftest import gradient_like


async def wait_for(pilot: Pilot[None], cond: Callable[[], bool], timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def text_of(app: LmgcApp, selector: str) -> str:
    return str(app.query_one(selector, Static).content)


def rendered(app: LmgcApp, selector: str) -> str:
    """Text of every Static under ``selector`` as a wide terminal would print it."""
    console = Console(width=250, record=True, file=io.StringIO())
    for widget in app.query_one(selector).query(Static):
        console.print(widget.content)
    return console.export_text()


def notes(app: LmgcApp) -> list[tuple[str, str]]:
    return [(n.severity, n.message) for n in app._notifications]


async def test_encode_fills_the_layer_table_and_verifies(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    app = make_app(path=small_file, model=tiny_model)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "encode"
        table = app.query_one("#enc-layers", DataTable)
        assert table.row_count == 3  # layer.weight, layer.bias, steps
        assert table.get_cell("layer.weight", "bits/byte") == "-"
        app.query_one("#enc-window", expect_type=None).value = "32"  # type: ignore[attr-defined]
        await pilot.press("s")
        pane = app.query_one(EncodePane)
        await wait_for(pilot, lambda: not pane.running)
        result = app.query_one("#enc-result", Static)
        assert result.has_class("ok"), text_of(app, "#enc-result")
        assert "verified" in text_of(app, "#enc-result")
        archive = small_file.with_name(small_file.name + ".lmgc")
        assert archive.exists()
        for name in ("layer.weight", "layer.bias", "steps"):
            bpb = table.get_cell(name, "bits/byte")
            assert bpb != "-" and 0 < float(bpb) <= 9.0  # a 24-byte tensor first in its chunk: ~8 + its flush share
            assert table.get_cell(name, "status") == "done"
        # the archive reached the Inspect tab: its header values are on screen. auto coded the file with the
        # LM (the table above) and with the fast level, and kept the smaller: the random tiny model loses here.
        inspect = app.query_one(InspectPane)
        assert inspect.info is not None and inspect.info["windows"]["procedure"] == "cm-fast-v2"
        shown = rendered(app, "#inspect-pane")
        assert "cm-fast-v2" in shown and "layer.weight" in shown


async def test_level_choice_shows_before_start_and_fast_encode_verifies(tmp_path: Path) -> None:
    src = tmp_path / "big.safetensors"
    save_file({"w": gradient_like((128, 256), 3), "b": gradient_like((128,), 4)}, str(src))
    app = make_app(path=src, model="no-such-model")  # the fast level never loads a model
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        choice = text_of(app, "#enc-choice")
        assert "using the fast level" in choice and "--level max" in choice
        app.query_one("#enc-level").value = "max"  # type: ignore[attr-defined]
        await pilot.pause()
        assert "max level" in text_of(app, "#enc-choice")
        app.query_one("#enc-level").value = "fast"  # type: ignore[attr-defined]
        await pilot.pause()
        pane = app.query_one(EncodePane)
        await pilot.press("s")
        await wait_for(pilot, lambda: not pane.running)
        assert "verified" in text_of(app, "#enc-result"), text_of(app, "#enc-result")
        table = app.query_one("#enc-layers", DataTable)
        assert float(table.get_cell("w", "bits/byte")) < 8.0


async def test_cancel_leaves_no_output(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "big.safetensors"
    save_file({"w": gradient_like((64, 256), 3), "v": gradient_like((64, 256), 4)}, str(src))
    app = make_app(path=src, model=tiny_model)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.query_one("#enc-verify").value = False  # type: ignore[attr-defined]
        app.query_one("#enc-level").value = "max"  # type: ignore[attr-defined]  # the LM: slow enough to cancel
        pane = app.query_one(EncodePane)
        await pilot.press("s")
        assert pane.running
        bar = app.query_one("#enc-bar")
        await wait_for(pilot, lambda: (bar.progress or 0) > 0)  # type: ignore[attr-defined]
        # tabs switch while a job runs (focus is on a widget of the running pane)
        await pilot.press("i")
        assert app.query_one(TabbedContent).active == "inspect"
        await pilot.press("e")
        assert app.query_one(TabbedContent).active == "encode"
        await pilot.press("escape")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await wait_for(pilot, lambda: not pane.running, timeout=30)
        assert loop.time() - t0 < 5
        assert app.query_one("#enc-result", Static).has_class("bad")
        assert "cancelled" in text_of(app, "#enc-result")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.safetensors"]  # no archive, no temp file


async def test_corrupt_archive_is_an_error_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "broken.lmgc"
    bad.write_bytes(b"\x89LMGC\r\n\x1a" + b"\x00" * 40)
    app = make_app(path=bad)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert any(sev == "error" for sev, _ in notes(app))
        assert "cannot open" in text_of(app, "#open-info")
        assert app.is_running


async def test_inspect_shows_the_header(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    # fallback off: the tiny random model loses to the file, which would then be stored without its scheme
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32, scheme="space", fallback=False))
    app = make_app(path=arc, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "inspect"
        shown = rendered(app, "#inspect-pane")
        assert "space" in shown and "layer.weight" in shown
        # the Verify tab got the path; verifying it turns green
        await pilot.press("v")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.query_one("#verify-pane").running)  # type: ignore[attr-defined]
        assert app.query_one("#ver-result", Static).has_class("ok"), text_of(app, "#ver-result")


async def test_verify_names_the_damaged_chunk(tmp_path: Path, tiny_model: str, small_file: Path) -> None:
    arc = tmp_path / "g.lmgc"
    encode_file(small_file, arc, EncodeOptions(model=tiny_model, window_bytes=32, fallback=False))
    raw = bytearray(arc.read_bytes())
    from lmgc_format.container.reader import ArchiveReader

    with ArchiveReader(arc) as r:
        at = r.payload_offset(0)
    raw[at] ^= 0x01  # a flipped bit in chunk 0's payload
    arc.write_bytes(bytes(raw))
    app = make_app(model=tiny_model, root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("v")
        await pilot.click("#ver-path")
        await pilot.press(*str(arc), "enter")
        await wait_for(pilot, lambda: not app.query_one("#verify-pane").running)  # type: ignore[attr-defined]
        assert app.query_one("#ver-result", Static).has_class("bad")
        assert "chunk 0" in text_of(app, "#ver-result")


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_help_theme_and_sizes(size: tuple[int, int], small_file: Path) -> None:
    app = make_app(path=small_file)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        before = app.theme
        await pilot.press("t")
        assert app.theme != before
        for tab in ("o", "e", "v", "i"):
            await pilot.press(tab)
        assert app.query_one(TabbedContent).active == "inspect"


async def test_missing_model_is_a_message_not_a_crash(tmp_path: Path, small_file: Path) -> None:
    app = make_app(path=small_file, model=str(tmp_path / "no-such-model"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.query_one("#enc-level").value = "max"  # type: ignore[attr-defined]  # auto needs no model here
        await pilot.pause()
        await pilot.press("s")
        pane = app.query_one(EncodePane)
        await wait_for(pilot, lambda: not pane.running, timeout=60)
        assert app.query_one("#enc-result", Static).has_class("bad")
        assert "encode failed" in text_of(app, "#enc-result")
        assert any(sev == "error" for sev, _ in notes(app))
        assert app.is_running
    assert not small_file.with_name(small_file.name + ".lmgc").exists()


async def test_hostile_names_do_not_break_the_app(tmp_path: Path) -> None:
    """A tensor named like Rich markup or a terminal escape is shown as text (issue 21, items 6 and 8)."""
    src = tmp_path / "g[red].safetensors"
    names = ["[/x]", "a\x1b]0;t\x07b"]
    save_file({n: gradient_like((16, 16), i) for i, n in enumerate(names)}, str(src))
    app = make_app(path=src, model="no-such-model")
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause()
        table = app.query_one("#enc-layers", DataTable)
        assert str(table.get_cell("[/x]", "tensor")) == "[/x]"
        assert str(table.get_cell("a\x1b]0;t\x07b", "tensor")) == "a\\x1b]0;t\\x07b"
        app.query_one("#enc-level").value = "fast"  # type: ignore[attr-defined]
        pane = app.query_one(EncodePane)
        await pilot.press("s")
        await wait_for(pilot, lambda: not pane.running)
        assert "verified" in text_of(app, "#enc-result")
        assert app.is_running


async def test_letters_typed_into_a_field_stay_text(tmp_path: Path, small_file: Path) -> None:
    """Typing a path with q, s, e, o, v, i, t in it neither quits, starts, nor switches tabs (issue 21,
    item 12); Escape leaves the field and the keys work again; o puts the cursor in the path field."""
    app = make_app(path=small_file, model="no-such-model")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        output = app.query_one("#enc-output", Input)
        output.value = ""
        output.focus()
        await pilot.pause()
        await pilot.press(*"quest/voice.safetensors.lmgc")
        assert output.value == "quest/voice.safetensors.lmgc"
        shown = {b.binding.key for b in app.active_bindings.values() if b.binding.show and b.enabled}
        assert not shown & set("qseovit")  # no letter key is live while the field has focus
        assert app.is_running and app.query_one(TabbedContent).active == "encode"
        assert not app.query_one(EncodePane).running
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)
        await pilot.press("o")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "open" and app.focused is app.query_one("#open-tree")
        await pilot.press("o")  # o again, on the Open tab: the path field
        await pilot.pause()
        assert app.focused is app.query_one("#open-path")
        await pilot.press("escape", "i")
        await pilot.pause()
        assert app.query_one(TabbedContent).active == "inspect"
        await pilot.press("v")
        await pilot.pause()
        keys = {b.binding.key: b.enabled for b in app.active_bindings.values() if b.binding.show}
        assert app.query_one(TabbedContent).active == "verify" and keys.get("q") is True  # the key bar stays


async def test_checkboxes_differ_in_shape_and_cancel_clears_the_rows(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "big.safetensors"
    save_file({"w": gradient_like((64, 256), 3), "v": gradient_like((64, 256), 4)}, str(src))
    app = make_app(path=src, model=tiny_model)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        verify, overwrite = app.query_one("#enc-verify", TickBox), app.query_one("#enc-overwrite", TickBox)
        assert (verify.value, overwrite.value) == (True, False)
        assert verify.BUTTON_INNER != overwrite.BUTTON_INNER and verify.BUTTON_INNER.strip()
        assert app.query_one("#enc-bar", ProgressBar).total == 1  # no animation before a job
        app.query_one("#enc-level").value = "max"  # type: ignore[attr-defined]
        pane = app.query_one(EncodePane)
        await pilot.press("s")
        log = app.query_one("#enc-log", RichLog)
        assert any("loading model" in line.text for line in log.lines)
        await wait_for(pilot, lambda: any(r.status == "coding" for r in pane.board.rows.values()))  # type: ignore[union-attr]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not pane.running, timeout=30)
        table = app.query_one("#enc-layers", DataTable)
        assert "coding" not in {str(table.get_cell(n, "status")) for n in ("w", "v")}
        assert "ETA" not in str(app.query_one("#enc-stats", Static).content)


async def test_encode_against_a_reference_verifies_and_inspect_shows_it(tmp_path: Path) -> None:
    """The Encode tab's reference field (issue: --reference): the archive is coded against it, verified
    with it, and the Inspect tab shows the recorded reference; the Verify tab needs it too."""
    from tests.test_reference import GOLDEN, GOLDEN_REF

    src = tmp_path / "new.safetensors"
    src.write_bytes(GOLDEN.read_bytes())
    app = make_app(path=src, model="no-such-model")
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.pause()
        app.query_one("#enc-level").value = "fast"  # type: ignore[attr-defined]
        app.query_one("#enc-reference", Input).value = str(GOLDEN_REF)
        await pilot.pause()
        pane = app.query_one(EncodePane)
        await pilot.press("s")
        await wait_for(pilot, lambda: not pane.running)
        assert "verified" in text_of(app, "#enc-result"), text_of(app, "#enc-result")
        inspect = app.query_one(InspectPane)
        assert inspect.info is not None and inspect.info["reference"]["tensors"] == ["fc.weight", "emb"]
        assert "reference" in rendered(app, "#inspect-pane")
        app.query_one("#enc-reference", Input).value = str(tmp_path / "missing.safetensors")
        await pilot.press("s")
        await pilot.pause()
        assert any("no such file" in message for _, message in notes(app))
