"""Into a running loop from other threads: ``loop = yield rocket.current_loop()``.

::

    loop = yield rocket.current_loop()       # in a fiber (or: await rocket.current_loop())
    # ... then, in any thread:
    loop.call_soon_threadsafe(event.set)     # event.set() runs in the loop's thread, soon
    value = loop.run_from_thread(fetch(url)) # runs a fiber, blocks this thread for its result
    future = loop.spawn_from_thread(worker)  # starts a fiber; a concurrent.futures.Future

How a thread wakes the loop: each loop that handed out a handle has an
inbox (``_Inbox``), a locked queue of calls and an eventfd (a pipe where there is
none). The loop keeps one read of that fd in flight as a service request
(``Executor.serve``), on every engine the same way: an SQE
on io_uring, a registration with the selector on the readiness engine, and on
:class:`~rocket.testing.VirtualEngine` a real fd it checks at every wait. A
thread appends its call and writes the fd only if no wake-up is pending yet, so
a burst of calls costs one wake-up; the read's completion runs every queued call
in the loop's thread, in order, and arms the next read. Nothing polls.

While a handle is alive (some thread may still call in), a fiber waiting for
such a call is not a deadlock: the loop waits. Once the last handle is gone,
:class:`~rocket.Deadlock` is raised again as usual. When the run ends, the
inbox closes: calls refuse with RuntimeError, and work queued but not started
fails its future with RuntimeError, so no thread waits forever.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rocket import ops
from rocket.errors import Cancelled
from rocket.sched import ExecutorRequest, check_body

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["CurrentLoop", "LoopHandle", "close_inbox", "current_loop"]

_log = logging.getLogger("rocket")
_FINISHED = (
    "the rocket loop of this handle has finished: {what} cannot run there any more; "
    "start a new rocket.run() and get its handle with 'yield rocket.current_loop()'"
)


class _Inbox:
    """Calls from other threads, and the fd whose read wakes the loop for them."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.thread = executor.thread
        # An RLock: a handle's finalizer posts too, and the collector may run it
        # while this thread holds the lock (inside post).
        self._lock = threading.RLock()
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._signalled = False  # Invariant (under _lock): the fd was written, not yet read
        self.closed = False
        if hasattr(os, "eventfd"):
            self._rfd = self._wfd = os.eventfd(0, os.EFD_CLOEXEC)
        else:  # pragma: no cover - macOS/BSD
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._wfd, False)
        self._handle: weakref.ref[LoopHandle] | None = None
        watch = getattr(executor.engine, "wake_fd", None)  # VirtualEngine: a real fd
        if watch is not None:
            watch(self._rfd)
        self._arm()

    def handle(self) -> LoopHandle:
        """The live handle, or a new one; while one lives, the loop waits for calls."""
        handle = self._handle() if self._handle is not None else None
        if handle is None:
            handle = LoopHandle(self)
            self._handle = weakref.ref(handle)
            self.executor.outside += 1
            weakref.finalize(handle, self.post, self._released, (), True).atexit = False
        return handle

    def _released(self) -> None:
        self.executor.outside -= 1  # in the loop's thread, like every call

    def post(self, fn: Callable[..., Any], args: tuple[Any, ...], internal: bool = False) -> None:
        """Queue ``fn(*args)`` for the loop's thread and wake the loop (any thread)."""
        with self._lock:
            if self.closed:
                if internal:
                    return
                raise RuntimeError(_FINISHED.format(what=_name(fn)))
            self._calls.append((fn, args))
            if not self._signalled:
                self._signalled = True
                self._signal()

    def _signal(self) -> None:
        if self._wfd == self._rfd:
            os.eventfd_write(self._wfd, 1)
        else:  # pragma: no cover - macOS/BSD
            os.write(self._wfd, b"\0")

    def _arm(self) -> None:
        size = 8 if self._wfd == self._rfd else 4096
        self.executor.serve(ops.Read(self._rfd, size, None), self._woken)

    def _woken(self, value: Any, error: BaseException | None) -> None:
        """The fd was read: run every queued call, in order, in the loop's thread."""
        if error is not None or self.closed:
            return  # the engine is closing
        with self._lock:
            calls, self._calls = self._calls, deque()
            self._signalled = False
        self._arm()
        self.executor.running = None  # no fiber is running: the calls are no fiber's
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except (Exception, Cancelled):
                _log.exception("rocket: loop.call_soon_threadsafe(%s) raised", _name(fn))
            except BaseException:  # KeyboardInterrupt, SystemExit: stop, keep the rest
                with self._lock:
                    self._calls.extendleft(reversed(calls))
                    if self._calls and not self._signalled:
                        self._signalled = True
                        self._signal()
                raise

    def close(self) -> None:
        """The run is over: refuse new calls, fail queued work (after the engine closed)."""
        with self._lock:
            self.closed = True
            calls, self._calls = self._calls, deque()
        for fn, _ in calls:
            if isinstance(fn, _Start):
                fn.refuse()
        os.close(self._rfd)
        if self._wfd != self._rfd:  # pragma: no cover - macOS/BSD
            os.close(self._wfd)


def _name(fn: object) -> str:
    """How a queued call is named in messages."""
    if isinstance(fn, _Start):
        fn = fn._body
    return str(getattr(fn, "__qualname__", None) or type(fn).__name__)


class _Start:
    """A fiber to start in the loop for a thread, and the Future of its outcome."""

    __slots__ = ("_args", "_body", "_executor", "future")

    def __init__(self, executor: Executor, body: Any, args: tuple[Any, ...], op: str) -> None:
        if _is_body(body):
            if args:
                body.close()  # never started: no "coroutine was never awaited" warning
                raise TypeError(
                    f"{op}() takes arguments only with a function: {op}(fetch, url), or "
                    f"{op}(fetch(url)) without them"
                )
        elif not callable(body):
            raise TypeError(
                f"{op}() expects a generator or coroutine object, such as fetch(url), or a "
                f"function returning one, such as fetch; got {type(body).__name__} {body!r:.60}"
            )
        self._executor = executor
        self._body = body
        self._args = args
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def __call__(self) -> None:
        future = self.future
        main = self._executor.main
        if main is not None and main.done():  # the run is ending: no new fiber may start
            self.refuse()
            return
        if not future.set_running_or_notify_cancel():  # cancelled before it started
            if _is_body(self._body):
                self._body.close()
            return
        try:
            body = self._body if _is_body(self._body) else self._body(*self._args)
            fiber = self._executor.start(body)
        except Exception as exc:
            future.set_exception(exc)
            return
        if fiber.joiners is None:
            fiber.joiners = deque()
        fiber.joiners.append(self._finished)

    def _finished(self, fiber: Fiber[Any]) -> None:
        error = fiber.exception()  # marks the outcome as seen: the future reports it
        if error is None:
            self.future.set_result(fiber.result())
        else:
            self.future.set_exception(error)

    def refuse(self) -> None:
        if self.future.set_running_or_notify_cancel():
            self.future.set_exception(RuntimeError(_FINISHED.format(what=_name(self._body))))
        if _is_body(self._body):
            self._body.close()


def _is_body(thing: object) -> bool:
    try:
        check_body(thing, "")
    except TypeError:
        return False
    return True


class LoopHandle:
    """A running loop, as other threads see it; from ``yield rocket.current_loop()``.

    Every method may be called from any thread. See :mod:`rocket.loop_handle`.
    """

    __slots__ = ("__weakref__", "_inbox")

    def __init__(self, inbox: Any) -> None:  # an _Inbox
        self._inbox = inbox

    def call_soon_threadsafe(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` in the loop's thread, soon (between fiber steps), in call order.

        From the loop's own thread too: then after the calling fiber yields. An
        exception ``fn`` raises is logged on the ``rocket`` logger.

        Raises:
            TypeError: ``fn`` is not callable.
            RuntimeError: the loop has finished.
        """
        if not callable(fn):
            raise TypeError(
                f"call_soon_threadsafe() argument 'fn' must be callable, not "
                f"{type(fn).__name__}; pass the function and its arguments: "
                f"call_soon_threadsafe(event.set) or call_soon_threadsafe(queue.put_nowait, item)"
            )
        self._inbox.post(fn, args)

    def spawn_from_thread(self, body: Any, *args: Any) -> concurrent.futures.Future[Any]:
        """Start ``body`` as a fiber of the loop; do not wait for it.

        ``body`` is a generator or coroutine object, or a function returning
        one (called with ``args`` in the loop's thread). The future gets the
        fiber's return value or exception (``Cancelled`` if the run ended first).

        Raises:
            TypeError: ``body`` is no fiber body and not callable.
            RuntimeError: the loop has finished.
        """
        return self._spawn(body, args, "spawn_from_thread")

    def _spawn(self, body: Any, args: tuple[Any, ...], op: str) -> concurrent.futures.Future[Any]:
        start = _Start(self._inbox.executor, body, args, op)
        try:
            self._inbox.post(start, ())
        except RuntimeError:  # the loop has finished
            if _is_body(body):
                body.close()
            raise
        return start.future

    def run_from_thread(self, body: Any, *args: Any) -> Any:
        """Run ``body`` as a fiber of the loop; block this thread for its result.

        Takes what :meth:`spawn_from_thread` takes; returns what the fiber
        returns, or raises what it raised.

        Raises:
            RuntimeError: the loop has finished, or this is the loop's own thread
                (where waiting would block every fiber: yield the body instead).
        """
        inbox = self._inbox
        if not inbox.closed and threading.get_ident() == inbox.thread:
            if _is_body(body):
                body.close()
            raise RuntimeError(
                "loop.run_from_thread() was called in the loop's own thread, where blocking "
                "would stop every fiber, this one included; in a fiber, write "
                "'result = yield body' (or 'result = await body') instead"
            )
        return self._spawn(body, args, "run_from_thread").result()

    def __repr__(self) -> str:
        state = "finished" if self._inbox.closed else "running"
        return f"<LoopHandle {state} in thread {self._inbox.thread}>"


class CurrentLoop(ExecutorRequest[LoopHandle]):
    """The request behind :func:`current_loop`."""

    __slots__ = ()
    verb = "current_loop"

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if executor.inbox is None:
            executor.inbox = _Inbox(executor)
        return executor.inbox.handle()


_CURRENT_LOOP = CurrentLoop()


def current_loop() -> CurrentLoop:
    """The handle of the running loop, for other threads: ``loop = yield rocket.current_loop()``."""
    return _CURRENT_LOOP


def close_inbox(executor: Executor) -> None:
    """At the end of a run (after the engine closed): refuse calls, fail queued work."""
    if executor.inbox is not None:
        executor.inbox.close()
