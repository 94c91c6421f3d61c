"""LM chunks coded in worker processes (``--workers N``) or Ray actors (``--ray``), with the same bytes as one process.

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
the default model on the 2-core development machine, EXPERIMENTS.md "Speed").

With Ray (:class:`RayPool`) the workers are actors anywhere in a cluster, one
CPU per thread. Every node must have lmgc installed and the model at the same
place (the packaged default is; a path must exist there too). Bytes depend on
the machine's floating point (docs/FORMAT.md "Reproducibility"), so a worker
also computes the runtime fingerprint and refuses to work when it differs
from the main process's: an archive is never written with chunks that only
another kind of node could decode.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Protocol

from lmgc_format.errors import CancelledError, LmgcError, ModelMismatchError, UnsupportedError
from lmgc_format.tensors.plan import Window


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
    runtime: dict[str, Any]  # runtime.describe() of the main process: a worker that computes otherwise refuses
    alphabet: str  # the main process's alphabet digest (an archive's may be lmgc 0.6's rule: alphabet.py)

    @property
    def threads(self) -> int:
        """Torch threads per worker: the main process's count, which the archive records."""
        return int(self.runtime["threads"])

    @classmethod
    def of(
        cls, lm: Any, scheme: str, procedure: str, restricted_head: bool, runtime: dict[str, Any], alphabet: str
    ) -> WorkerSetup:
        """For the loaded model ``lm`` (models.LoadedModel), the main process's ``runtime.describe()``
        and its alphabet's digest."""
        src = lm.source
        if src.kind == "packaged":
            where = str(src.id)
        else:
            where = str(src.directory / src.gguf_file) if src.gguf_file else str(src.directory)
        info = lm.info
        return cls(where, info.sha256, info.dtype, lm.device, scheme, procedure, restricted_head, runtime, alphabet)


_state: dict[str, Any] = {}


def _start(setup: WorkerSetup) -> None:
    import torch

    from lmgc_format.lm.lmsetup import ExpectedAlphabet, prepare_lm
    from lmgc_format.lm.models import get
    from lmgc_format.lm.runtime import describe, differences

    torch.set_num_threads(setup.threads)
    lm = get(setup.model, setup.dtype, setup.device)
    if lm.info.sha256 != setup.sha256:
        raise ModelMismatchError(f"worker loaded {setup.model!r} with other weights than the main process")
    from lmgc_format.container.procedures import portable_procedure

    diffs = differences(setup.runtime, describe(lm.device))
    # A portable procedure computes the same integers on any machine: the engine digest is checked below.
    if diffs and not portable_procedure(setup.procedure):
        raise ModelMismatchError(
            f"a worker on {os.uname().nodename} computes differently from the main process ({', '.join(diffs)}): "
            "its chunks would decode only on such a machine"
        )
    made = prepare_lm(
        lm,
        setup.scheme,
        setup.procedure,
        setup.restricted_head,
        expected=ExpectedAlphabet(setup.alphabet, whose="the main process's"),
    )
    digest = setup.runtime.get("engine_sha256")
    if digest is not None and not str(getattr(made.predictor, "digest", "")).startswith(digest):
        raise ModelMismatchError(
            f"a worker on {os.uname().nodename} builds other integer weights than the main process"
        )
    _state.update(lm=lm, scheme=made.scheme, alphabet=made.alphabet, predictor=made.predictor, mixing=made.mixing)


def _encode(windows: tuple[Window, ...], data: list[bytes], msb_first: bool) -> tuple[bytes, list[float], int]:
    from lmgc_format.lm.lmchunk import encode_windows

    s = _state
    return encode_windows(
        s["predictor"], s["alphabet"], s["scheme"], windows, data, s["lm"].tokenizer, msb_first, mixing=s["mixing"]
    )


def _decode(windows: tuple[Window, ...], payload: bytes, msb_first: bool) -> list[bytes]:
    from lmgc_format.lm.lmchunk import decode_windows

    s = _state
    return decode_windows(s["predictor"], s["alphabet"], s["scheme"], windows, payload, msb_first, mixing=s["mixing"])


class Pool(Protocol):
    """Where LM chunks are coded: local processes (:class:`WorkerPool`) or Ray actors (:class:`RayPool`)."""

    workers: int

    def encode(self, windows: tuple[Window, ...], data: list[bytes], msb_first: bool) -> Future[Any]: ...

    def decode(self, windows: tuple[Window, ...], payload: bytes, msb_first: bool) -> Future[Any]: ...

    def close(self) -> None: ...


def check_workers(workers: int, ray: str | None) -> None:
    """Options check: 1-256 workers, or 0 (one per CPU of the cluster) with Ray."""
    if not (0 if ray is not None else 1) <= workers <= 256:
        raise UnsupportedError("workers must be between 1 and 256 (0 with Ray: one per CPU of the cluster)")
    if ray is not None and not ray.strip():
        raise UnsupportedError("a Ray address must not be empty (auto, local or host:port)")


def start_pool(setup: WorkerSetup, workers: int, ray: str | None) -> Pool:
    """``workers`` local processes, or with ``ray`` (an address, ``auto`` or ``local``) that many actors
    (0: as many as the cluster has CPUs for at ``setup.threads`` each)."""
    if ray is not None:
        return RayPool(setup, workers, ray)
    return WorkerPool(setup, workers)


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


class _RayWorker:
    """One Ray actor: the model loaded once, then chunks coded one at a time."""

    def __init__(self, setup: WorkerSetup) -> None:
        self._failed: Exception | None = None
        try:
            _start(setup)
        except Exception as e:  # raised again by the first chunk, where the main process waits for it
            self._failed = e

    def encode(self, windows: tuple[Window, ...], data: list[bytes], msb_first: bool) -> tuple[bytes, list[float], int]:
        if self._failed is not None:
            raise self._failed
        return _encode(windows, data, msb_first)

    def decode(self, windows: tuple[Window, ...], payload: bytes, msb_first: bool) -> list[bytes]:
        if self._failed is not None:
            raise self._failed
        return _decode(windows, payload, msb_first)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UnsupportedError("--ray needs Ray: pip install 'lmgc[ray]'") from None
    return ray


def connect(address: str) -> tuple[Any, bool]:
    """Ray, connected to ``address`` ("local": a private instance on this machine), and whether this call
    started it (its owner shuts it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address == "local":  # a private instance on this machine, ended with the pool
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UnsupportedError(f"cannot reach a Ray cluster at {address!r}: {e}") from None
    return ray, True


@contextlib.contextmanager
def ray_session(address: str | None, files: int) -> Iterator[None]:
    """One Ray connection for a command's several files (a sharded checkpoint's ``model-0000N-of-0000M``):
    each file's workers then join it instead of starting and stopping Ray's daemons per file; shut down at
    the end when this started it. Nothing for one file or without Ray."""
    if address is None or files < 2:
        yield
        return
    ray, started = connect(address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


class LeastQueued:
    """Ray actors, each call sent to the one with the fewest calls queued (counts kept under a lock)."""

    def __init__(self, actors: list[Any]) -> None:
        self._actors = actors
        self._queued = [0] * len(actors)
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any) -> Future[Any]:
        with self._lock:
            k = min(range(len(self._actors)), key=self._queued.__getitem__)
            self._queued[k] += 1
        future: Future[Any] = getattr(self._actors[k], method).remote(*args).future()

        def finished(_: Future[Any], k: int = k) -> None:
            with self._lock:
                self._queued[k] -= 1

        future.add_done_callback(finished)
        return future


class RayPool:
    """N Ray actors that code LM chunks; each chunk goes to the actor with the fewest chunks queued."""

    def __init__(self, setup: WorkerSetup, workers: int, address: str) -> None:
        ray, self._started = connect(address)
        self._ray = ray
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            if workers == 0:
                workers = max(1, cpus // setup.threads)
            if workers * setup.threads > cpus:
                raise UnsupportedError(
                    f"the Ray cluster has {cpus} CPU(s); {workers} worker(s) of {setup.threads} thread(s) "
                    "would wait forever for theirs"
                )
            actor = ray.remote(num_cpus=setup.threads)(_RayWorker)
            self._actors = [actor.remote(setup) for _ in range(workers)]
        except BaseException:
            self._shutdown()
            raise
        self.workers = workers
        self._queues = LeastQueued(self._actors)

    def _call(self, method: str, *args: Any) -> Future[Any]:
        return self._queues.call(method, *args)

    def encode(self, windows: tuple[Window, ...], data: list[bytes], msb_first: bool) -> Future[Any]:
        return self._call("encode", windows, data, msb_first)

    def decode(self, windows: tuple[Window, ...], payload: bytes, msb_first: bool) -> Future[Any]:
        return self._call("decode", windows, payload, msb_first)

    def close(self) -> None:
        """End the actors now (mid-chunk too, as :meth:`WorkerPool.close`), and a Ray instance this pool started."""
        for a in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):  # a lost cluster must not hide the error that brought us here
                self._ray.kill(a)
        self._shutdown()

    def _shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def result(future: Future[Any], cancel: threading.Event | None) -> Any:
    """The future's result, checking ``cancel`` a few times a second while it runs."""
    while True:
        done, _ = wait([future], timeout=0.25, return_when=FIRST_COMPLETED)
        if done:
            try:
                return future.result()
            except Exception as e:
                # Ray wraps a worker's exception (RayTaskError); ours are raised as themselves.
                cause = getattr(e, "cause", None)
                if isinstance(cause, LmgcError):
                    raise cause from None
                raise
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled")
