"""``Barrier``: ``parties`` fibers wait for each other (asyncio's and threading's meaning).

Each ``wait()`` parks until ``parties`` fibers are waiting; the last to
arrive releases them all and the barrier starts its next round at once.
``wait()`` returns the fiber's arrival index in its round, 0 to
``parties - 1`` (the last arrival gets ``parties - 1``). A waiter cancelled
before the round filled leaves it, and the round still needs ``parties``
fibers. ``abort()`` breaks the barrier (its waiters and every later
``wait()`` raise :data:`BrokenBarrierError` until ``reset()``); ``reset()``
breaks only the current round.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket.request import Request
from rocket.sync import Wait

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["Barrier", "BrokenBarrierError"]

#: Raised by ``Barrier.wait()`` on a broken or reset barrier (the standard library's,
#: as ``queue.Empty`` is for ``Queue``).
BrokenBarrierError = threading.BrokenBarrierError


class Barrier:
    """Release ``parties`` waiting fibers together; see the module docstring."""

    __slots__ = ("__weakref__", "_broken", "_parties", "_waiters")

    def __init__(self, parties: int) -> None:
        if isinstance(parties, bool) or not isinstance(parties, int):
            raise TypeError(
                f"Barrier() argument 'parties' must be an int, not {type(parties).__name__}"
            )
        if parties < 1:
            raise ValueError(f"Barrier() argument 'parties' must be >= 1, got {parties}")
        self._parties = parties
        self._broken = False
        # Invariant: fewer than _parties fibers wait, in arrival order.
        self._waiters: deque[Fiber[Any]] = deque()

    @property
    def parties(self) -> int:
        """How many fibers each round needs."""
        return self._parties

    @property
    def n_waiting(self) -> int:
        """How many fibers wait in the current round."""
        return len(self._waiters)

    @property
    def broken(self) -> bool:
        """True after :meth:`abort`, until :meth:`reset`."""
        return self._broken

    def wait(self) -> Request[int]:
        """Wait until ``parties`` fibers wait; return this fiber's arrival index.

        Raises:
            BrokenBarrierError: the barrier is broken, or was aborted or reset
                while the fiber waited.
        """
        return Wait("barrier.wait", self._wait)

    def _wait(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._broken:
            raise BrokenBarrierError(
                "the barrier is broken (abort() was called); call reset() before waiting again"
            )
        waiters = self._waiters
        if len(waiters) + 1 < self._parties:
            return executor.park(fiber, waiters)
        self._waiters = deque()  # the next round starts now
        for index, waiter in enumerate(waiters):
            waiter.executor.wake(waiter, index)
        return len(waiters)

    def reset(self) -> None:
        """End the current round: its waiters raise BrokenBarrierError; the barrier works again."""
        _context.loop_thread_only("Barrier.reset()")
        self._broken = False
        self._fail("the barrier was reset while this fiber waited")

    def abort(self) -> None:
        """Break the barrier: waiters and later ``wait()`` calls raise BrokenBarrierError."""
        _context.loop_thread_only("Barrier.abort()")
        self._broken = True
        self._fail("the barrier was aborted while this fiber waited")

    def _fail(self, why: str) -> None:
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            waiter.executor.wake(waiter, None, BrokenBarrierError(why))

    def __repr__(self) -> str:
        state = "broken" if self._broken else f"waiters={len(self._waiters)}/{self._parties}"
        return f"<Barrier {state}>"
