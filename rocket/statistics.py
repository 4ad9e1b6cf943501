"""What ``statistics()`` of each synchronization primitive returns (trio's ``*Statistics``).

A snapshot for debugging and tests: the numbers are taken when
``statistics()`` is called and do not change afterwards::

    stats = lock.statistics()
    print(stats.locked, stats.owner, stats.fibers_waiting)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rocket.fiber import Fiber

__all__ = [
    "CapacityLimiterStatistics",
    "ConditionStatistics",
    "EventStatistics",
    "LockStatistics",
    "QueueStatistics",
    "SemaphoreStatistics",
]


@dataclass(frozen=True, slots=True)
class EventStatistics:
    """``Event.statistics()``: how many fibers wait for the flag."""

    fibers_waiting: int


@dataclass(frozen=True, slots=True)
class LockStatistics:
    """``Lock.statistics()`` and ``RLock.statistics()``."""

    #: True while a fiber holds the lock.
    locked: bool
    #: The fiber holding it, or None.
    owner: Fiber[Any] | None
    #: How many fibers wait to take it.
    fibers_waiting: int


@dataclass(frozen=True, slots=True)
class SemaphoreStatistics:
    """``Semaphore.statistics()``."""

    #: How many more fibers may acquire without waiting.
    value: int
    #: How many fibers wait for a slot.
    fibers_waiting: int


@dataclass(frozen=True, slots=True)
class ConditionStatistics:
    """``Condition.statistics()``: its waiters and its lock's statistics."""

    fibers_waiting: int
    lock: LockStatistics


@dataclass(frozen=True, slots=True)
class CapacityLimiterStatistics:
    """``CapacityLimiter.statistics()`` (trio's fields, with fibers for tasks)."""

    borrowed_tokens: int
    total_tokens: int | float
    #: Who holds the tokens: fibers, or the objects given to ``acquire_on_behalf_of``.
    borrowers: list[object]
    fibers_waiting: int


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """``Queue.statistics()`` (and of LifoQueue, PriorityQueue)."""

    #: Items in the queue, counting those handed to getters that have not run yet.
    qsize: int
    #: The bound (0: unbounded).
    maxsize: int
    #: Items put and not yet marked done with ``task_done()``.
    unfinished: int
    getters_waiting: int
    putters_waiting: int
