"""Scheduling requests: handled by the executor itself, no engine involved.

``spawn`` starts a fiber, ``join`` waits for one, ``current`` names the caller,
``yield_now`` lets the other runnable fibers go first, and ``Park`` puts the
caller on a wait list until something (``join``, an ``Event``...) wakes it.
Like every request they act only when yielded or awaited::

    handle = yield rocket.spawn(child())
    value = yield rocket.join(handle)
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rocket.errors import Deadlock
from rocket.fiber import Fiber
from rocket.request import Composite, FiberBody, Request

if TYPE_CHECKING:
    from typing import TypeVarTuple, Unpack  # 3.11+; only mypy reads them here

    from rocket.executor import Executor

    Ts = TypeVarTuple("Ts")

__all__ = [
    "WAIT",
    "Current",
    "ExecutorRequest",
    "Join",
    "Park",
    "Spawn",
    "YieldNow",
    "bad_yield",
    "body_of",
    "call_body",
    "check_body",
    "deadlock",
    "current",
    "is_nested_call",
    "join",
    "one_request",
    "spawn",
    "yield_now",
]

R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)

#: Returned by a request handler when the fiber must wait (queued, blocked, parked).
WAIT: Any = object()


def check_body(body: object, op: str) -> None:
    """Raise TypeError unless ``body`` is a generator, coroutine or Composite."""
    if inspect.isgenerator(body) or inspect.iscoroutine(body) or isinstance(body, Composite):
        return
    if inspect.isgeneratorfunction(body) or inspect.iscoroutinefunction(body):
        name = getattr(body, "__name__", "function")
        hint = f"the function {name!r} itself; call it: {op}({name}())"
    else:
        hint = f"{type(body).__name__} {body!r:.60}"
    raise TypeError(
        f"{op}() expects a generator or coroutine object, such as main(), but got {hint}"
    )


def call_body(thing: Any, args: tuple[Any, ...], op: str) -> Any:
    """``thing(*args)`` for ``op(func, *args)``; ``thing`` itself if it is a body already.

    Raises:
        TypeError: arguments given with something that is not a function.
    """
    if is_nested_call(thing):
        if args:
            raise TypeError(
                f"{op}() got arguments after a {type(thing).__name__} object; pass the "
                f"function and its arguments, {op}(func, *args), or the call, {op}(func(*args))"
            )
        return thing
    if not callable(thing):
        return thing  # check_body explains what is wrong
    body = thing(*args)
    if not is_nested_call(body):
        name = getattr(thing, "__name__", type(thing).__name__)
        raise TypeError(
            f"{op}() expects a generator or coroutine object, such as main(), but "
            f"{op}({name}, ...) called {name}(), which returned {type(body).__name__} {body!r:.60}"
        )
    return body


def is_nested_call(thing: object) -> bool:
    """True for what a fiber may yield to call it: a generator, coroutine or Composite."""
    return inspect.isgenerator(thing) or inspect.iscoroutine(thing) or isinstance(thing, Composite)


def body_of(thing: Any, op: str) -> Any:
    """The generator or coroutine to run for ``thing`` (a fiber body or nested call).

    Raises:
        TypeError: ``thing`` is no body, or one that already ran or is running
            (a generator or Composite runs once: call the function again for a new one).
    """
    if isinstance(thing, Composite):
        return thing.take(op)
    if isinstance(thing, Request):  # e.g. spawn(stream.write(data)): a body of one request
        return one_request(thing)
    check_body(thing, op)
    if inspect.isgenerator(thing):
        state: str = inspect.getgeneratorstate(thing)
    else:
        state = inspect.getcoroutinestate(thing).replace("CORO_", "GEN_")
    if state != inspect.GEN_CREATED:
        name = getattr(thing, "__name__", "body")
        what = "has finished" if state == inspect.GEN_CLOSED else "is already running"
        raise TypeError(
            f"{op}: {name}() {what}; a generator or coroutine object runs once: call "
            f"{name}() again for a new one"
        )
    return thing


def one_request(request: Request[R] | Composite[R]) -> Generator[Any, Any, R]:
    """A fiber body that yields ``request`` (or runs a Composite) and returns its result."""
    result: R = yield request
    return result


class ExecutorRequest(Request[T_co]):
    """A request the executor answers by calling its :meth:`handle` method.

    How features outside the executor (``Event``, ``Queue``, ``gather``,
    ``signal``...) add requests of their own while the executor stays small.
    ``handle`` runs inside the fiber's step; it returns the answer at once, or
    :data:`WAIT` after arranging for ``executor.wake(fiber, ...)`` later
    (usually through ``executor.park``). An exception it raises is thrown
    into the fiber.
    """

    __slots__ = ()

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        """Answer the request for ``fiber`` now, or return :data:`WAIT`."""
        raise NotImplementedError


def bad_yield(fiber: Fiber[Any], thing: object) -> TypeError:
    """The error thrown into a fiber that yielded something that is not a request."""
    if inspect.isgeneratorfunction(thing) or inspect.iscoroutinefunction(thing):
        name = getattr(thing, "__name__", "function")
        hint = f"that is the function {name!r} itself; call it: yield {name}(...)"
    elif callable(thing) and not hasattr(thing, "__await__"):
        name = getattr(thing, "__name__", type(thing).__name__)
        hint = f"that is a function; yield the request it returns: yield {name}(...)"
    elif hasattr(thing, "__await__") or hasattr(thing, "add_done_callback"):
        hint = (
            "rocket cannot wait for another library's awaitable (an asyncio future or "
            "task?); a fiber yields rocket requests, generators, coroutines and Composites"
        )
    else:
        hint = "a fiber may only yield rocket requests, such as rocket.read(fd)"
    what = f"{thing!r:.60} ({type(thing).__name__})"
    return TypeError(f"fiber {fiber.id} ({fiber.name}) yielded {what}; {hint}")


def deadlock(fibers: Iterable[Fiber[Any]]) -> Deadlock:
    """The error ``run`` raises when no fiber can ever run again; names the stuck ones."""
    stuck = ", ".join(f"{f} waiting in {f.waitlist_name()}" for f in fibers)
    return Deadlock(f"no fiber can run and no I/O or timer is pending; stuck: {stuck}")


class Spawn(Request[Fiber[R]]):
    """Start ``body`` as a new fiber; the result is its :class:`Fiber` handle."""

    __slots__ = ("body", "name")
    verb = "spawn"

    def __init__(self, body: FiberBody[R] | Composite[R], name: str | None = None) -> None:
        body = body_of(body, "spawn")
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"spawn() argument 'name' must be str or None, not {type(name).__name__}"
            )
        self.body = body
        self.name = name

    def describe(self) -> str:
        return f"spawn({getattr(self.body, '__qualname__', '?')})"


class Join(ExecutorRequest[R]):
    """Wait for a fiber to finish; the result is its return value (or error)."""

    __slots__ = ("fiber",)
    verb = "join"

    def __init__(self, fiber: Fiber[R]) -> None:
        if not isinstance(fiber, Fiber):
            raise TypeError(
                f"join() expects a Fiber handle from spawn(), not {type(fiber).__name__}"
            )
        self.fiber = fiber

    def describe(self) -> str:
        return f"join(fiber={self.fiber.id})"

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        target = self.fiber
        if target.done():
            error = target.exception()
            return target.result() if error is None else executor.throw(fiber, error)
        if target is fiber:
            raise RuntimeError(f"{fiber} cannot join itself")
        if target.joiners is None:
            target.joiners = deque()
        return executor.park(fiber, target.joiners)


class Current(Request[Fiber[Any]]):
    """The calling fiber's own handle."""

    __slots__ = ()
    verb = "current"


class YieldNow(Request[None]):
    """Go to the back of the runnable queue."""

    __slots__ = ()
    verb = "yield_now"


class Park(Request[Any]):
    """Wait on ``waitlist`` until someone wakes the fiber with a value.

    The building block of ``join`` and of the synchronization primitives: the
    executor appends the fiber to ``waitlist``; whoever pops it calls
    ``executor.wake(fiber, value)``. ``abort(fiber, error)``, if given, decides
    what cancelling the parked fiber does; without it the fiber leaves the wait
    list and gets the error (see :meth:`Executor.park`).
    """

    __slots__ = ("abort", "waitlist", "what")
    verb = "park"

    def __init__(
        self,
        waitlist: deque[Fiber[Any]],
        what: str = "park",
        abort: Callable[[Fiber[Any], BaseException], None] | None = None,
    ) -> None:
        self.waitlist = waitlist
        self.what = what
        self.abort = abort

    def describe(self) -> str:
        return self.what


_CURRENT = Current()
_YIELD_NOW = YieldNow()


@overload
def spawn(
    body: FiberBody[R] | Composite[R] | Request[R], *, name: str | None = None
) -> Spawn[R]: ...


@overload
def spawn(
    body: Callable[[Unpack[Ts]], FiberBody[R] | Composite[R]],
    *args: Unpack[Ts],
    name: str | None = None,
) -> Spawn[R]: ...


def spawn(  # type: ignore[misc]  # mypy 2.4 cannot match *args: Any to Unpack[Ts]
    body: Any, *args: Any, name: str | None = None
) -> Spawn[Any]:
    """Start a generator, coroutine or Composite as a new fiber; the result is its handle.

    ``spawn(func, *args)`` is the same as ``spawn(func(*args))``. A request
    (``spawn(stream.write(data))``) runs as a fiber that yields it once.

    Raises:
        TypeError: ``body`` is no fiber body (and no function returning one).
    """
    return Spawn(call_body(body, args, "spawn"), name)


def join(fiber: Fiber[R]) -> Join[R]:
    """Wait for ``fiber``; return its result or raise its exception."""
    return Join(fiber)


def current() -> Current:
    """The calling fiber's own :class:`Fiber` handle."""
    return _CURRENT


def yield_now() -> YieldNow:
    """Let every other runnable fiber run once, then continue."""
    return _YIELD_NOW
