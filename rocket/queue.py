"""``Queue``, ``LifoQueue``, ``PriorityQueue``: items between fibers, bounded or not.

Built like the primitives in :mod:`rocket.sync`: a fiber that must wait is
parked on the queue's wait list of getters or putters, and an item (or a free
slot) is handed straight to the first waiter, so waiters are served in
arrival order. A getter cancelled after it was handed an item gets it anyway
(``Cancelled`` comes at its next request), so no item is lost.

The bound (asyncio's and curio's rule): in a bounded queue, an item handed to
a waiting getter stays counted in ``qsize()`` until that getter runs and
takes it, as if it were still in the queue. A getter that waits on a bounded
queue therefore resumes in a small nested call of its own
(:meth:`Queue._wait_item`) that takes the item off the count and lets the
next waiting putter in. A get that finds an item, and a get on an unbounded
queue (no bound to count against), cost no more than a plain park.

``task_done()``/``join()`` and ``shutdown()`` mean what they mean in asyncio
(3.13): ``join`` waits until every item put was marked done; after
``shutdown()`` puts raise :class:`QueueShutDown`, gets return what is left and
then raise it, and ``shutdown(immediate=True)`` drops the items left.
"""

from __future__ import annotations

import heapq
import queue
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rocket import _context
from rocket.request import Request
from rocket.sched import Park
from rocket.statistics import QueueStatistics
from rocket.sync import Wait, wake_first

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["LifoQueue", "PriorityQueue", "Queue", "QueueShutDown"]

T = TypeVar("T")


class QueueShutDown(Exception):
    """Raised by a put, and by a get on an empty queue, once the queue was shut down."""


class _Put(Wait[None]):
    __slots__ = ("item",)
    item: Any


class Queue(Generic[T]):
    """A FIFO of items between fibers; ``maxsize`` > 0 bounds it (0: unbounded).

    ``put`` waits while the queue is full, ``get`` while it is empty.
    ``put_nowait``/``get_nowait`` never wait; they raise the standard
    library's ``queue.Full``/``queue.Empty`` instead.
    """

    __slots__ = (
        "__weakref__",
        "_getters",
        "_handed",
        "_items",
        "_joiners",
        "_park",
        "_putters",
        "_shutdown",
        "_unfinished",
        "maxsize",
    )

    def __init__(self, maxsize: int = 0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(
                f"{type(self).__name__}() argument 'maxsize' must be an int, "
                f"not {type(maxsize).__name__}"
            )
        if maxsize < 0:
            raise ValueError(
                f"{type(self).__name__}() argument 'maxsize' must be >= 0 (0: unbounded), "
                f"got {maxsize}"
            )
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._getters: deque[Fiber[Any]] = deque()
        self._putters: deque[Fiber[Any]] = deque()  # each one's request holds its item
        self._joiners: deque[Fiber[Any]] = deque()
        self._park = Park(self._getters, "queue.get")  # the request of every waiting get
        # Invariant: _handed counts items given to woken getters parked in _wait_item
        # that have not taken them yet; qsize() == self._count() + _handed.
        self._handed = 0
        self._unfinished = 0  # items put and not yet marked done
        self._shutdown = False

    # The container: LifoQueue and PriorityQueue change these three.

    def _push(self, item: T) -> None:
        self._items.append(item)

    def _pop(self) -> T:
        return self._items.popleft()

    def _count(self) -> int:
        return len(self._items)

    # ------------------------------------------------------------ state

    def qsize(self) -> int:
        """Items in the queue (if bounded, with those handed to getters that have not run)."""
        return self._count() + self._handed

    def empty(self) -> bool:
        """True if there is no item."""
        return not self.qsize()

    def full(self) -> bool:
        """True if a put would wait."""
        return 0 < self.maxsize <= self._count() + self._handed

    def statistics(self) -> QueueStatistics:
        """Size, bound, unfinished items and waiting fibers, as a snapshot."""
        return QueueStatistics(
            self.qsize(), self.maxsize, self._unfinished, len(self._getters), len(self._putters)
        )

    # -------------------------------------------------------------- put

    def put(self, item: T) -> Request[None]:
        """Add ``item``, waiting while the queue is full.

        Raises:
            QueueShutDown: the queue was shut down (before or while waiting).
        """
        request = _Put("queue.put", self._put)
        request.item = item
        return request

    def _put(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._shutdown:
            raise self._shut("put")
        if self.full():
            return executor.park(fiber, self._putters)
        self._store(fiber.request.item)
        return None

    def put_nowait(self, item: T) -> None:
        """Add ``item`` now.

        Raises:
            queue.Full: the queue is full.
            QueueShutDown: the queue was shut down.
        """
        _context.loop_thread_only("Queue.put_nowait()")
        if self._shutdown:
            raise self._shut("put_nowait")
        if self.full():
            raise queue.Full(f"the queue is full ({self.maxsize} items)")
        self._store(item)

    def _store(self, item: T) -> None:
        """Take ``item`` in (room was checked): to the first waiting getter, else the queue."""
        self._unfinished += 1
        if self._getters:  # the queue is empty: hand the item over
            if wake_first(self._getters, item).request is self._park:
                self._handed += 1  # it counts until the getter runs (_wait_item)
        else:
            self._push(item)

    def _admit(self) -> None:
        """Let waiting putters in while there is room (each item goes in, each putter runs)."""
        putters = self._putters
        while putters and not self.full():
            putter = putters[0]
            self._store(putter.request.item)
            wake_first(putters, None)

    # -------------------------------------------------------------- get

    def get(self) -> Request[T]:
        """Remove and return the next item, waiting while the queue is empty.

        Raises:
            QueueShutDown: the queue was shut down and is empty.
        """
        return Wait("queue.get", self._get)

    def _get(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._count():
            item = self._pop()
            if self._putters:
                self._admit()
            return item
        if self._shutdown:
            raise self._shut("get")
        if self.maxsize:  # the handed item must count against the bound until we run
            return executor.nest(fiber, self._wait_item())
        return executor.park(fiber, self._getters)

    def _wait_item(self) -> Generator[Request[Any], Any, T]:
        """Park until handed an item; then take it off the count and admit a putter (bounded)."""
        item: T = yield self._park
        self._handed -= 1
        if self._putters:
            self._admit()
        return item

    def get_nowait(self) -> T:
        """Remove and return the next item now.

        Raises:
            queue.Empty: there is none.
            QueueShutDown: there is none and the queue was shut down.
        """
        _context.loop_thread_only("Queue.get_nowait()")
        if not self._count():
            if self._shutdown:
                raise self._shut("get_nowait")
            raise queue.Empty("the queue is empty")
        item = self._pop()
        if self._putters:
            self._admit()
        return item

    # ------------------------------------------------------ task_done / join

    def task_done(self) -> None:
        """Mark one item taken with ``get`` as processed (for :meth:`join`).

        Raises:
            ValueError: called more times than items were put.
        """
        _context.loop_thread_only("Queue.task_done()")
        if self._unfinished <= 0:
            raise ValueError(
                "Queue.task_done() called more times than items were put; call it once "
                "per item taken with get(), after processing it"
            )
        self._unfinished -= 1
        if not self._unfinished:
            while self._joiners:
                wake_first(self._joiners, None)

    def join(self) -> Request[None]:
        """Wait until every item put has been marked done with :meth:`task_done`."""
        return Wait("queue.join", self._join)

    def _join(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        return executor.park(fiber, self._joiners) if self._unfinished else None

    # --------------------------------------------------------- shutdown

    def shutdown(self, immediate: bool = False) -> None:
        """Refuse further puts; waiting puts and gets raise :class:`QueueShutDown`.

        Gets return the items left and then raise it too. With
        ``immediate=True`` the items left are dropped (and count as done for
        :meth:`join`); items already handed to a waiting getter are its own.
        """
        _context.loop_thread_only("Queue.shutdown()")
        self._shutdown = True
        if immediate:
            dropped = self._count()
            self._clear()
            self._unfinished = max(0, self._unfinished - dropped)
            if not self._unfinished:
                while self._joiners:
                    wake_first(self._joiners, None)
        for waiters, verb in ((self._getters, "get"), (self._putters, "put")):
            while waiters:
                fiber = waiters.popleft()
                fiber.executor.wake(fiber, None, self._shut(verb))

    def _clear(self) -> None:
        self._items.clear()

    def _shut(self, verb: str) -> QueueShutDown:
        name = type(self).__name__
        if verb.startswith("put"):
            return QueueShutDown(
                f"{verb}: the {name} is shut down (shutdown() was called), so it takes no "
                "more items; stop producing once shutdown() is called"
            )
        return QueueShutDown(
            f"{verb}: the {name} is shut down and empty; a consumer should stop when "
            "get() raises QueueShutDown"
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} items={self.qsize()} maxsize={self.maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)}"
            f"{' shut down' if self._shutdown else ''}>"
        )


class LifoQueue(Queue[T]):
    """A :class:`Queue` whose ``get`` returns the item put last."""

    __slots__ = ()

    def _pop(self) -> T:
        return self._items.pop()


class PriorityQueue(Queue[T]):
    """A :class:`Queue` whose ``get`` returns the smallest item (``heapq`` order).

    Put ``(priority, item)`` tuples, as with asyncio's ``PriorityQueue``.
    """

    __slots__ = ("_heap",)

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._heap: list[Any] = []  # heapq wants comparable items; T is not bounded

    def _push(self, item: T) -> None:
        heapq.heappush(self._heap, item)

    def _pop(self) -> T:
        item: T = heapq.heappop(self._heap)
        return item

    def _count(self) -> int:
        return len(self._heap)

    def _clear(self) -> None:
        self._heap.clear()
