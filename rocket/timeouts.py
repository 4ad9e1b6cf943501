"""Timeouts: bound a whole block (``fail_after``, ``move_on_after``) or one request.

Blocks, in either fiber style, with a plain ``with``::

    with rocket.fail_after(5):                  # TimeoutError after 5 s
        data = yield rocket.recv(sock)           # (or: await rocket.recv(sock))

    with rocket.move_on_after(5) as scope:      # just leave the block
        data = yield rocket.recv(sock)
    if scope.timed_out:
        ...

How the block finds its fiber: the executor records the fiber it is
stepping (``executor.running``), and ``__enter__`` runs inside that step, so
no ``yield`` is needed to enter the block (trio's design; the alternative,
``with (yield rocket.fail_after(5)):``, reads badly and differs between the
two styles). ``async with`` works too.

When the deadline passes, the executor's timer cancels the fiber with a
:class:`~rocket.Cancelled` that belongs to the scope (see
``rocket._scope``), so whatever it waits on is cancelled by the usual
rule (I/O in flight is cancelled in the kernel, and the fiber resumes only
when the kernel is done with it). The scope turns its own ``Cancelled`` into
``TimeoutError`` (``fail_after``) or swallows it (``move_on_after``) at the
end of the block. If the operation in flight completed before the cancel
landed and the block then ended, nothing is raised and ``timed_out`` stays
False: the block did its work. Timers are kept by the executor, not the
engine: entering and leaving a block costs no system call.

One request: ``data = yield rocket.timeout(5, rocket.recv(sock))`` completes
like the request or raises ``TimeoutError``. It is performed by the engine,
with the request: on io_uring as a *linked timeout* (the request's SQE
carries ``IOSQE_IO_LINK`` and is followed by a ``link_timeout`` SQE, so the
kernel cancels the request itself when time runs out, with no Python timer);
on the readiness engine, with the engine's timer heap. As with
cancellation, a request the engine can no longer stop (a file job or a
``to_thread`` function already running in a worker) completes normally.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TypeVar

from rocket import _checks
from rocket._scope import CancelScope
from rocket.ops.timers import Timeout, timed_out, timeout

__all__ = ["Timeout", "TimeoutScope", "fail_after", "move_on_after", "timed_out", "timeout"]

T = TypeVar("T")


class TimeoutScope(CancelScope):
    """A :class:`CancelScope` with a deadline set on entry, made by :func:`fail_after` & co.

    Attributes:
        seconds: the time limit given.
        deadline: when it runs out, on the executor's clock (set on entry; movable).
    """

    def __init__(self, seconds: float, *, fail: bool, verb: str) -> None:
        super().__init__()
        self.seconds = _checks.seconds(seconds, verb, infinite_ok=True)
        self._fail = fail
        self._verb = verb

    @property
    def timed_out(self) -> bool:
        """True once the block has been cut short by the deadline (or a ``cancel()``)."""
        return self.cancelled_caught

    def __repr__(self) -> str:
        return f"<{self._verb}({self.seconds:g}) timed_out={self.timed_out}>"

    def __enter__(self) -> TimeoutScope:
        self._open(f"{self._verb}()")
        if self.seconds != math.inf:
            self._deadline = self.executor.clock() + self.seconds
        self._arm()
        return self

    def _expire(self) -> None:
        self._timer = None
        self.cancel_fiber(f"{self._verb}({self.seconds:g}) ran out of time")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if not super().__exit__(kind, error, traceback):
            return False
        if self._fail:
            raise TimeoutError(f"{self._verb}({self.seconds:g}): the block ran out of time")
        return True

    async def __aenter__(self) -> TimeoutScope:
        return self.__enter__()


def fail_after(seconds: float) -> TimeoutScope:
    """A ``with`` block that raises ``TimeoutError`` if it takes longer than ``seconds``.

    When time runs out, whatever the fiber waits on is cancelled; the
    ``Cancelled`` unwinds the block (``finally`` clauses run and may do I/O)
    and becomes ``TimeoutError`` at its end. ``seconds=math.inf``: no limit.
    The scope is a :class:`~rocket.CancelScope`: ``scope.deadline`` can be
    moved and ``scope.cancel()`` called while the block runs.

    Raises:
        TypeError, ValueError: ``seconds`` is not a number >= 0.
        RuntimeError: used outside a rocket fiber.
    """
    return TimeoutScope(seconds, fail=True, verb="fail_after")


def move_on_after(seconds: float) -> TimeoutScope:
    """A ``with`` block that is left quietly if it takes longer than ``seconds``.

    Like :func:`fail_after`, but the block just ends; ``scope.timed_out``
    (``with rocket.move_on_after(1) as scope:``) tells whether it was cut short.
    """
    return TimeoutScope(seconds, fail=False, verb="move_on_after")
