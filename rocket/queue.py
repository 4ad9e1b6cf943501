"""``Queue``: a FIFO of items between fibers, bounded or not.

Built like the primitives in :mod:`rocket.sync`: a fiber that must wait is
parked on the queue's wait list of getters or putters, and an item (or a free
slot) is handed straight to the first waiter, so waiters are served in
arrival order. A getter cancelled after it was handed an item gets it anyway
(``Cancelled`` comes at its next request), so no item is lost.
"""

from __future__ import annotations

import queue
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rocket import _context
from rocket.request import Request
from rocket.sync import Wait, wake_first

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["Queue"]

T = TypeVar("T")


class _Put(Wait[None]):
    __slots__ = ("item",)
    item: Any


class Queue(Generic[T]):
    """A FIFO of items between fibers; ``maxsize`` > 0 bounds it (0: unbounded).

    ``put`` waits while the queue is full, ``get`` while it is empty.
    ``put_nowait``/``get_nowait`` never wait; they raise the standard
    library's ``queue.Full``/``queue.Empty`` instead.
    """

    __slots__ = ("_getters", "_items", "_putters", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(
                f"Queue() argument 'maxsize' must be an int, not {type(maxsize).__name__}"
            )
        if maxsize < 0:
            raise ValueError(
                f"Queue() argument 'maxsize' must be >= 0 (0: unbounded), got {maxsize}"
            )
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._getters: deque[Fiber[Any]] = deque()
        self._putters: deque[Fiber[Any]] = deque()  # each one's request holds its item

    def qsize(self) -> int:
        """How many items are in the queue."""
        return len(self._items)

    def empty(self) -> bool:
        """True if there is no item."""
        return not self._items

    def full(self) -> bool:
        """True if a put would wait."""
        return 0 < self.maxsize <= len(self._items)

    def put(self, item: T) -> Request[None]:
        """Add ``item``, waiting while the queue is full."""
        request = _Put("queue.put", self._put)
        request.item = item
        return request

    def _put(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        request = fiber.request
        if self._offer(request.item):
            return None
        return executor.park(fiber, self._putters)

    def _offer(self, item: T) -> bool:
        if self._getters:  # the queue is empty: hand the item over
            wake_first(self._getters, item)
            return True
        if self.full():
            return False
        self._items.append(item)
        return True

    def put_nowait(self, item: T) -> None:
        """Add ``item`` now. Raises ``queue.Full`` if the queue is full."""
        _context.loop_thread_only("Queue.put_nowait()")
        if not self._offer(item):
            raise queue.Full(f"the queue is full ({self.maxsize} items)")

    def get(self) -> Request[T]:
        """Remove and return the oldest item, waiting while the queue is empty."""
        return Wait("queue.get", self._get)

    def _get(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._items:
            return self._take()
        return executor.park(fiber, self._getters)

    def _take(self) -> T:
        item = self._items.popleft()
        if self._putters:  # a slot is free: the first waiting put goes in
            putter = self._putters[0]
            self._items.append(putter.request.item)
            wake_first(self._putters, None)
        return item

    def get_nowait(self) -> T:
        """Remove and return the oldest item now. Raises ``queue.Empty`` if there is none."""
        _context.loop_thread_only("Queue.get_nowait()")
        if not self._items:
            raise queue.Empty("the queue is empty")
        return self._take()

    def __repr__(self) -> str:
        return (
            f"<Queue items={len(self._items)} maxsize={self.maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)}>"
        )
