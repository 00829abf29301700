"""A bounded pool for blocking inference: a few worker threads and a queue that refuses rather than grows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class PoolFull(Exception):
    """Every worker is busy and the queue is full: the caller should answer 503 and ask the client to retry."""


class InferencePool:
    """Run blocking jobs on ``workers`` threads with at most ``queue_size`` more waiting; beyond that, refuse.

    A job counts until it has really finished, even when the request that asked for it went away, so the pool
    never holds more than ``workers + queue_size`` images in memory.

    Args:
        workers: threads running jobs at once (the model is shared; 1 suits a CPU, whose cores torch already uses).
        queue_size: jobs allowed to wait for a free worker.

    Example:
        >>> pool = InferencePool(workers=1, queue_size=0)
        >>> asyncio.run(pool.run(sum, [1, 2]))
        3
        >>> pool.shutdown()
    """

    def __init__(self, workers: int = 1, queue_size: int = 4) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError(f"workers must be >= 1 and queue_size >= 0, got {workers} and {queue_size}")
        self.workers = workers
        self.queue_size = queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="uir-serve")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        with self._lock:
            return self._pending

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Start ``fn(*args)`` on a worker, or raise ``PoolFull`` when ``workers + queue_size`` jobs are pending."""
        with self._lock:
            if self._pending >= self.workers + self.queue_size:
                raise PoolFull(f"{self._pending} jobs pending (workers {self.workers}, queue {self.queue_size})")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` run on a worker; raises ``PoolFull`` at once when the queue is full."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def shutdown(self) -> None:
        """Stop taking jobs and drop the waiting ones (running ones finish)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _release(self) -> None:
        with self._lock:
            self._pending -= 1
