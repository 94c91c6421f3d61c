"""The quick and fast levels' chunks on Ray (``--ray``): N actors, each coding or decoding one chunk at a
time with the functions a thread of this process runs (compiled_chunks.py), so the bytes are the same.

Unlike the LM level's workers (parallel.py), an actor needs no model: it imports lmgc (numba loads the
compiled kernels once, ~0.5 s) and takes chunks. Every node must have lmgc installed. Each chunk goes to
the actor with the fewest chunks queued; the caller keeps at most two a worker in flight, in file order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from lmgc_format.errors import UnsupportedError
from lmgc_format.pipeline.parallel import LeastQueued, connect


class _Runner:
    """One actor: runs what it is sent (module-level functions, pickled by name)."""

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


class RayTasks:
    """``workers`` Ray actors of one CPU each (0: one per CPU of the cluster)."""

    def __init__(self, address: str, workers: int) -> None:
        ray, self._started = connect(address)
        self._ray = ray
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            workers = workers or max(1, cpus)
            if workers > cpus:
                raise UnsupportedError(f"the Ray cluster has {cpus} CPU(s); {workers} workers would wait for theirs")
            actor = ray.remote(num_cpus=1)(_Runner)
            self._actors = [actor.remote() for _ in range(workers)]
        except BaseException:
            self.close()
            raise
        self.workers = workers
        self._queues = LeastQueued(self._actors)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self._queues.call("run", fn, *args)

    def close(self) -> None:
        """End the actors, and a Ray instance this object started."""
        for a in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):
                self._ray.kill(a)
        if self._started:
            self._ray.shutdown()
            self._started = False
