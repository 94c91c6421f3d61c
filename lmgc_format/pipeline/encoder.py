"""Streaming encoder: safetensors file -> .lmgc archive. ``encode_file`` reads the file's layout, picks
the level (levels.py) and hands the job to the quick level (encode_quick.py), the fast level
(encode_fast.py), the LM level (encode_lm.py),
both (``auto``: the smaller archive is kept) or a stored archive."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from lmgc_format.atomic import refuse_existing
from lmgc_format.container.writer import write_stored
from lmgc_format.errors import UnsupportedError
from lmgc_format.events import EventSink, Finished, Notice, Started, ignore
from lmgc_format.lm.models import LoadedModel
from lmgc_format.pipeline.encode_fast import encode_fast
from lmgc_format.pipeline.encode_job import EncodeOptions, EncodeResult, Job, level_for
from lmgc_format.pipeline.encode_lm import encode_lm
from lmgc_format.pipeline.encode_quick import encode_quick
from lmgc_format.tensors.source import read_layout

# Files smaller than this are stored without trying (and without loading a model): the archive's own
# bytes (~120 beyond the tensor table) cannot be won back. Larger ones are stored when coding does not
# win either (container/writer.py), so no archive exceeds its file by more than 24 bytes.
STORE_BELOW = 256


def encode_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    options: EncodeOptions | None = None,
    *,
    overwrite: bool = False,
    on_event: EventSink = ignore,
    cancel: threading.Event | None = None,
    model: LoadedModel | None = None,
) -> EncodeResult:
    """Compress ``source`` into ``target``. Nothing is left under ``target`` unless it succeeds."""
    opts = options or EncodeOptions()
    opts.check()
    start = time.monotonic()
    layout = read_layout(source)
    refuse_existing(target, overwrite)
    if Path(source).resolve() == Path(target).resolve():
        raise UnsupportedError("output would overwrite the input")
    job = Job(source, target, layout, opts, overwrite, on_event, cancel, start, model)
    if opts.fallback and layout.file_size < STORE_BELOW:  # fallback=False: code with the LM, to measure it
        return _store(job)
    choice = level_for(layout, opts)
    if choice.message:
        on_event(Notice(choice.message))
    if choice.level == "fast":
        return encode_fast(job)
    if choice.level == "quick":
        return encode_quick(job)
    if choice.requested == "auto" and opts.fallback:
        return _encode_smaller(job)
    return encode_lm(job)


def _encode_smaller(job: Job) -> EncodeResult:
    """``auto`` within the time budget: the LM level, and the fast level beside it (a second at most on
    what the LM can code in the budget); the smaller whole archive is kept. The LM level's header carries
    its model record and runtime (~330 bytes), more than the LM saves on the smallest files."""
    with tempfile.TemporaryDirectory(dir=Path(job.target).resolve().parent, prefix=".lmgc-fast-") as tmp:
        fast_path = Path(tmp) / "fast.lmgc"
        fast = encode_fast(replace(job, target=fast_path, overwrite=True, on_event=ignore))
        lm = encode_lm(job)
        if fast.archive_size >= lm.archive_size:
            return lm
        os.replace(fast_path, job.target)
    job.on_event(
        Notice(
            f"kept the fast level's archive, {fast.archive_size:,} bytes: the LM level's was {lm.archive_size:,} "
            "(its header records the model and runtime); --level max keeps the LM's"
        )
    )
    return replace(fast, seconds=time.monotonic() - job.start)  # its own 0 tokens: no LM speed for it


def _store(job: Job) -> EncodeResult:
    """A file too small for any model to pay for the archive's own bytes, stored as it is (24 bytes more)."""
    source, target, layout = job.source, job.target, job.layout
    overwrite, on_event, start = job.overwrite, job.on_event, job.start
    on_event(Started("encode", str(source), layout.data_size))
    size, digest = write_stored(target, source, overwrite)
    seconds = time.monotonic() - start
    on_event(Finished("encode", layout.file_size, size, digest.hex(), seconds, 0))
    return EncodeResult(layout.file_size, size, digest.hex(), seconds, 0, {}, layout.data_size, 0, stored=True)
