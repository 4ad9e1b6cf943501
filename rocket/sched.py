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
from typing import Any, TypeVar

from rocket.fiber import Fiber
from rocket.request import FiberBody, Request

__all__ = [
    "Current",
    "Join",
    "Park",
    "Spawn",
    "YieldNow",
    "check_body",
    "current",
    "join",
    "spawn",
    "yield_now",
]

R = TypeVar("R")


def check_body(body: object, op: str) -> None:
    """Raise TypeError unless ``body`` is a generator or coroutine object."""
    if inspect.isgenerator(body) or inspect.iscoroutine(body):
        return
    if inspect.isgeneratorfunction(body) or inspect.iscoroutinefunction(body):
        name = getattr(body, "__name__", "function")
        hint = f"the function {name!r} itself; call it: {op}({name}())"
    else:
        hint = f"{type(body).__name__} {body!r:.60}"
    raise TypeError(
        f"{op}() expects a generator or coroutine object, such as main(), but got {hint}"
    )


class Spawn(Request[Fiber[R]]):
    """Start ``body`` as a new fiber; the result is its :class:`Fiber` handle."""

    __slots__ = ("body", "name")
    verb = "spawn"

    def __init__(self, body: FiberBody[R], name: str | None = None) -> None:
        check_body(body, "spawn")
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"spawn() argument 'name' must be str or None, not {type(name).__name__}"
            )
        self.body = body
        self.name = name

    def describe(self) -> str:
        return f"spawn({getattr(self.body, '__qualname__', '?')})"


class Join(Request[R]):
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
    ``executor.wake(fiber, value)``.
    """

    __slots__ = ("waitlist", "what")
    verb = "park"

    def __init__(self, waitlist: deque[Fiber[Any]], what: str = "park") -> None:
        self.waitlist = waitlist
        self.what = what

    def describe(self) -> str:
        return self.what


_CURRENT = Current()
_YIELD_NOW = YieldNow()


def spawn(body: FiberBody[R], *, name: str | None = None) -> Spawn[R]:
    """Start a generator or coroutine as a new fiber; the result is its handle."""
    return Spawn(body, name)


def join(fiber: Fiber[R]) -> Join[R]:
    """Wait for ``fiber``; return its result or raise its exception."""
    return Join(fiber)


def current() -> Current:
    """The calling fiber's own :class:`Fiber` handle."""
    return _CURRENT


def yield_now() -> YieldNow:
    """Let every other runnable fiber run once, then continue."""
    return _YIELD_NOW
