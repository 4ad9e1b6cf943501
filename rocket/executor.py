"""The executor: a trampoline over fibers, with a runnable queue and a blocked table.

One pass of the loop (as in rocket_io's C executor and Beazley's pyos):
(1) run every fiber that is runnable *now*, each until it yields a request
that makes it wait: I/O requests go to the engine under a fresh token (the
fiber waits in ``blocked[token]``), scheduling requests are handled here, and
an :class:`~rocket.sched.ExecutorRequest` (Event, gather, signal...) handles
itself; (2) ask the engine for completions -- without waiting if something is
runnable, else until the next timer (``fail_after``) at most -- and make each
completed fiber runnable with its result or error; then fire due timers. The
engine submits everything prepared in (1) with one system call. (If fibers are
runnable and none waits on the engine, step (2) runs only every ``_POLL``
seconds, for signals and timers.)

Invariants:

* A fiber is in exactly one place: the runnable queue, ``blocked`` (state
  blocked, under its token), one wait list (state parked), or nowhere
  (finished). ``fibers`` holds every fiber that has not finished.
* Every token completes exactly once, cancelled ones included; token 0 is
  never used.

Cancellation (:meth:`cancel`) follows the rule in ``rocket._cancelling``.
Each fiber has its own copy of the ``contextvars`` context
(``rocket._fibercontext``).
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rocket import _cancelling, _context, _fibercontext, sched
from rocket._cancelling import nothing_to_lose
from rocket._timers import Timers
from rocket.errors import Cancelled
from rocket.fiber import BLOCKED, PARKED, RUNNABLE, Fiber
from rocket.request import IORequest

if TYPE_CHECKING:
    from rocket.engines import Engine
    from rocket.trace import Tracer

__all__ = ["Executor"]

_Handler = Callable[[Fiber[Any], Any], Any]
_WAIT = sched.WAIT
_POLL = 0.01  # with only runnable fibers, look at the engine and timers this often
_YIELD_NOW = sched.yield_now()  # the one YieldNow request that yield_now() returns
_NESTED: Any = object()  # returned by nest: the fiber's body is now the nested call


def _without_this_frame(error: BaseException) -> BaseException:
    """``error`` without the executor's own frame at the head of its traceback.

    A nested call's error leaves it through ``body.send`` in :meth:`Executor._step`;
    thrown into the caller, it then reads as with ``yield from``: caller, callee.
    A fiber's final error is stored without it too: that frame's local ``fiber``
    would make a cycle (fiber -> error -> traceback -> frame -> fiber) that keeps
    the fiber's frames and their locals (sockets, buffers) alive until the
    cyclic garbage collector runs (trio's test_locals_destroyed_promptly_on_cancel).
    """
    tb = error.__traceback__
    if tb is not None and tb.tb_frame.f_code is Executor._step.__code__:
        error.__traceback__ = tb.tb_next
    return error


class Executor:
    """Runs fibers on one engine; see the module docstring for the design."""

    def __init__(self, engine: Engine, tracer: Tracer | None = None) -> None:
        self.engine = engine
        self.runnable: deque[tuple[Fiber[Any], Any, BaseException | None]] = deque()
        self.blocked: dict[int, Fiber[Any]] = {}
        self.fibers: dict[int, Fiber[Any]] = {}
        self.main: Fiber[Any] | None = None
        self.running: Fiber[Any] | None = None  # the fiber being stepped (or last stepped)
        #: The executor's clock: the engine's if it has one (rocket.testing), else monotonic.
        self.clock: Callable[[], float] = getattr(engine, "clock", time.monotonic)
        self.now = self.clock()  # updated once per pass
        self.timers = Timers()
        # Engine requests no fiber waits for (the signal watcher's read): they alone
        # never keep the loop waiting; `outside` parked fibers (waiting for a signal) do.
        self.services: dict[int, Callable[[Any, BaseException | None], None]] = {}
        self.outside = 0
        self.scopes: dict[Fiber[Any], list[Any]] = {}  # fiber -> its cancel scopes, outermost first
        self.thread: int | None = None  # the ident of the thread running the loop (enter_loop)
        self.passes = 0  # passes begun: the watchdog (rocket.watchdog) sees it stand still
        self.inbox: Any = None  # thread-safe wake-ups (rocket.loop_handle), made on first use
        # Fibers with no context of their own run in `shared`, kept equal to `clean`
        # (the caller's contextvars at run()): see rocket._fibercontext.
        self.clean = contextvars.copy_context()
        self.shared = self.clean.copy()
        self._tracer = tracer
        self._next_token = itertools.count(1).__next__
        self._next_id = itertools.count(1).__next__
        self._next_service = itertools.count(2**62).__next__
        self._poll_at = 0.0  # when run_passes looks at the engine next (with only runnable fibers)
        self.swept = 0  # cancel_all has cancelled every fiber up to this id
        self._handlers: dict[type, _Handler] = {
            sched.Spawn: self._spawn,
            sched.Current: lambda fiber, _: fiber,
            sched.YieldNow: self._yield_now,
            sched.Park: lambda fiber, request: self.park(fiber, request.waitlist, request.abort),
        }

    def start(self, body: Any, name: str | None = None) -> Fiber[Any]:
        """Create a fiber for ``body`` (checked by :func:`sched.body_of`) and make it runnable."""
        body = sched.body_of(body, "spawn")
        fiber: Fiber[Any] = Fiber(self, self._next_id(), body, name, _fibercontext.for_child(self))
        self.fibers[fiber.id] = fiber
        self.runnable.append((fiber, None, None))
        return fiber

    def run(self, body: Any) -> Any:
        """Run ``body`` as the main fiber until every fiber has finished."""
        self.main = self.start(body, "main")
        self.loop()
        return self.main.result()

    def loop(self) -> None:
        """The trampoline: run until no fiber is left."""
        previous = _context.swap(self)  # lets 'with rocket.fail_after()' find us
        _context.enter_loop(self)
        try:
            while self.shared.run(self.run_passes, True):  # again after _fibercontext.isolate
                pass
        finally:
            _context.leave_loop()
            _context.swap(previous)

    def run_passes(self, block: bool) -> bool:
        """Run passes of the loop (see the module docstring).

        ``block=True`` (``rocket.run``): passes until no fiber is left, each
        waiting in the engine when nothing is runnable. ``block=False`` (guest
        mode, :mod:`rocket.asyncio`): exactly one pass that never waits. One body
        serves both: the blocking loop keeps its locals across passes (a call per
        pass would slow it). Call it in ``self.shared`` (``shared.run(...)``).

        Returns:
            True if the caller must call again at once: a fiber set a ContextVar
            in the shared context (``rocket._fibercontext``; go on in the
            fresh ``self.shared``), or, with ``block=False``, the pass fired a
            timer (its cancel may have reached the engine after the reap).
        """
        runnable, blocked, engine, step = self.runnable, self.blocked, self.engine, self._step
        timers, services, clock, tracer = self.timers, self.services, self.clock, self._tracer
        shared, clean = self.shared, self.clean
        poll_at = self._poll_at
        while self.fibers:
            self.now = clock()
            self.passes += 1  # all the watchdog needs (rocket.watchdog)
            for _ in range(len(runnable)):  # only the fibers runnable now
                fiber, value, error = runnable.popleft()
                if fiber.context is None:  # it runs in `shared`: see rocket._fibercontext
                    step(fiber, value, error)
                else:
                    fiber.context.run(step, fiber, value, error)
                if tracer is not None:
                    tracer.stepped(self, fiber)
                if shared != clean:  # it set a ContextVar in `shared`
                    _fibercontext.isolate(self, fiber)
                    return True
            if not self.fibers:
                break
            # With fibers runnable and none waiting on the engine, look at it (signals,
            # timers) only every _POLL seconds: a busy pass then costs no system call.
            if blocked or not runnable or self.now >= poll_at:
                self._poll_at = poll_at = self.now + _POLL
                if not (runnable or blocked or timers.live or self.outside):
                    raise sched.deadlock(self.fibers.values())
                if blocked or services or not block:  # a guest always drains the engine
                    timeout: float | None = 0 if runnable or not block else None
                    if timeout is None and timers.live:
                        timeout = timers.delay(clock())
                    for token, value, error in engine.wait(timeout):
                        woken = blocked.pop(token, None)
                        if woken is None:
                            services.pop(token)(value, error)
                            continue
                        woken.state = RUNNABLE
                        if woken.cancel_requested is not None and nothing_to_lose(value, error):
                            value, error = None, woken.cancel_requested  # see cancel()
                            woken.cancel_requested = None
                        runnable.append((woken, value, error))
                        if tracer is not None:
                            tracer.woke(self, woken, token, value, error)
                elif not runnable:  # only timers: nothing in flight, just sleep
                    engine.wait(timers.delay(clock()))
                if timers.live:
                    live = timers.live
                    timers.fire(clock())
                    if not block:
                        return timers.live != live
            if not block:
                break
        return False

    def _step(self, fiber: Fiber[Any], value: Any, error: BaseException | None) -> None:
        """Resume ``fiber`` until it yields a request that makes it wait.

        A handler returns the answer to a request it can answer at once (spawn,
        current...), which is sent in this same step, else ``_WAIT``. A nested
        call (a yielded generator, coroutine or Composite) is pushed on
        ``fiber.stack`` and runs until it returns (its value is sent to the
        caller) or raises (its error is thrown into the caller); only those two
        rare paths look at the stack, so a primitive request pays nothing.
        """
        self.running = fiber
        body = fiber.body
        while True:
            try:
                if error is None:
                    request = body.send(value)
                else:
                    if fiber.cancel_requested is not None and type(error) is Cancelled:
                        error, fiber.cancel_requested = fiber.cancel_requested, None  # delivery
                    request = body.throw(error)
            except StopIteration as stop:
                if fiber.stack:  # a nested call returned: resume its caller
                    body = fiber.body = fiber.stack.pop()
                    value, error = stop.value, None
                    continue
                self._finish(fiber, stop.value, None)
                return
            except (Exception, Cancelled) as exc:
                if fiber.stack:  # a nested call raised: raise it at its caller's yield
                    body = fiber.body = fiber.stack.pop()
                    value, error = None, _without_this_frame(exc)
                    continue
                # Without this frame in its traceback, the error no longer holds the
                # frame whose local is the fiber: no cycle keeps the body's locals alive.
                self._finish(fiber, None, _without_this_frame(exc))
                return
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the loop
                self._unwind(fiber, exc)
                self._finish(fiber, None, exc)
                raise
            if fiber.cancel_requested is not None and not getattr(request, "releases", False):
                value, error = None, fiber.cancel_requested  # cancelled while it ran: raise it here
                fiber.cancel_requested = None
                continue
            fiber.request = request
            if request is _YIELD_NOW:  # the switch itself, without a handler call: +20%
                self.runnable.append((fiber, None, None))
                return
            handler = self._handlers.get(request.__class__) or self._handler_for(request)
            value = handler(fiber, request)
            if value is _WAIT:
                return
            if value is _NESTED:  # the handler pushed a nested call: start it
                body, value = fiber.body, None
            error = None

    def nest(self, fiber: Fiber[Any], call: Any) -> Any:
        """Run a generator, coroutine or Composite as a nested call of ``fiber``.

        The handler of a yielded body; an ExecutorRequest's ``handle`` may return it
        too (as it returns :meth:`park`'s), to continue in a body of its own (Queue).
        """
        try:
            body = sched.body_of(call, "yield")
        except TypeError as exc:  # e.g. a Composite yielded twice
            return self.throw(fiber, exc)
        if fiber.stack is None:
            fiber.stack = []
        fiber.stack.append(fiber.body)
        fiber.body = body
        return _NESTED

    def _unwind(self, fiber: Fiber[Any], error: BaseException) -> None:
        """Close the nested calls of a fiber that stops with ``error``, innermost first."""
        stack = fiber.stack
        while stack:
            fiber.body.close()
            fiber.body = stack.pop()

    def _handler_for(self, request: object) -> _Handler:
        """Find (and cache) the handler of a request class seen for the first time."""
        if isinstance(request, IORequest):
            handler: _Handler = self.submit
        elif isinstance(request, sched.ExecutorRequest):
            handler = self._call
        elif sched.is_nested_call(request):
            handler = self.nest
        else:
            return self._reject
        self._handlers[request.__class__] = handler
        return handler

    def _call(self, fiber: Fiber[Any], request: sched.ExecutorRequest[Any]) -> Any:
        try:
            return request.handle(self, fiber)
        except (Exception, Cancelled) as exc:  # thrown into the fiber, never into the loop
            return self.throw(fiber, exc)

    def _spawn(self, fiber: Fiber[Any], request: sched.Spawn[Any]) -> Any:
        try:
            return self.start(request.body, request.name)
        except TypeError as exc:  # the same Spawn yielded twice: its body already ran
            return self.throw(fiber, exc)

    def _yield_now(self, fiber: Fiber[Any], _: sched.YieldNow) -> Any:
        self.runnable.append((fiber, None, None))
        return _WAIT

    def submit(self, fiber: Fiber[Any], request: IORequest[Any]) -> Any:
        """Give ``request`` to the engine for ``fiber``, which waits for it; returns WAIT.

        The handler of every I/O request; an ExecutorRequest's ``handle`` may
        return it too, to perform I/O of its own (``Stream.write``). Afterwards
        ``fiber.token`` is the request's token, in ``blocked`` until it completes.
        """
        token = self._next_token()
        fiber.state = BLOCKED
        fiber.token = token
        fiber.since = self.now
        self.blocked[token] = fiber
        try:
            self.engine.submit(token, request)
        except Exception as exc:  # e.g. an operation this engine lacks
            del self.blocked[token]
            self.wake(fiber, None, exc)
        return _WAIT

    def serve(self, request: IORequest[Any], callback: Callable[[Any, Any], None]) -> None:
        """Submit ``request`` for no fiber; ``callback(value, error)`` gets its completion."""
        token = self._next_service()  # a range of its own: fibers' tokens stay 1, 2, ...
        self.services[token] = callback
        self.engine.submit(token, request)

    def _reject(self, fiber: Fiber[Any], thing: object) -> Any:
        return self.throw(fiber, sched.bad_yield(fiber, thing))

    def throw(self, fiber: Fiber[Any], error: BaseException) -> Any:
        """Make ``fiber`` runnable with ``error`` to raise; returns WAIT (for handlers)."""
        self.runnable.append((fiber, None, error))
        return _WAIT

    def park(
        self,
        fiber: Fiber[Any],
        waitlist: deque[Fiber[Any]],
        abort: Callable[[Fiber[Any], BaseException], None] | None = None,
    ) -> Any:
        """Put ``fiber`` at the end of ``waitlist`` until someone wakes it; returns WAIT.

        ``abort(fiber, error)`` says what cancelling it does (trio's abort function):
        e.g. a lock waiter handed the lock passes it on. Without one, a cancelled
        fiber just leaves the wait list and gets the error.
        """
        fiber.state = PARKED
        fiber.waitlist = waitlist
        fiber.abort = abort
        fiber.since = self.now
        waitlist.append(fiber)
        return _WAIT

    def wake(self, fiber: Fiber[Any], value: Any, error: BaseException | None = None) -> None:
        """Make a parked fiber runnable; the caller took it off its wait list."""
        fiber.state = RUNNABLE
        fiber.waitlist = fiber.abort = None
        self.runnable.append((fiber, value, error))

    def _finish(self, fiber: Fiber[Any], result: Any, error: BaseException | None) -> None:
        fiber.finish(result, error)
        del self.fibers[fiber.id]
        joiners = fiber.joiners
        while joiners:  # None or empty: nobody is waiting
            joiner = joiners.popleft()
            if joiner.__class__ is Fiber:
                self.wake(joiner, None if error else result, fiber.exception() if error else None)
            else:  # a callback, e.g. a TaskGroup watching its children
                joiner(fiber)
        if fiber is self.main:
            self.cancel_all()

    cancel_all = _cancelling.cancel_all
    cancel = _cancelling.cancel
