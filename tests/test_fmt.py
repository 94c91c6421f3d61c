"""Number formatting shared by the CLI and the app."""

from __future__ import annotations

from lmgc_tui.fmt import eta_text, human_bytes, progress_line


def test_human_bytes_units() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1,023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"


def test_eta_text() -> None:
    assert eta_text(None) == "–:–"
    assert eta_text(75) == "1:15"
    assert eta_text(3 * 3600 + 61) == "3:01:01"


def test_progress_line_rate_and_eta() -> None:
    line = progress_line(done=1000, total=3000, tokens=2000, elapsed=40.0)
    assert line == "1,000 B / 2.9 KiB  25 B/s  50 tok/s  ETA 1:20"
