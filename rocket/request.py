"""Requests: what a fiber yields to ask the executor for something.

A fiber talks to the executor only by yielding request objects::

    data = yield rocket.read(fd, 4096)      # generator fiber
    data = await rocket.read(fd, 4096)      # async def fiber

Both work because :meth:`Request.__await__` is a one-step generator that yields
the request itself and returns whatever the executor sends back (trio's
``_async_yield`` trick). Requests are plain data: building one does nothing but
check its arguments, so bad input raises in the caller, before anything
reaches an engine. Yielding it is what acts.

Two families:

* :class:`IORequest` -- performed by an engine (files, sockets, timers).
* the other :class:`Request` subclasses -- handled by the executor itself
  (spawn, join, current, yield_now, park); see :mod:`rocket.sched`.

A :class:`Composite` is a small fiber body made of several requests (such as
``Stream.readline``). Yield it like a request: the executor runs it as a nested
call of the same fiber (as pyos8's trampoline does with ``yield subroutine()``)
and sends back its return value. ``yield from`` and ``await`` work too and skip
that trip through the executor.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar, Union, cast

__all__ = ["Composite", "FiberBody", "IORequest", "Request"]

T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")


class Request(Generic[T_co]):
    """Base of every request; ``T_co`` is the type of its result.

    Invariant: a request holds only its arguments; it never refers to the fiber
    that yields it, so one request object may be yielded again.
    """

    __slots__ = ()

    #: Lowercase verb name shown in traces and error messages.
    verb = "request"
    #: True for a request that releases a resource (close): it is performed even
    #: when a cancel is pending, which is then raised at the fiber's next request.
    releases = False

    def __await__(self) -> Generator[Request[object], object, T_co]:
        """Yield this request to the executor and return its result."""
        result = yield self
        return cast("T_co", result)  # the executor sends the matching type

    __iter__ = __await__

    def describe(self) -> str:
        """Describe the request in words, e.g. ``read(fd=3)``."""
        return f"{self.verb}()"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class IORequest(Request[T_co]):
    """A request that an engine performs (I/O or a timer).

    Invariant: the engine keeps the request (and every buffer it owns) alive
    until its completion is reaped, even after its fiber was cancelled.
    """

    __slots__ = ()


class Composite(Generic[R]):
    """A helper made of several requests, such as ``stream.readline()``.

    ``yield`` it like a request (it runs as a nested call of the fiber), or use
    ``yield from`` / ``await``. Invariant: it runs at most once.
    """

    __slots__ = ("_body", "name")

    _body: Generator[Request[Any], Any, R] | None

    def __init__(self, name: str, body: Generator[Request[Any], Any, R]) -> None:
        self.name = name
        self._body = body

    def __await__(self) -> Generator[Request[Any], Any, R]:
        """Run the helper's requests in the calling fiber; return its result."""
        return self.take("await or yield from")

    __iter__ = __await__

    def take(self, op: str) -> Generator[Request[Any], Any, R]:
        """The body to run, once (a helper's requests must not run twice).

        Raises:
            TypeError: it was run already; call the helper again for a new one.
        """
        body = self._body
        if body is None:
            raise TypeError(
                f"{op}: {self.name}() was already run; a Composite runs once, so call "
                f"{self.name}() again for a new one"
            )
        self._body = None
        return body

    def __repr__(self) -> str:
        return f"<Composite {self.name}()>"


#: What a fiber is: a generator that yields requests, or a coroutine.
FiberBody = Union[  # noqa: UP007 - an alias that must stay subscriptable on 3.10
    Generator[Request[Any], Any, R], Coroutine[Any, Any, R]
]
