"""The guest driver: runs rocket's executor inside a running asyncio loop, in its thread.

The design of trio's guest mode (``trio.lowlevel.start_guest_run``), without
its I/O thread: rocket's engines already wait on one fd (io_uring: the ring
fd, readable while completions are posted; the readiness engine: its epoll
fd, which its worker threads wake too), so the host loop watches that fd
with ``loop.add_reader`` and rocket never blocks. Each time

* the engine's fd is ready,
* fibers are runnable (``loop.call_soon``), or
* a timer is due -- the executor's (``fail_after``) or the readiness engine's
  own sleeps (``loop.call_later``),

one pass of the executor (:meth:`~rocket.executor.Executor.run_passes` with
``block=False``) runs as an asyncio callback: it steps the runnable fibers,
reaps completions without waiting, fires due timers. Between two passes the
host loop runs its own callbacks, so neither side starves the other.

Whatever changes the executor from outside a pass (a finished asyncio task
waking a fiber, the host task's cancellation, an asyncio callback that sets a
rocket Event: anything that makes a fiber runnable, see :class:`_Runnable`)
schedules a pass, as does a pass that fired a timer: a cancel issued then may sit in the engine (a
prepared but unsubmitted SQE, a completion that needs no fd event) until the
next pass reaps.

Invariants: at most one ``call_soon`` pass (``_soon``) and one timed pass
(``_later``) are scheduled; every fiber waiting for an asyncio future is
counted in ``executor.outside``, so it is never taken for a deadlock.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket.errors import Cancelled
from rocket.loop_handle import close_inbox
from rocket.runner import _seen

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["Guest", "guest_of"]

# Invariant: holds a guest from its start until its last fiber has finished.
_guests: weakref.WeakKeyDictionary[Executor, Guest] = weakref.WeakKeyDictionary()


def guest_of(executor: Executor) -> Guest | None:
    """The guest driver running ``executor``, or None under ``rocket.run``."""
    return _guests.get(executor)


class _Runnable(deque[Any]):
    """The guest executor's runnable queue: a fiber made runnable between passes
    (by asyncio code in this thread, e.g. ``event.set()`` in a callback) schedules
    a pass, which nothing else would do. Costs a Python call per append, in guest
    mode only."""

    __slots__ = ("_guest",)

    def __init__(self, guest: Guest) -> None:
        super().__init__()
        self._guest = guest

    def append(self, item: Any) -> None:
        super().append(item)
        guest = self._guest
        if not guest.in_pass:
            guest.soon()


class Guest:
    """Drives one executor from an asyncio loop; see the module docstring."""

    def __init__(self, executor: Executor, loop: asyncio.AbstractEventLoop) -> None:
        engine: Any = executor.engine
        self.executor = executor
        self.loop = loop
        #: Resolved with main's result (or error) once every fiber has finished.
        self.done: asyncio.Future[Any] = loop.create_future()
        self._fd: int = engine.fileno()
        self._before_idle = engine.before_idle
        self._soon: asyncio.Handle | None = None
        self._later: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None  # the first error that escaped a pass
        self._raiser: Fiber[Any] | None = None  # the fiber that raised it
        self.in_pass = False  # True while a pass runs (then the pass itself goes on)
        executor.runnable = _Runnable(self)

    def start(self, main: Any) -> None:
        """Start ``main`` as the main fiber and the first pass."""
        self.loop.add_reader(self._fd, self._pass)  # first: it may be NotImplementedError
        executor = self.executor
        _context.enter_loop(executor)  # until _finish: also between passes
        executor.main = executor.start(main, "main")
        _guests[executor] = self
        self.soon()

    def soon(self) -> None:
        """Run a pass at the host loop's next turn (once, however often asked)."""
        if self._soon is None and not self.done.done():
            self._soon = self.loop.call_soon(self._pass)

    def cancel_main(self) -> None:
        """The host task was cancelled: cancel main (the others follow when it finishes)."""
        main = self.executor.main
        if main is not None:
            self._outside(self.executor.cancel, main)

    def _outside(self, func: Any, *args: Any) -> None:
        """Call ``func(*args)`` on the executor between passes, then pass soon."""
        previous = _context.swap(self.executor)
        try:
            func(*args)
        finally:
            _context.swap(previous)
        self.soon()

    def _pass(self) -> None:
        self._soon = None
        if self._later is not None:
            self._later.cancel()
            self._later = None
        executor = self.executor
        previous = _context.swap(executor)
        self.in_pass = True
        try:
            again = executor.shared.run(executor.run_passes, False)
        except BaseException as exc:  # as rocket.run: cancel every fiber, let them finish
            again = True
            if self._error is not None:  # a second error while shutting down: give up
                self._finish()
                return
            self._error, self._raiser = exc, executor.running
            executor.cancel_all()
        finally:
            self.in_pass = False
            _context.swap(previous)
        if not executor.fibers:
            self._finish()
        elif (
            again
            or executor.runnable
            or not (executor.blocked or executor.timers.live or executor.outside)
        ):  # (nothing can wake them: the next pass raises Deadlock)
            self.soon()
        else:
            delays = [self._before_idle()]  # (submits what the reap prepared again)
            if executor.timers.live:
                delays.append(executor.timers.delay(executor.clock()))
            due = [delay for delay in delays if delay is not None]
            if due:
                self._later = self.loop.call_later(min(due), self._pass)

    def _finish(self) -> None:
        """Stop watching, close the engine, resolve ``done``."""
        executor = self.executor
        _guests.pop(executor, None)
        _context.leave_loop()
        for handle in (self._soon, self._later):
            if handle is not None:
                handle.cancel()
        self._soon = self._later = None
        self.loop.remove_reader(self._fd)
        try:
            executor.engine.close()
        finally:
            close_inbox(executor)  # threads that post from now on are refused, not hung
            self._resolve()

    def _resolve(self) -> None:
        """Resolve ``done`` as rocket.run would return or raise."""
        main = self.executor.main
        assert main is not None
        error = self._error
        if error is None and main.done():
            try:
                self.done.set_result(main.result())
                return
            except BaseException as exc:
                error = exc
        if error is None:  # a second error stopped the shutdown, before main finished
            error = RuntimeError("rocket's guest run stopped before its main fiber finished")
        _seen(error, main, self._raiser)
        self.done.set_exception(error)

    # ------------------------------------------------------------ asyncio waits

    def wait(self, fiber: Fiber[Any], future: asyncio.Future[Any]) -> Any:
        """Park ``fiber`` until ``future`` (a task of the host loop) is done; returns WAIT.

        Cancelling the fiber cancels the task and the fiber waits for it to end
        (as for I/O: a result it still returns is delivered, and the cancel is
        raised at the fiber's next request). A task cancelled on the asyncio
        side raises :class:`~rocket.Cancelled` in the fiber.
        """
        executor = self.executor
        waitlist: deque[Fiber[Any]] = deque()
        executor.outside += 1
        future.add_done_callback(lambda _: self._task_done(fiber, waitlist, future))

        def abort(_fiber: Fiber[Any], _error: BaseException) -> None:
            future.cancel()  # the fiber stays parked: _task_done wakes it

        return executor.park(fiber, waitlist, abort)

    def _task_done(
        self, fiber: Fiber[Any], waitlist: deque[Fiber[Any]], future: asyncio.Future[Any]
    ) -> None:
        self.executor.outside -= 1
        if not waitlist or self.done.done():
            return
        waitlist.clear()
        if future.cancelled():
            error: BaseException | None = fiber.cancel_requested or Cancelled(
                f"the asyncio task that {fiber} waited for was cancelled"
            )
            self._outside(self.executor.wake, fiber, None, error)
            return
        error = future.exception()
        self._outside(self.executor.wake, fiber, None if error else future.result(), error)
