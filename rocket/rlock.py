"""``RLock``: a lock its owner may take again (``threading.RLock``'s meaning, for fibers).

Built like :class:`rocket.Lock`: waiters park on a FIFO wait list and the
lock is handed straight to the first of them when its owner has released it
as many times as it took it. A waiter cancelled before it was handed the lock
just leaves the list; one cancelled after gets it (and ``Cancelled`` at its
next request, so a ``with`` block releases it).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket.request import Request
from rocket.statistics import LockStatistics
from rocket.sync import Held, Wait, WouldBlock, releasing_owner

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["RLock"]


class RLock(Held):
    """A reentrant lock: its owner may acquire it again, and releases it as often."""

    __slots__ = ("_count", "_owner", "_waiters")

    def __init__(self) -> None:
        # Invariant: _count > 0 iff _owner is not None; _count is how often it took the lock.
        self._owner: Fiber[Any] | None = None
        self._count = 0
        self._waiters: deque[Fiber[Any]] = deque()

    def locked(self) -> bool:
        """True while some fiber holds the lock."""
        return self._owner is not None

    def acquire(self) -> Request[RLock]:
        """Take the lock, waiting while another fiber holds it; the result is the lock."""
        return Wait("rlock.acquire", self._acquire)

    def _acquire(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._owner is None or self._owner is fiber:
            self._owner = fiber
            self._count += 1
            return self
        return executor.park(fiber, self._waiters)

    def acquire_nowait(self) -> None:
        """Take the lock now if it is free or the calling fiber holds it.

        Raises:
            WouldBlock: another fiber holds it.
        """
        me = _context.running_fiber("RLock.acquire_nowait()")
        if self._owner is not None and self._owner is not me:
            raise WouldBlock(
                f"the lock is held by {self._owner}; wait for it with 'yield rlock.acquire()'"
            )
        self._owner = me
        self._count += 1

    def release(self) -> None:
        """Release the lock once; after as many releases as acquires, the first waiter gets it.

        Raises:
            RuntimeError: the calling fiber does not hold the lock.
        """
        releasing_owner(self._owner, "RLock.release()", "an RLock")
        self._count -= 1
        if self._count:
            return
        if self._waiters:
            fiber = self._owner = self._waiters.popleft()
            self._count = 1
            fiber.executor.wake(fiber, self)
        else:
            self._owner = None

    def statistics(self) -> LockStatistics:
        """Whether it is held, by whom, and how many fibers wait, as a snapshot."""
        return LockStatistics(self._owner is not None, self._owner, len(self._waiters))

    def __enter__(self) -> RLock:
        me = _context.running_fiber("with rlock")
        if self._owner is not me:
            raise RuntimeError("take the lock first: 'with (yield rlock.acquire()):'")
        return self

    def __repr__(self) -> str:
        return f"<RLock owner={self._owner} count={self._count} waiters={len(self._waiters)}>"
