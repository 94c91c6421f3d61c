"""Chunks of the fast level coded on worker threads, results taken in file order.

The kernel releases the GIL (numba ``nogil``), so threads code chunks in
parallel; every chunk is coded alone, so the bytes do not depend on how many
threads there are. At most ``2 * workers`` chunks are in flight: memory stays
bounded whatever the file's size.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from lmgc_format.errors import CancelledError

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 64


def default_workers() -> int:
    """One thread per CPU this process may use."""
    try:
        return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def ordered_map(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    cancel: threading.Event | None = None,
    submit: Callable[[T], Future[R]] | None = None,
) -> Iterator[tuple[T, R]]:
    """``(item, work(item))`` in the order of ``items``, computed on ``workers`` threads, or by ``submit``
    (which starts ``work(item)`` elsewhere, such as a Ray actor: pipeline/ray_tasks.py) ``workers`` at once."""
    if submit is not None:
        yield from _in_order(submit, items, workers, cancel)
        return
    if workers <= 1:
        for item in items:
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            yield item, work(item)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="lmgc-cm") as pool:
        yield from _in_order(lambda item: pool.submit(work, item), items, workers, cancel)


def _in_order(
    submit: Callable[[T], Future[R]], items: Iterable[T], workers: int, cancel: threading.Event | None
) -> Iterator[tuple[T, R]]:
    source = iter(items)
    pending: deque[tuple[T, Future[R]]] = deque()
    try:
        while True:
            for item in itertools.islice(source, 2 * workers - len(pending)):
                pending.append((item, submit(item)))
            if not pending:
                return
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            item, future = pending.popleft()
            yield item, future.result()
    finally:
        for _, future in pending:
            future.cancel()
