"""The fiber handle: one generator or coroutine and its bookkeeping.

A fiber is in exactly one state at a time:

* ``runnable`` -- in the executor's runnable queue, with the value (or error)
  it will be resumed with;
* ``blocked``  -- waiting for an engine completion under ``token``;
* ``parked``   -- waiting on an executor-level wait list (``join``, ``Event``...);
* ``finished`` -- returned or raised; ``result()`` tells which.

Handles are what ``spawn`` returns and what ``join`` and ``cancel`` take.
"""

from __future__ import annotations

import contextvars
import sys
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rocket.errors import Cancelled

if TYPE_CHECKING:
    from rocket.executor import Executor

__all__ = ["BLOCKED", "FINISHED", "PARKED", "RUNNABLE", "Fiber"]

R = TypeVar("R")

RUNNABLE = "runnable"
BLOCKED = "blocked"
PARKED = "parked"
FINISHED = "finished"


class Fiber(Generic[R]):
    """Handle of one fiber: its ``id``, ``name``, state and outcome."""

    __slots__ = (
        "__weakref__",
        "_error",
        "_result",
        "_retrieved",
        "abort",
        "body",
        "cancel_requested",
        "context",
        "executor",
        "id",
        "joiners",
        "name",
        "request",
        "since",
        "stack",
        "state",
        "token",
        "waitlist",
    )

    def __init__(
        self,
        executor: Executor,
        fid: int,
        body: Any,
        name: str | None,
        context: contextvars.Context | None = None,
    ) -> None:
        self.id = fid
        self.name = name or getattr(body, "__qualname__", None) or f"fiber-{fid}"
        self.body = body  # the generator or coroutine running now (innermost call)
        # Invariant: the callers of ``body``, outermost first, while it is a nested
        # call (``yield helper()``); None or empty otherwise.
        self.stack: list[Any] | None = None
        self.executor = executor
        # Invariant: state says where the fiber is; token is set iff blocked,
        # waitlist iff parked.
        self.state = RUNNABLE
        self.token = 0
        self.waitlist: deque[Fiber[Any]] | None = None
        # What cancelling it while parked does (see Executor.park), or None.
        self.abort: Callable[[Fiber[Any], BaseException], None] | None = None
        # Invariant: cancel_requested is the Cancelled not yet thrown into the
        # fiber (the strongest asked for), or None.
        self.cancel_requested: Cancelled | None = None
        self.request: Any = None  # the last request it yielded
        # The contextvars context the body runs in, a copy of the spawner's (O(1): the
        # copy shares its map); None: the executor's shared one (Executor._context_for_child).
        self.context = context
        self.since = executor.now  # when it last started to wait (time.monotonic)
        # Fibers to wake, or callables ``cb(fiber)`` to call, when it finishes;
        # made on the first join: saves memory.
        self.joiners: deque[Any] | None = None
        self._result: R | None = None
        self._error: BaseException | None = None
        self._retrieved = False

    def done(self) -> bool:
        """True once the fiber has returned or raised."""
        return self.state is FINISHED

    def cancelled(self) -> bool:
        """True if the fiber finished by raising :class:`~rocket.Cancelled`."""
        return self.state is FINISHED and isinstance(self._error, Cancelled)

    def result(self) -> R:
        """The fiber's return value, or raise its exception.

        Raises:
            RuntimeError: the fiber has not finished yet.
        """
        if self.state is not FINISHED:
            raise RuntimeError(f"{self} has not finished yet; join it first")
        self._retrieved = True
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def exception(self) -> BaseException | None:
        """The exception the fiber raised, or None (it must be finished)."""
        if self.state is not FINISHED:
            raise RuntimeError(f"{self} has not finished yet; join it first")
        self._retrieved = True
        return self._error

    def cancel(self, msg: str | None = None) -> None:
        """Ask the fiber to stop: :class:`~rocket.Cancelled` is thrown into it.

        Args:
            msg: a message for the ``Cancelled`` (``str(error)``), e.g. why.

        Cancelling a finished fiber does nothing. See the executor's docstring
        for the exact rule when I/O is in flight.

        Raises:
            TypeError: ``msg`` is not a str.
        """
        if msg is None:
            self.executor.cancel(self)
            return
        if not isinstance(msg, str):
            raise TypeError(f"cancel(msg=...): msg must be a str, not {type(msg).__name__}")
        self.executor.cancel(self, Cancelled(msg))

    def waitlist_name(self) -> str:
        """What the fiber waits for, in words, e.g. ``join(fiber=3)``."""
        request = self.request
        return request.describe() if request is not None else "nothing (not started)"

    def finish(self, result: Any, error: BaseException | None) -> None:
        """Record the outcome (called by the executor only)."""
        self.state = FINISHED
        self._result = result
        self._error = error
        self.body = None  # drop the frame and everything it references

    def __del__(self) -> None:
        # A failure nobody looked at would be lost silently: report it once,
        # when the last reference to the handle goes (asyncio's rule).
        error = self._error
        if error is not None and not self._retrieved and not isinstance(error, Cancelled):
            self._retrieved = True
            report_failure(self, error)

    def __repr__(self) -> str:
        return f"<Fiber {self.id} {self.name!r} {self.state}>"


def report_failure(fiber: Fiber[Any], error: BaseException) -> None:
    """Print a failure that no fiber joined, with its traceback, to stderr."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    sys.stderr.write(f"rocket: fiber {fiber.id} ({fiber.name}) failed and was never joined:\n")
    sys.stderr.write("".join(lines))
