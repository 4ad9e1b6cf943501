"""The executor: a trampoline over fibers, with a runnable queue and a blocked table.

One pass of the loop (as in rocket_io's C executor and Beazley's pyos):

1. Run every fiber that is runnable *now*, each until it yields a request.
   I/O requests go to the engine under a fresh token and the fiber is parked
   in ``blocked[token]``; scheduling requests (spawn, join, ...) are handled
   right here.
2. Ask the engine for completions -- without waiting if something is still
   runnable, else waiting for at least one -- and move each completed fiber
   from ``blocked`` back to ``runnable`` with its result or error.

The engine submits everything prepared in step 1 with one system call.

Invariants:

* A fiber is in exactly one place: the runnable queue, ``blocked`` (state
  blocked, under its token), one wait list (state parked), or nowhere
  (finished). ``fibers`` holds every fiber that has not finished.
* Every token completes exactly once, cancelled ones included; token 0 is
  never used.

Cancellation rule: :meth:`cancel` throws :class:`~rocket.Cancelled` at the
fiber's current wait. A parked fiber is woken with it at once. For a blocked
fiber the engine cancels the request, and the fiber resumes only when the
engine reports that the kernel is done with it. If the request completed
anyway, the fiber gets its result (nothing is lost: an accepted socket or read
data is delivered) and ``Cancelled`` is raised at its next request. A fiber may
catch ``Cancelled`` and go on. When the main fiber finishes, the others are
cancelled and run until they finish.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rocket.errors import Cancelled, Deadlock
from rocket.fiber import BLOCKED, FINISHED, PARKED, RUNNABLE, Fiber
from rocket.request import Composite, IORequest
from rocket.sched import Current, Join, Park, Spawn, YieldNow

if TYPE_CHECKING:
    from rocket.engines import Engine
    from rocket.trace import Tracer

__all__ = ["Executor"]

_Handler = Callable[[Fiber[Any], Any], Any]

#: Returned by a request handler when the fiber must wait (queued, blocked, parked).
_WAIT: Any = object()


class Executor:
    """Runs fibers on one engine; see the module docstring for the design."""

    def __init__(self, engine: Engine, tracer: Tracer | None = None) -> None:
        self.engine = engine
        self.runnable: deque[tuple[Fiber[Any], Any, BaseException | None]] = deque()
        self.blocked: dict[int, Fiber[Any]] = {}
        self.fibers: dict[int, Fiber[Any]] = {}
        self.main: Fiber[Any] | None = None
        self._tracer = tracer
        self._next_token = itertools.count(1).__next__
        self._next_id = itertools.count(1).__next__
        self._handlers: dict[type, _Handler] = {
            Spawn: self._spawn,
            Join: self._join,
            Current: lambda fiber, _: fiber,
            YieldNow: self._yield_now,
            Park: self._park,
        }

    def start(self, body: Any, name: str | None = None) -> Fiber[Any]:
        """Create a fiber for ``body`` and make it runnable."""
        fiber: Fiber[Any] = Fiber(self, self._next_id(), body, name)
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
        runnable, blocked, engine, step = self.runnable, self.blocked, self.engine, self._step
        tracer = self._tracer
        while self.fibers:
            for _ in range(len(runnable)):  # only the fibers runnable now
                fiber, value, error = runnable.popleft()
                step(fiber, value, error)
                if tracer is not None:
                    tracer.stepped(self, fiber)
            if blocked:
                for token, value, error in engine.wait(0 if runnable else None):
                    fiber = blocked.pop(token)
                    fiber.state = RUNNABLE
                    runnable.append((fiber, value, error))
                    if tracer is not None:
                        tracer.woke(self, fiber, token, value, error)
            elif not runnable and self.fibers:
                stuck = ", ".join(
                    f"{f} waiting in {f.waitlist_name()}" for f in self.fibers.values()
                )
                raise Deadlock(f"no fiber can run and no I/O or timer is pending; stuck: {stuck}")

    def _step(self, fiber: Fiber[Any], value: Any, error: BaseException | None) -> None:
        """Resume ``fiber`` until it yields a request that makes it wait.

        Requests that can be answered at once (spawn, current, joining a
        finished fiber) are answered in this same step, without a trip
        through the runnable queue; their handlers return the answer, the
        others return ``_WAIT``.
        """
        body = fiber.body
        while True:
            try:
                if error is None:
                    request = body.send(value)
                else:
                    if fiber.cancel_requested and type(error) is Cancelled:
                        fiber.cancel_requested = False  # this is the delivery
                    request = body.throw(error)
            except StopIteration as stop:
                self._finish(fiber, stop.value, None)
                return
            except (Exception, Cancelled) as exc:
                self._finish(fiber, None, exc)
                return
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: stop the loop
                self._finish(fiber, None, exc)
                raise
            if fiber.cancel_requested:  # cancelled while it ran: raise it here
                fiber.cancel_requested = False
                value, error = None, Cancelled()
                continue
            fiber.request = request
            handler = self._handlers.get(request.__class__) or self._handler_for(request)
            value = handler(fiber, request)
            if value is _WAIT:
                return
            error = None

    def _handler_for(self, request: object) -> _Handler:
        """Find (and cache) the handler of a request class seen for the first time."""
        if isinstance(request, IORequest):
            self._handlers[request.__class__] = self._submit
            return self._submit
        return self._reject

    def _yield_now(self, fiber: Fiber[Any], _: YieldNow) -> Any:
        self.runnable.append((fiber, None, None))
        return _WAIT

    def _submit(self, fiber: Fiber[Any], request: IORequest[Any]) -> Any:
        token = self._next_token()
        fiber.state = BLOCKED
        fiber.token = token
        self.blocked[token] = fiber
        try:
            self.engine.submit(token, request)
        except Exception as exc:  # e.g. an operation this engine lacks
            del self.blocked[token]
            self.wake(fiber, None, exc)
        return _WAIT

    def _reject(self, fiber: Fiber[Any], thing: object) -> Any:
        if isinstance(thing, Composite):
            hint = f"use 'yield from' or 'await' with {thing.name}()"
        elif hasattr(thing, "send") and hasattr(thing, "throw"):
            hint = "to run a generator or coroutine use 'yield from', 'await' or rocket.spawn()"
        else:
            hint = "a fiber may only yield rocket requests, such as rocket.read(fd)"
        what = f"{thing!r:.60} ({type(thing).__name__})"
        message = f"fiber {fiber.id} ({fiber.name}) yielded {what}; {hint}"
        self.runnable.append((fiber, None, TypeError(message)))
        return _WAIT

    def _spawn(self, fiber: Fiber[Any], request: Spawn[Any]) -> Any:
        return self.start(request.body, request.name)

    def _join(self, fiber: Fiber[Any], request: Join[Any]) -> Any:
        target = request.fiber
        if target.state is FINISHED:
            error = target.exception()
            if error is None:
                return target.result()
            self.runnable.append((fiber, None, error))
        elif target is fiber:
            self.runnable.append((fiber, None, RuntimeError(f"{fiber} cannot join itself")))
        else:
            if target.joiners is None:
                target.joiners = deque()
            self._park(fiber, Park(target.joiners, f"join(fiber={target.id})"))
        return _WAIT

    def _park(self, fiber: Fiber[Any], request: Park) -> Any:
        fiber.state = PARKED
        fiber.waitlist = request.waitlist
        request.waitlist.append(fiber)
        return _WAIT

    def wake(self, fiber: Fiber[Any], value: Any, error: BaseException | None = None) -> None:
        """Make a parked fiber runnable; the caller took it off its wait list."""
        fiber.state = RUNNABLE
        fiber.waitlist = None
        self.runnable.append((fiber, value, error))

    def _finish(self, fiber: Fiber[Any], result: Any, error: BaseException | None) -> None:
        fiber.finish(result, error)
        del self.fibers[fiber.id]
        joiners = fiber.joiners
        while joiners:  # None or empty: nobody is waiting
            self.wake(
                joiners.popleft(), None if error else result, fiber.exception() if error else None
            )
        if fiber is self.main:
            self.cancel_all()

    def cancel_all(self) -> None:
        """Cancel every fiber that has not finished."""
        for other in list(self.fibers.values()):
            self.cancel(other)

    def cancel(self, fiber: Fiber[Any]) -> None:
        """Throw :class:`~rocket.Cancelled` into ``fiber`` at its current wait."""
        state = fiber.state
        if state is FINISHED or fiber.cancel_requested:
            return
        if state is PARKED:
            assert fiber.waitlist is not None
            fiber.waitlist.remove(fiber)
            self.wake(fiber, None, Cancelled())
        else:
            fiber.cancel_requested = True
            if state is BLOCKED:
                self.engine.cancel(fiber.token)
