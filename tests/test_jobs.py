"""Worker plumbing: the event buffer and how a job's ending becomes an Outcome."""

from __future__ import annotations

import threading
from pathlib import Path

from lmgc_format import events as ev
from lmgc_format.errors import CancelledError, InputError
from lmgc_tui.jobs import EventBuffer, run_job


def test_progress_is_coalesced_other_events_kept_in_order() -> None:
    buf = EventBuffer()
    buf(ev.Started("encode", "x", 100))
    for i in range(50):
        buf(ev.Progress("encode", i, 100, i))
    buf(ev.Notice("hello"))
    buf(ev.Progress("encode", 60, 100, 60))
    got = buf.drain()
    assert [type(e).__name__ for e in got] == ["Started", "Progress", "Notice", "Progress"]
    assert got[1].done_bytes == 49 and got[3].done_bytes == 60  # type: ignore[union-attr]
    assert buf.drain() == []


def test_buffer_is_safe_across_threads() -> None:
    buf = EventBuffer()

    def produce(k: int) -> None:
        for i in range(1000):
            buf(ev.Notice(f"{k}:{i}"))

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(buf.drain()) == 4000


def test_run_job_outcomes() -> None:
    ok = run_job("encode", Path("x"), lambda: 42)
    assert ok.ok and ok.result == 42

    def cancelled() -> None:
        raise CancelledError("stop")

    def bad_input() -> None:
        raise InputError("x: no such file")

    def bug() -> None:
        raise ZeroDivisionError

    assert run_job("encode", None, cancelled).cancelled
    out = run_job("encode", None, bad_input)
    assert not out.ok and out.error == "x: no such file"
    assert "unexpected error" in (run_job("verify", None, bug).error or "")
