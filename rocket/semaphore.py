"""``Semaphore``: at most ``value`` fibers at a time hold a slot.

Built like the primitives in :mod:`rocket.sync`: a fiber that must wait is
parked on the semaphore's FIFO wait list, and a released slot is handed
straight to the first waiter. ``Semaphore(value, bounded=False)`` is the
classic counter (asyncio's ``Semaphore``, trio's without ``max_value``): any
fiber may release, and every release adds a slot.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket.request import Request
from rocket.statistics import SemaphoreStatistics
from rocket.sync import Held, Wait, WouldBlock, wake_first

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["Semaphore"]


class Semaphore(Held):
    """At most ``value`` fibers at a time hold a slot.

    The bound rule (like trio's ``CapacityLimiter``, stricter than asyncio's
    ``BoundedSemaphore``): a slot belongs to the fiber that acquired it (or
    was handed it), and only that fiber can release it. A release by a fiber
    holding no slot -- one release too many -- raises ``ValueError``, even
    when fibers are waiting, so the bound can never be exceeded. Plain
    ``with sem:`` does not acquire: write ``with (yield sem.acquire()):`` or
    ``async with sem:``.

    With ``bounded=False`` there is no bound and no ownership: any fiber may
    :meth:`release`, each release adds a slot (or lets the first waiter in),
    and ``value`` may grow past its start -- for signalling between fibers,
    e.g. ``Semaphore(0, bounded=False)``.
    """

    __slots__ = ("_bounded", "_holders", "_initial", "_value", "_waiters")

    def __init__(self, value: int = 1, *, bounded: bool = True) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"Semaphore() argument 'value' must be an int, not {type(value).__name__}"
            )
        if value < 0:
            raise ValueError(f"Semaphore() argument 'value' must be >= 0, got {value}")
        self._initial = self._value = value
        self._bounded = bool(bounded)
        self._waiters: deque[Fiber[Any]] = deque()
        # Invariant: bounded, _value + sum(_holders.values()) == _initial; unbounded,
        # _holders stays empty (nobody owns a slot, and finished fibers are not kept).
        self._holders: dict[Fiber[Any], int] = {}

    @property
    def value(self) -> int:
        """How many more fibers may acquire without waiting."""
        return self._value

    def acquire(self) -> Request[Semaphore]:
        """Wait for a free slot and take it; the result is the semaphore (for ``with``)."""
        return Wait("semaphore.acquire", self._acquire)

    def _acquire(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._value > 0:
            self._value -= 1
            if self._bounded:
                self._holders[fiber] = self._holders.get(fiber, 0) + 1
            return self
        return executor.park(fiber, self._waiters)

    def acquire_nowait(self) -> None:
        """Take a slot now if one is free.

        Raises:
            WouldBlock: no slot is free.
        """
        me = _context.running_fiber("Semaphore.acquire_nowait()")
        if self._value <= 0:
            raise WouldBlock(
                "the semaphore has no free slot; wait for one with 'yield sem.acquire()'"
            )
        self._value -= 1
        if self._bounded:
            self._holders[me] = self._holders.get(me, 0) + 1

    def locked(self) -> bool:
        """True if an acquire would wait (no slot is free)."""
        return self._value <= 0

    def statistics(self) -> SemaphoreStatistics:
        """The free slots and the waiting fibers, as a snapshot."""
        return SemaphoreStatistics(self._value, len(self._waiters))

    def release(self) -> None:
        """Free a slot the calling fiber holds; the first waiting fiber gets it.

        On an unbounded semaphore any fiber may release, and it adds a slot.

        Raises:
            ValueError: the calling fiber holds no slot (released more times
                than acquired) of a bounded semaphore.
        """
        _context.loop_thread_only("Semaphore.release()")
        if not self._bounded:
            self._hand_on()
            return
        me = _context.running_fiber("Semaphore.release()")
        held = self._holders.get(me, 0)
        if not held:
            raise ValueError(
                f"Semaphore released more times than acquired: {me} holds no slot of it; "
                "a fiber releases only the slots it acquired, e.g. with "
                "'with (yield sem.acquire()):' or 'async with sem:'"
            )
        if held == 1:
            del self._holders[me]
        else:
            self._holders[me] = held - 1
        self._hand_on()

    def _hand_on(self) -> None:
        """A slot is free: give it to the first waiter, else count it."""
        if self._waiters:
            fiber = wake_first(self._waiters, self)
            if self._bounded:
                self._holders[fiber] = self._holders.get(fiber, 0) + 1
        else:
            self._value += 1

    def __enter__(self) -> Semaphore:
        """For ``with (yield sem.acquire()):`` -- ``with sem:`` alone does not acquire.

        Raises:
            RuntimeError: the calling fiber holds no slot (checked only when
                bounded: an unbounded semaphore's slots have no owner).
        """
        me = _context.running_fiber("with sem")
        if self._bounded and me not in self._holders:
            raise RuntimeError(
                "take a slot first: 'with (yield sem.acquire()):' (or 'async with sem:'); "
                "plain 'with sem:' does not acquire"
            )
        return self

    def __repr__(self) -> str:
        bound = f"/{self._initial}" if self._bounded else " unbounded"
        return f"<Semaphore value={self._value}{bound} waiters={len(self._waiters)}>"
