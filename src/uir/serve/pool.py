"""A bounded pool for blocking inference: a few worker threads and a queue that refuses rather than grows.

A place in the pool (a ``Slot``) can be taken before a request's body is read, so that a busy server refuses an
upload without receiving it; a ``Job`` can be stopped from outside (client gone, Ctrl-C) or by its own time
limit, and the work it runs consults it between steps (``uir.restore.tiled`` calls its ``check`` between tiles).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from time import monotonic
from typing import Any, TypeVar

T = TypeVar("T")


class PoolFull(Exception):
    """Every worker is busy and the queue is full: the caller should answer 503 and ask the client to retry."""


class JobStopped(Exception):
    """A job was stopped before it finished; the message says why (the client has gone, the server is stopping)."""


class JobTimeout(JobStopped):
    """A job ran past its time limit and was stopped at its next check."""


class Job:
    """A job's stop switch and time limit, consulted by the work itself through ``check``.

    ``stop`` only sets an attribute (no lock), so a signal handler may call it.

    Args:
        timeout: seconds the job may run, counted from ``start`` (when a worker picks it up); None: no limit.

    Example:
        >>> job = Job()
        >>> job.check()
        >>> job.stop("the client has gone")
        >>> job.check()
        Traceback (most recent call last):
        ...
        uir.serve.pool.JobStopped: the client has gone
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.reason: str | None = None
        self._deadline: float | None = None

    def start(self) -> None:
        """Start the clock; raises ``JobStopped`` when the job was stopped while it waited."""
        self._deadline = None if self.timeout is None else monotonic() + self.timeout
        self.check()

    def stop(self, reason: str) -> None:
        """Ask the job to stop at its next ``check``, for ``reason`` (the first reason given is kept)."""
        self.reason = self.reason or reason

    def check(self) -> None:
        """Raise ``JobStopped`` when the job was stopped, ``JobTimeout`` when its time is up; else nothing."""
        if self.reason is not None:
            raise JobStopped(self.reason)
        if self._deadline is not None and monotonic() > self._deadline:
            raise JobTimeout(f"stopped after the time limit of {self.timeout:g} s")


class Slot:
    """A place in an ``InferencePool``, held by a request and by the job it submits; free when both let go."""

    def __init__(self, pool: InferencePool) -> None:
        self._pool = pool
        self._holders = 1

    def hold(self) -> None:
        with self._pool._lock:
            self._holders += 1

    def release(self) -> None:
        with self._pool._lock:
            self._holders -= 1
            if self._holders == 0:
                self._pool._pending -= 1


class InferencePool:
    """Run blocking jobs on ``workers`` threads with at most ``queue_size`` more waiting; beyond that, refuse.

    A job counts until it has really finished, even when the request that asked for it went away, so the pool
    never holds more than ``workers + queue_size`` images in memory. A request may ``reserve`` its place before
    reading its upload and pass the ``Slot`` to ``submit``; then the upload counts too.

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
        self._jobs: set[Job] = set()
        self._stopping: str | None = None

    @property
    def pending(self) -> int:
        """Places taken: uploads being received, jobs waiting and jobs running."""
        with self._lock:
            return self._pending

    def reserve(self) -> Slot:
        """Take a place, or raise ``PoolFull`` when ``workers + queue_size`` are taken or the pool is stopping."""
        with self._lock:
            if self._stopping is not None:
                raise PoolFull(self._stopping)
            if self._pending >= self.workers + self.queue_size:
                raise PoolFull(f"{self._pending} jobs pending (workers {self.workers}, queue {self.queue_size})")
            self._pending += 1
        return Slot(self)

    def submit(self, fn: Callable[..., T], *args: Any, job: Job | None = None, slot: Slot | None = None) -> Future[T]:
        """Start ``fn(*args)`` on a worker unless ``job`` is stopped by then, in a reserved ``slot`` or a new one.

        Raises:
            PoolFull: no ``slot`` was given and every place is taken.
        """
        if slot is None:
            slot = self.reserve()
        else:
            slot.hold()
        job = job or Job()
        with self._lock:
            self._jobs.add(job)
            if self._stopping is not None:
                job.stop(self._stopping)

        def run() -> T:
            job.start()
            return fn(*args)

        def done(_: object = None) -> None:
            with self._lock:
                self._jobs.discard(job)
            slot.release()

        try:
            future = self._executor.submit(run)
        except BaseException:
            done()
            raise
        future.add_done_callback(done)
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` run on a worker; raises ``PoolFull`` at once when the queue is full."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def stop_all(self, reason: str) -> None:
        """Stop every job at its next check and refuse new ones (Ctrl-C). Takes no lock: safe in a signal handler."""
        self._stopping = reason
        for job in list(self._jobs):
            job.stop(reason)

    def shutdown(self) -> None:
        """Stop taking jobs, drop the waiting ones and stop the running ones at their next check."""
        self.stop_all("the server is stopping")
        self._executor.shutdown(wait=False, cancel_futures=True)
