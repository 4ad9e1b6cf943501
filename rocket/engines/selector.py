"""The readiness engine: the standard library's selectors plus worker threads for files.

Where io_uring is missing (seccomp profiles that block it, older kernels, macOS,
the BSDs), rocket performs the same requests in the readiness model, on
``selectors.DefaultSelector`` (epoll, kqueue). Fibers and the executor see no
difference: the same results, the same exceptions (type, errno and message).

How each request is performed:

* **Sockets** (accept, connect, recv, recv_into, send, sendfile): try the non-blocking
  system call at once; if it says EAGAIN, register interest in the fd with the
  selector and try again when the fd is ready (``_selector_calls`` has the
  calls). Waiters on one fd are served in arrival order.
* **Pipes, ttys, sockets given to read/write**: the same, with ``os.read`` and
  ``os.write`` (an offset is ignored on such streams, as on io_uring).
* **Regular files** (open, read, readinto, write, fsync, stat): in a
  :class:`~rocket.engines._workers.JobTable`, so a slow disk stalls only
  the fiber that asked. A finished job wakes the selector through an eventfd.
* **close, shutdown**: at once, in the loop's thread (in order with the selector's
  registrations, which are keyed by reusable fd numbers).
* **sleep**: a heap of deadlines; the selector waits until the earliest.
* **to_thread**: in a pool apart from files' (a busy one never delays a read); errors unchanged.
* **timeout(s, request)**: the request is started as usual and its deadline
  goes in a second heap; when it passes, a request still waiting (for its
  fd, a timer, or a worker) is withdrawn and fails with ``TimeoutError``.

Facts about the OS this relies on (see also trio's "Some facts about epoll"):
``epoll`` refuses regular files (EPERM) and ``select`` calls them always ready;
either way a disk read can block, hence the worker threads. A socket's blocking
mode is left as its owner set it (see ``_selector_calls``). epoll forgets a
closed fd, so ``rocket.close`` and ``Stream.close`` first end its waiters
(``notify_closing``, as on io_uring: EBADF, and ``b""`` for a ``stream_recv``); an
fd closed behind the engine's back fails them when re-registering its number says ENOENT.

Cancellation: a request waiting for readiness, a sleep, or a file job that no
worker has started completes at once with :class:`~rocket.Cancelled`; a file job
already running cannot be stopped, and its result is delivered normally.
"""

from __future__ import annotations

import errno
import heapq
import os
import selectors
import stat
import time
from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import Completion, unsupported
from rocket.engines import _selector_calls as calls
from rocket.engines._workers import DEFAULT_SIZE, JobTable, MaxThreads
from rocket.errors import Cancelled, os_error
from rocket.ops import RecvFrom, SendTo, Timeout, ToThread, timed_out
from rocket.request import IORequest

__all__ = ["SelectorEngine"]

_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_MAX_WAIT = 86400.0  # the longest single wait (a day)


class SelectorEngine:
    """Performs requests with a selector and worker threads; see the module docstring.

    ``workers``: the most threads for file operations (``max_threads``: for to_thread).
    """

    name = "selector"
    max_threads = MaxThreads()

    def __init__(self, workers: int = DEFAULT_SIZE) -> None:
        self._jobs = JobTable(file_workers=workers)  # files, to_thread: keeps buffers alive
        self._selector = selectors.DefaultSelector()
        self._wake_fds = self._jobs.wake_fds()  # the pools' eventfds: jobs done
        for fd in self._wake_fds:
            self._selector.register(fd, _READ)
        self.selector_name = type(self._selector).__name__
        # Invariant: every submitted token not yet returned by wait() is in
        # exactly one of _ready, _waits (and its fd's calls.Watch), _sleeping, _jobs.
        self._ready: list[Completion] = []
        self._waits: dict[int, calls.Wait] = {}
        self._watches: dict[int, calls.Watch] = {}
        self._timers: list[tuple[float, int]] = []  # (deadline, token): a heap
        self._limits: list[tuple[float, int]] = []  # timeout() deadlines: a heap
        self._limited: dict[int, Timeout[Any]] = {}  # token -> its timeout() request
        self._sleeping: set[int] = set()
        self._closed = False
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            **dict.fromkeys((ops.Recv, ops.StreamRecv), self._socket_op(calls.recv, write=False)),
            ops.RecvInto: self._socket_op(calls.recv_into, write=False),
            ops.Send: self._socket_op(calls.send, write=True),
            ops.SendAll: self._socket_attempt(calls.sendall_attempt, write=True),
            RecvFrom: self._socket_op(calls.recvfrom, write=False),
            SendTo: self._socket_op(calls.sendto, write=True),
            ops.Accept: self._socket_op(calls.accept, write=False),
            ops.WaitReadable: self._socket_op(calls.wait_readable, write=False),
            ops.Connect: self._socket_attempt(calls.connect_attempt, write=True),
            ops.Shutdown: self._at_once(calls.shutdown),
            ops.Close: self._close,
            ops.Read: self._file_io(calls.read_call, write=False),
            ops.ReadInto: self._file_io(calls.readinto_call, write=False),
            ops.Write: self._file_io(calls.write_call, write=True),
            # An open may wait for a FIFO's peer forever: cancelling gives it up.
            ops.Open: self._in_pool(calls.open_file, undo=os.close),
            ops.Fsync: self._in_pool(calls.fsync),
            ops.Stat: self._in_pool(calls.stat),
            ops.Sleep: self._sleep,
            ops.SendFile: self._socket_attempt(calls.sendfile_attempt, write=True),
            ToThread: lambda token, job: self._jobs.start(token, job, job.call),
            Timeout: self._timeout,
        }

    # ---------------------------------------------------------------- submit

    def submit(self, token: int, request: IORequest[Any]) -> None:
        """Start ``request``: at once if it can finish without waiting, else queue it."""
        if self._closed:
            raise RuntimeError("the selector engine is closed")
        handler = self._handlers.get(request.__class__)
        if handler is None:
            raise unsupported(self.name, request)
        handler(token, request)

    def _done(self, token: int, request: IORequest[Any], call: Callable[[], Any]) -> None:
        """Run ``call`` now and record its outcome as the completion of ``token``."""
        try:
            self._ready.append((token, call(), None))
        except OSError as exc:
            self._ready.append((token, None, os_error(exc.errno or errno.EIO, request.describe())))
        except Exception as exc:
            self._ready.append((token, None, exc))

    def _at_once(self, func: Callable[[Any], Any]) -> Callable[[int, Any], None]:
        return lambda token, request: self._done(token, request, lambda: func(request))

    def _close(self, token: int, request: ops.Close) -> None:
        self.notify_closing(request.fd)  # unregister before the number can be reused
        self._done(token, request, lambda: os.close(request.fd))

    def notify_closing(self, fd: int) -> None:
        """``fd`` is about to be closed: its waiters fail with EBADF now (as in trio).

        A file job already running in a worker cannot be stopped; its result comes.
        """
        watch = self._watches.get(fd)
        if watch is not None:
            self._fail_stale(fd, watch, closing=True)

    def _in_pool(
        self, func: Callable[[Any], Any], undo: Callable[[Any], None] | None = None
    ) -> Callable[[int, Any], None]:
        def handler(token: int, request: IORequest[Any]) -> None:
            job = calls.named(request, lambda: func(request))
            self._jobs.start(token, request, job, undo, files=True)

        return handler

    def _socket_op(self, func: Callable[[Any], Any], write: bool) -> Callable[[int, Any], None]:
        return self._socket_attempt(lambda request: lambda _: func(request), write)

    def _socket_attempt(
        self, make: Callable[[Any], Callable[[Any], Any]], write: bool
    ) -> Callable[[int, Any], None]:
        """Wait for the fd, then try ``make(request)``, which keeps its progress between tries."""

        def handler(token: int, request: Any) -> None:
            self._try(calls.Wait(token, request, request.fd, write, make(request)))

        return handler

    def _file_io(
        self, make: Callable[[Any, bool], Callable[[], Any]], write: bool
    ) -> Callable[[int, Any], None]:
        def handler(token: int, request: Any) -> None:
            fd = request.fd
            try:
                mode = os.fstat(fd).st_mode
            except OSError as exc:
                self._ready.append(
                    (token, None, os_error(exc.errno or errno.EIO, request.describe()))
                )
                return
            if stat.S_ISREG(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode):
                job = calls.named(request, make(request, False))
                self._jobs.start(token, request, job, files=True)
                return
            call = make(request, True)  # a stream: pipe, socket, tty...
            self._try(
                calls.Wait(token, request, fd, write, lambda _: calls.nonblocking(fd, call), call)
            )

        return handler

    def _timeout(self, token: int, request: Timeout[Any]) -> None:
        self.submit(token, request.request)
        if self._waits.get(token) or token in self._sleeping or token in self._jobs:
            self._limited[token] = request
            heapq.heappush(self._limits, (time.monotonic() + request.seconds, token))

    def _sleep(self, token: int, request: ops.Sleep) -> None:
        self._sleeping.add(token)
        heapq.heappush(self._timers, (time.monotonic() + request.seconds, token))

    # ------------------------------------------------------------- readiness

    def _try(self, wait: calls.Wait) -> None:
        """Attempt ``wait`` now; if it would block, queue it on its fd."""
        if self._attempt(wait):
            return
        watch = self._watches.get(wait.fd)
        if watch is None:
            watch = self._watches[wait.fd] = calls.Watch()
        (watch.writers if wait.write else watch.readers).append(wait)
        self._waits[wait.token] = wait
        self._register(wait.fd, watch, added=True)

    def _attempt(self, wait: calls.Wait) -> bool:
        """Run one attempt; True if the request completed (with a result or error)."""
        try:
            value = wait.attempt(wait)
        except BlockingIOError:
            return False
        except InterruptedError:  # a signal: Python ran its handler; try again later
            return False
        except OSError as exc:
            error = os_error(exc.errno or errno.EIO, wait.request.describe())
            self._ready.append((wait.token, None, error))
        except Exception as exc:
            self._ready.append((wait.token, None, exc))
        else:
            self._ready.append((wait.token, value, None))
        return True

    def _register(self, fd: int, watch: calls.Watch, added: bool = False) -> None:
        """Make the selector's interest in ``fd`` match its waiters."""
        mask = (_READ if watch.readers else 0) | (_WRITE if watch.writers else 0)
        if mask == watch.mask and not added:
            return
        try:
            if not mask:
                self._selector.unregister(fd)
                del self._watches[fd]
            elif not watch.mask:
                self._selector.register(fd, mask)
            else:  # also when only a waiter was added: ENOENT reveals a closed fd
                self._selector.modify(fd, mask)
        except OSError as exc:
            if exc.errno == errno.ENOENT and watch.mask:
                self._fail_stale(fd, watch, keep_last=added)
                return
            if exc.errno == errno.EPERM:  # not pollable (e.g. /dev/null): block in a worker
                self._to_pool(fd, watch)
                return
            raise
        watch.mask = mask

    def _fail_stale(
        self, fd: int, watch: calls.Watch, keep_last: bool = False, closing: bool = False
    ) -> None:
        """The fd was closed: end its waiters (``calls.closed_under``), forget its registration.
        With ``keep_last``, the newest waiter (who uses the fd's new owner) stays."""
        waits = list(watch.readers) + list(watch.writers)
        newest = max(waits, key=lambda w: w.token) if keep_last else None
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass
        del self._watches[fd]
        for wait in waits:
            if wait is not newest:
                del self._waits[wait.token]
                self._ready.append(calls.closed_under(wait, closing))
        if newest is not None:
            del self._waits[newest.token]
            self._try(newest)

    def _to_pool(self, fd: int, watch: calls.Watch) -> None:
        """The selector refuses ``fd``: run its waiters' blocking calls in workers."""
        for wait in (*watch.readers, *watch.writers):
            del self._waits[wait.token]
            if wait.fallback is None:
                self._ready.append(
                    (wait.token, None, os_error(errno.EPERM, wait.request.describe()))
                )
            else:
                job = calls.named(wait.request, wait.fallback)
                self._jobs.start(wait.token, wait.request, job, files=True)
        if watch.mask:
            self._selector.unregister(fd)
        del self._watches[fd]

    def _ready_fd(self, fd: int, events: int) -> None:
        """Retry the waiters of a ready fd, in order, until one would block."""
        watch = self._watches.get(fd)
        if watch is None:
            return
        for queue, event in ((watch.readers, _READ), (watch.writers, _WRITE)):
            if events & event:
                while queue and self._attempt(queue[0]):
                    del self._waits[queue.popleft().token]
        self._register(fd, watch)

    # ---------------------------------------------------------------- cancel

    def cancel(self, token: int) -> None:
        """Cancel ``token`` unless it already finished or runs in a worker."""
        self._stop(token, Cancelled())

    def _stop(self, token: int, error: BaseException) -> None:
        """Withdraw ``token`` and complete it with ``error``, if it has not started."""
        self._limited.pop(token, None)
        wait = self._waits.pop(token, None)
        if wait is not None:
            watch = self._watches[wait.fd]
            (watch.writers if wait.write else watch.readers).remove(wait)
            self._register(wait.fd, watch)
        elif token in self._sleeping:
            self._sleeping.discard(token)  # its heap entry is skipped later
        elif self._jobs.cancel(token):
            pass
        else:
            return  # finished already, or running in a worker: its result comes
        self._ready.append((token, None, error))

    # ------------------------------------------------------------------ wait

    def wait(self, timeout: float | None) -> list[Completion]:
        """Return ready completions; block (up to ``timeout``) only if there are none."""
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self._expire(now)
            block = not self._ready and timeout != 0
            if block and timeout is None and not (self._waits or self._jobs or self._sleeping):
                raise RuntimeError("SelectorEngine.wait() would block forever: nothing in flight")
            if block or self._watches or self._jobs:
                self._poll(self._poll_timeout(now, until) if block else 0)
                self._expire(time.monotonic())
            if self._ready or not block or (until is not None and time.monotonic() >= until):
                done, self._ready = self._ready, []
                if self._limited:  # finished in time: forget their limits
                    for token, _, _ in done:
                        self._limited.pop(token, None)
                return done

    def fileno(self) -> int:
        """The selector's fd, for a host loop to watch in guest mode (workers wake it too)."""
        return self._selector.fileno()

    def before_idle(self) -> float | None:
        """Guest mode: seconds the host loop may wait for :meth:`fileno` (sleeps, limits)."""
        return 0.0 if self._ready else self._poll_timeout(time.monotonic(), None)

    def _poll_timeout(self, now: float, until: float | None) -> float | None:
        limit = None if until is None else max(0.0, until - now)
        for heap in (self._timers, self._limits):
            if heap:
                first = max(0.0, heap[0][0] - now)
                limit = first if limit is None else min(limit, first)
        return limit

    def _poll(self, timeout: float | None) -> None:
        if timeout is not None and timeout > _MAX_WAIT:
            timeout = _MAX_WAIT  # epoll takes at most 2**31-1 ms; the loop waits again
        for key, events in self._selector.select(timeout):
            if key.fd in self._wake_fds:
                self._ready += self._jobs.collect()  # the requests (and buffers) may go now
            else:
                self._ready_fd(key.fd, events)

    def _expire(self, now: float) -> None:
        timers, sleeping = self._timers, self._sleeping
        while timers and timers[0][0] <= now:
            token = heapq.heappop(timers)[1]
            if token in sleeping:
                sleeping.discard(token)
                self._ready.append((token, None, None))
        limits = self._limits
        while limits and limits[0][0] <= now:
            token = heapq.heappop(limits)[1]
            request = self._limited.get(token)
            if request is not None:
                self._stop(token, timed_out(request))

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Drop queued work, join the worker threads, close the selector (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._jobs.close()
        self._selector.close()
        tables: tuple[Any, ...] = (self._waits, self._watches, self._sleeping, self._timers)
        for table in (*tables, self._limits, self._limited, self._ready):
            table.clear()
