"""A small pool of worker threads whose results wake an event loop through an fd.

Regular files cannot be polled: ``epoll`` refuses them and ``select`` says they
are always ready, yet a read can wait for the disk. So the readiness engine
runs blocking calls (file operations, and ``to_thread`` in a pool of its own) here, and the loop
sleeps in its selector until a job is done. The io_uring engine can use the same
pool: it keeps a read of :attr:`WorkerPool.wake_fd` in flight on the ring.

The API, all of it called from the loop's thread::

    pool = WorkerPool(size=8)       # no thread yet: they start on demand
    pool.submit(key, func)          # func() runs in a worker thread
    pool.cancel(key)                # True: dropped before it started
    done = pool.collect()           # [(key, value, error), ...] of finished jobs
    pool.close()                    # drop queued jobs, join the threads

When to collect: when :attr:`wake_fd` is readable. ``collect()`` first
consumes the wake signal, then takes the finished jobs, in that order, so a
job that finishes in between wakes the loop again instead of being missed.
Whoever consumed the signal some other way (an io_uring read of the eventfd)
calls ``collect(consume_wake=False)``.

Invariants:

* Every submitted key comes back exactly once from :meth:`collect`, unless
  :meth:`cancel` returned True for it or the pool was closed first.
* :attr:`wake_fd` is readable whenever finished jobs wait to be collected.
  Workers signal it only when the finished list goes from empty to non-empty,
  so a burst of jobs costs one wake-up.
* Threads start lazily (one per job that finds no idle worker, up to
  ``size``); :meth:`close` joins them.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from rocket.engines._blocking import BlockingCall

__all__ = ["DEFAULT_SIZE", "BlockingCall", "JobTable", "MaxThreads", "WorkerPool"]

#: Worker threads when no size is given: enough to overlap a few slow disks.
DEFAULT_SIZE = 8


class _Waker:
    """An fd that becomes readable when signalled: an eventfd, else a self-pipe."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):  # Linux: one fd, an 8-byte counter
            self.fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._write_fd = self.fd
        else:  # pragma: no cover - macOS/BSD
            self.fd, self._write_fd = os.pipe()
            for fd in (self.fd, self._write_fd):
                os.set_blocking(fd, False)
                os.set_inheritable(fd, False)

    def signal(self) -> None:
        try:
            if self._write_fd == self.fd:
                os.eventfd_write(self.fd, 1)
            else:  # pragma: no cover - macOS/BSD
                os.write(self._write_fd, b"\0")
        except BlockingIOError:  # the counter or pipe is full: a wake is pending anyway
            pass

    def consume(self) -> None:
        try:
            if self._write_fd == self.fd:
                os.eventfd_read(self.fd)
            else:  # pragma: no cover - macOS/BSD
                while os.read(self.fd, 4096):
                    pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)
        if self._write_fd != self.fd:  # pragma: no cover - macOS/BSD
            os.close(self._write_fd)


class WorkerPool:
    """Runs blocking callables in up to ``size`` threads; see the module docstring."""

    def __init__(self, size: int = DEFAULT_SIZE, name: str = "rocket-worker") -> None:
        if type(size) is not int or size < 1:
            raise ValueError(f"WorkerPool() argument 'size' must be an int >= 1, got {size!r}")
        self.size = size
        self._name = name
        self._waker = _Waker()
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        # Invariant (under _lock): a key is in exactly one of _queue (with its
        # func), _running, or _done, from submit until collect or cancel.
        self._queue: deque[tuple[Hashable, Callable[[], Any]]] = deque()
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        # Jobs that may be given up while running, and how to undo a late result.
        self._undo: dict[Hashable, Callable[[Any], None]] = {}
        self._abandoned: set[Hashable] = set()  # given up while running: results undone
        self._done: list[tuple[Hashable, Any, BaseException | None]] = []
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = threading.Event()  # set once, under _lock

    @property
    def wake_fd(self) -> int:
        """Readable when finished jobs wait for :meth:`collect`."""
        return self._waker.fd

    @property
    def threads(self) -> int:
        """How many worker threads have been started."""
        return len(self._threads)

    def __len__(self) -> int:
        """Jobs submitted and not yet collected (queued, running or finished)."""
        with self._lock:
            return len(self._queued) + len(self._running) + len(self._done)

    def submit(
        self, key: Hashable, func: Callable[[], Any], undo: Callable[[Any], None] | None = None
    ) -> None:
        """Queue ``func()``; its return value or exception comes back under ``key``.

        With ``undo``, :meth:`cancel` gives the job up even while it runs (an
        open of a FIFO can wait for a writer forever); a result that comes
        after that is passed to ``undo`` (e.g. ``os.close``) in the worker.
        Such a worker does not count against ``size`` until it is free.

        Raises:
            RuntimeError: the pool is closed.
        """
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("the worker pool is closed")
            self._queue.append((key, func))
            self._queued.add(key)
            if undo is not None:
                self._undo[key] = undo
            if self._idle:
                self._work.notify()
            # More waiting jobs than idle workers to take them: one more thread.
            busy = len(self._threads) - len(self._abandoned)
            start = len(self._queued) > self._idle and busy < self.size
        if start:
            thread = threading.Thread(
                target=self._worker, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def cancel(self, key: Hashable) -> bool:
        """Drop a job that has not started, or give up one submitted with ``undo``.

        False if it is running (without ``undo``) or finished.
        """
        with self._lock:
            if key in self._running and key in self._undo:
                self._abandoned.add(key)
                return True
            if key not in self._queued:
                return False
            self._queued.discard(key)
            self._undo.pop(key, None)
            # The deque entry stays; the worker skips keys no longer in _queued.
            return True

    def collect(self, *, consume_wake: bool = True) -> list[tuple[Any, Any, BaseException | None]]:
        """Finished jobs as ``(key, value, error)``; error is None on success."""
        if consume_wake:
            self._waker.consume()  # first: a job finishing after this wakes us again
        with self._lock:
            done, self._done = self._done, []
        return done

    def _worker(self) -> None:
        lock, queue = self._lock, self._queue
        while True:
            with lock:
                while True:
                    if self._closed.is_set():
                        return
                    if queue:
                        key, func = queue.popleft()
                        if key in self._queued:  # else it was cancelled
                            self._queued.discard(key)
                            self._running.add(key)
                            break
                        continue
                    self._idle += 1
                    self._work.wait()
                    self._idle -= 1
            try:
                outcome: tuple[Any, BaseException | None] = (func(), None)
            except BaseException as exc:  # delivered to the loop, never lost here
                outcome = (None, exc)
            del func
            with lock:
                self._running.discard(key)
                undo = self._undo.pop(key, None)
                abandoned = key in self._abandoned
                self._abandoned.discard(key)
                if not abandoned and not self._closed.is_set():
                    self._done.append((key, *outcome))
                    if len(self._done) == 1:
                        self._waker.signal()  # under the lock: close() cannot race us
            if (abandoned or self._closed.is_set()) and undo is not None and outcome[1] is None:
                try:
                    undo(outcome[0])
                except OSError:
                    pass
            if self._closed.is_set():
                return
            continue

    def close(self, timeout: float | None = 5.0) -> None:
        """Drop queued jobs, let running ones finish, join the threads (idempotent).

        A job still running after ``timeout`` seconds (e.g. an ``open`` of a
        FIFO that no writer opens) is abandoned: its daemon thread ends with
        the process and its result is discarded.
        """
        with self._lock:
            if self._closed.is_set():
                return
            if self._abandoned:  # those wait for a peer that may never come: do not wait
                timeout = 0.1
            self._closed.set()
            self._queue.clear()
            self._queued.clear()
            self._done.clear()
            self._work.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self._waker.close()


class JobTable:
    """The jobs an engine has handed to its worker pools, by token (every engine's to_thread).

    ``to_thread`` jobs go to a pool of ``size`` threads. With ``file_workers``,
    file jobs (``start(..., files=True)``) get a pool of their own, so that busy
    ``to_thread`` calls never delay a ``read``. Pools start on first use.
    Invariant: a token is in ``requests`` from :meth:`start` until its outcome
    is collected or it is cancelled, so the request (and every buffer it owns)
    lives as long as a worker may use it.
    """

    def __init__(
        self, size: int = DEFAULT_SIZE, name: str = "rocket-worker", file_workers: int = 0
    ) -> None:
        self._size = size
        self._name = name
        self._file_workers = file_workers
        self._pool: WorkerPool | None = None
        self._files: WorkerPool | None = None
        self.requests: dict[int, Any] = {}
        self._in: dict[int, WorkerPool] = {}  # token -> the pool running it

    @property
    def size(self) -> int:
        """How many threads ``to_thread`` jobs may use at once (``run(max_threads=...)``)."""
        return self._size

    @size.setter
    def size(self, value: int) -> None:
        self._size = value
        if self._pool is not None:
            self._pool.size = value

    @property
    def pool(self) -> WorkerPool:
        """The ``to_thread`` pool (started now if it was not)."""
        if self._pool is None:
            self._pool = WorkerPool(self._size, self._name)
        return self._pool

    def _file_pool(self) -> WorkerPool:
        if not self._file_workers:
            return self.pool
        if self._files is None:
            self._files = WorkerPool(self._file_workers, f"{self._name}-files")
        return self._files

    def wake_fds(self) -> tuple[int, ...]:
        """The fds that become readable when jobs finish (starts the pools' wakers)."""
        return tuple({self.pool.wake_fd, self._file_pool().wake_fd})

    def start(
        self,
        token: int,
        request: Any,
        call: Callable[[], Any],
        undo: Callable[[Any], None] | None = None,
        *,
        files: bool = False,
    ) -> None:
        """Run ``call()`` in a worker (the file pool's with ``files``); collected by ``token``."""
        pool = self._file_pool() if files else self.pool
        self.requests[token] = request
        self._in[token] = pool
        pool.submit(token, call, undo)

    def collect(self, *, consume_wake: bool = True) -> list[tuple[int, Any, BaseException | None]]:
        """The finished jobs as completions; their requests are forgotten."""
        done = []
        for pool in (self._pool, self._files):
            if pool is not None:
                done += pool.collect(consume_wake=consume_wake)
        for token, _, _ in done:
            del self.requests[token]
            del self._in[token]
        return done

    def cancel(self, token: int) -> bool:
        """Drop ``token``'s job if no worker started it (see :meth:`WorkerPool.cancel`)."""
        pool = self._in.get(token)
        if pool is not None and pool.cancel(token):
            del self.requests[token]
            del self._in[token]
            return True
        return False

    def __contains__(self, token: object) -> bool:
        return token in self.requests

    def __bool__(self) -> bool:
        return bool(self.requests)

    def close(self) -> None:
        """Stop the workers; forget every job."""
        for pool in (self._pool, self._files):
            if pool is not None:
                pool.close()
        self.requests.clear()
        self._in.clear()


class MaxThreads:
    """An engine's ``max_threads`` attribute: the size of its ``to_thread`` pool (``_jobs``)."""

    def __get__(self, engine: Any, owner: type | None = None) -> int:
        return int(engine._jobs.size)

    def __set__(self, engine: Any, value: int) -> None:
        engine._jobs.size = value
