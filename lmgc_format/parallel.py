"""LM chunks coded in worker processes (``--workers N``), with the same bytes as one process.

Chunks are independent given the model: each has its own range coder, mixer
state and KV cache (lmchunk.py). So N processes can code N chunks at once.
Every worker loads the model itself (checked against the archive's SHA-256
fingerprint) and runs torch with one fixed thread count, the count the archive
records (runtime ``threads``): logits, and so the bytes, are then identical to
one process running with that many threads (tests/test_parallel.py).

The main process keeps the order: it submits the next few chunks ahead, takes
their results in chunk order, and writes them as a single process would. A
worker reports a chunk when it is done, so progress moves chunk by chunk.
Processes are started with ``spawn`` (no fork of a process holding torch
threads); starting one costs an interpreter, torch and the model (26-28 s for
the default model on the 2-core development machine, BENCHMARKS.md "Speed").
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from .errors import CancelledError, ModelMismatchError
from .plan import Window


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to rebuild the encoder's or decoder's predictor exactly."""

    model: str  # packaged name, HF directory or .gguf file
    sha256: str  # the weights the main process loaded: a worker that loads others refuses
    dtype: str
    device: str | None
    scheme: str
    procedure: str  # engine + mixing, as recorded
    restricted_head: bool
    threads: int

    @classmethod
    def of(cls, lm: Any, scheme: str, procedure: str, restricted_head: bool) -> WorkerSetup:
        """For the loaded model ``lm`` (models.LoadedModel), with this process's torch thread count."""
        import torch

        src = lm.source
        if src.kind == "packaged":
            where = str(src.id)
        else:
            where = str(src.directory / src.gguf_file) if src.gguf_file else str(src.directory)
        info = lm.info
        return cls(
            where, info.sha256, info.dtype, lm.device, scheme, procedure, restricted_head, torch.get_num_threads()
        )


_state: dict[str, Any] = {}


def _start(setup: WorkerSetup) -> None:
    import torch

    from .alphabet import Alphabet, vocabulary_bytes
    from .models import get
    from .predictor import make_predictor, split_procedure
    from .serialize import get_scheme

    torch.set_num_threads(setup.threads)
    lm = get(setup.model, setup.dtype, setup.device)
    if lm.info.sha256 != setup.sha256:
        raise ModelMismatchError(f"worker loaded {setup.model!r} with other weights than the main process")
    scheme = get_scheme(setup.scheme)
    alphabet = Alphabet.from_vocabulary(vocabulary_bytes(lm.tokenizer), scheme)
    _state.update(
        lm=lm,
        scheme=scheme,
        alphabet=alphabet,
        predictor=make_predictor(lm, alphabet, setup.procedure, setup.restricted_head),
        mixing=split_procedure(setup.procedure)[1],
    )


def _encode(windows: tuple[Window, ...], data: list[bytes], msb_first: bool) -> tuple[bytes, list[float], int]:
    from .lmchunk import encode_windows

    s = _state
    return encode_windows(
        s["predictor"], s["alphabet"], s["scheme"], windows, data, s["lm"].tokenizer, msb_first, mixing=s["mixing"]
    )


def _decode(windows: tuple[Window, ...], payload: bytes, msb_first: bool) -> list[bytes]:
    from .lmchunk import decode_windows

    s = _state
    return decode_windows(s["predictor"], s["alphabet"], s["scheme"], windows, payload, msb_first, mixing=s["mixing"])


class WorkerPool:
    """N worker processes that code LM chunks; results are taken in the order asked for."""

    def __init__(self, setup: WorkerSetup, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_start, initargs=(setup,)
        )

    def encode(self, windows: tuple[Window, ...], data: list[bytes], msb_first: bool) -> Future[Any]:
        return self._pool.submit(_encode, windows, data, msb_first)

    def decode(self, windows: tuple[Window, ...], payload: bytes, msb_first: bool) -> Future[Any]:
        return self._pool.submit(_decode, windows, payload, msb_first)

    def close(self) -> None:
        """Stop now: queued chunks are dropped and the processes ended, also mid-chunk (after an
        error or a cancel nobody wants the rest; after success they are idle)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=10)


def result(future: Future[Any], cancel: threading.Event | None) -> Any:
    """The future's result, checking ``cancel`` a few times a second while it runs."""
    while True:
        done, _ = wait([future], timeout=0.25, return_when=FIRST_COMPLETED)
        if done:
            return future.result()
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled")
