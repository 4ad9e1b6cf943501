"""Synchronization between fibers: Event, Lock, Condition (Semaphore and Queue: their own modules).

No kernel is involved: a fiber that must wait is parked on the primitive's
wait list (``executor.park``) and woken by whoever changes the state.
Generator fibers yield the requests, async fibers await them::

    yield event.wait()              await event.wait()
    item = yield queue.get()        item = await queue.get()
    with (yield lock.acquire()):    async with lock:
        ...                             ...

Fairness: every wait list is FIFO, and a released lock, semaphore slot or
queue slot is handed straight to the first waiter (no barging), so waiters
are served in arrival order.

Cancellation (see ``docs/cancellation.md``): a fiber cancelled while it
waits here leaves the wait list and gets ``Cancelled``; it took nothing. If
it was cancelled after it was handed the lock, slot or item but before it
ran, it gets them anyway and ``Cancelled`` is raised at its next request, so
nothing is lost (a ``with`` block then releases the lock). A fiber cancelled
in ``Condition.wait`` re-takes the lock before ``Cancelled`` is raised; if it
had been notified, the notify passes to the next waiter, so none is lost.

The primitives belong to one ``rocket.run`` (one thread) and are not
thread-safe: called from another thread during a run, their methods raise
RuntimeError; another thread calls ``loop.call_soon_threadsafe(event.set)``
(see :mod:`rocket.loop_handle`).
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from rocket import _context
from rocket.request import Composite, Request
from rocket.sched import ExecutorRequest
from rocket.statistics import ConditionStatistics, EventStatistics, LockStatistics

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = [
    "Condition",
    "Event",
    "Held",
    "Lock",
    "Wait",
    "WouldBlock",
    "releasing_owner",
    "wake_first",
]

T = TypeVar("T")
_Waiters = deque  # a FIFO of parked fibers


class WouldBlock(Exception):
    """Raised by ``acquire_nowait()`` when the call would have to wait."""


def wake_first(waiters: deque[Fiber[Any]], value: Any) -> Fiber[Any]:
    """Wake the fiber that has waited longest with ``value``; returns it."""
    fiber = waiters.popleft()
    fiber.executor.wake(fiber, value)
    return fiber


class Wait(ExecutorRequest[T]):
    """A request on a primitive; its ``handle`` is the primitive's method."""

    __slots__ = ("_handle", "verb")

    def __init__(self, verb: str, handle: Callable[[Executor, Fiber[Any]], Any]) -> None:
        self.verb = verb
        self._handle = handle

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        return self._handle(executor, fiber)


# ------------------------------------------------------------------ Event


class Event:
    """A flag fibers can wait for: ``set`` wakes every waiter, ``clear`` resets it."""

    __slots__ = ("__weakref__", "_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: deque[Fiber[Any]] = _Waiters()

    def is_set(self) -> bool:
        """True between :meth:`set` and :meth:`clear`."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiting fiber, in arrival order."""
        _context.loop_thread_only("Event.set()")
        if not self._flag:
            self._flag = True
            while self._waiters:
                wake_first(self._waiters, None)

    def clear(self) -> None:
        """Reset the flag; later :meth:`wait` calls wait again."""
        _context.loop_thread_only("Event.clear()")
        self._flag = False

    def wait(self) -> Request[None]:
        """Wait until the flag is set (at once if it is)."""
        return Wait("event.wait", self._wait)

    def _wait(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        return None if self._flag else executor.park(fiber, self._waiters)

    def statistics(self) -> EventStatistics:
        """How many fibers wait, as a snapshot."""
        return EventStatistics(len(self._waiters))

    def __repr__(self) -> str:
        return f"<Event set={self._flag} waiters={len(self._waiters)}>"


def releasing_owner(owner: Fiber[Any] | None, what: str, kind: str) -> Fiber[Any]:
    """The fiber calling ``what``, which must be the lock's ``owner`` (Lock, RLock).

    Raises:
        RuntimeError: called from a foreign thread, outside a fiber, or by a
            fiber that does not hold the lock.
    """
    _context.loop_thread_only(what)
    me = _context.running_fiber(what)
    if owner is not me:
        held = "nobody" if owner is None else str(owner)
        raise RuntimeError(f"{me} cannot release {kind} held by {held}")
    return me


class Held:
    """``with (yield x.acquire()):`` and ``async with x:`` for Lock, Semaphore, Condition..."""

    __slots__ = ("__weakref__",)  # every primitive can be weakly referenced

    def acquire(self) -> Request[Any]:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self: _H) -> _H:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


_H = TypeVar("_H", bound=Held)


# ------------------------------------------------------------------- Lock


class _LockWaiters(deque[Any]):
    """The lock's wait list: a cancelled fiber leaves it at once, except one
    back from ``Condition.wait``, which first re-takes the lock (see
    :meth:`Lock._release`) -- and passes on the notify it will not use."""

    def abort(self, fiber: Fiber[Any], error: BaseException) -> None:
        request = fiber.request
        if isinstance(request, _CondWait):
            request.cond._notify_lost(fiber)
        else:
            self.remove(fiber)
            fiber.executor.wake(fiber, None, error)


class Lock(Held):
    """Mutual exclusion between fibers; only the fiber holding it may release it."""

    __slots__ = ("_owner", "_waiters")

    def __init__(self) -> None:
        self._owner: Fiber[Any] | None = None
        self._waiters = _LockWaiters()

    def locked(self) -> bool:
        """True while some fiber holds the lock."""
        return self._owner is not None

    def acquire(self) -> Request[Lock]:
        """Wait for the lock and take it; the result is the lock (for ``with``)."""
        return Wait("lock.acquire", self._acquire)

    def _acquire(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self._owner is None:
            self._owner = fiber
            return self
        if self._owner is fiber:
            raise RuntimeError(f"{fiber} already holds this lock (rocket locks are not reentrant)")
        return executor.park(fiber, self._waiters, self._waiters.abort)

    def acquire_nowait(self) -> None:
        """Take the lock now if it is free.

        Raises:
            WouldBlock: another fiber holds it (or waits for it).
            RuntimeError: the calling fiber holds it already.
        """
        me = _context.running_fiber("Lock.acquire_nowait()")
        if self._owner is None:
            self._owner = me
        elif self._owner is me:
            raise RuntimeError(f"{me} already holds this lock (rocket locks are not reentrant)")
        else:
            raise WouldBlock(
                f"the lock is held by {self._owner}; wait for it with 'yield lock.acquire()'"
            )

    def statistics(self) -> LockStatistics:
        """Whether it is held, by whom, and how many fibers wait, as a snapshot."""
        return LockStatistics(self._owner is not None, self._owner, len(self._waiters))

    def release(self) -> None:
        """Release the lock; the first waiting fiber gets it.

        Raises:
            RuntimeError: the calling fiber does not hold the lock.
        """
        releasing_owner(self._owner, "Lock.release()", "a lock")
        self._release()

    def _release(self) -> None:
        waiters = self._waiters
        if not waiters:
            self._owner = None
            return
        fiber = self._owner = waiters.popleft()
        if fiber.cancel_requested is not None:  # cancelled in Condition.wait: raise it now
            fiber.executor.wake(fiber, None, fiber.cancel_requested)
        else:
            fiber.executor.wake(fiber, self)

    def _take_back(self, fiber: Fiber[Any]) -> None:
        """Give the lock back to ``fiber`` (parked, from Condition.wait) when it is free."""
        if self._owner is None:
            self._owner = fiber
            error = fiber.cancel_requested
            fiber.executor.wake(fiber, None if error else self, error)
        else:
            fiber.waitlist = self._waiters
            fiber.abort = self._waiters.abort
            self._waiters.append(fiber)

    def __enter__(self) -> Lock:
        me = _context.running_fiber("with lock")
        if self._owner is not me:
            raise RuntimeError("take the lock first: 'with (yield lock.acquire()):'")
        return self

    def __repr__(self) -> str:
        return f"<Lock owner={self._owner} waiters={len(self._waiters)}>"


# -------------------------------------------------------------- Condition


class _CondWait(Wait[None]):
    __slots__ = ("cond",)
    cond: Condition


class _CondWaiters(deque[Any]):
    """A cancelled waiter leaves the condition but re-takes the lock before it raises."""

    def __init__(self, lock: Lock) -> None:
        super().__init__()
        self.lock = lock

    def abort(self, fiber: Fiber[Any], error: BaseException) -> None:
        self.remove(fiber)
        self.lock._take_back(fiber)


class Condition(Held):
    """Wait until notified, holding ``lock`` (a new :class:`Lock` by default) around it.

    ``yield cond.wait()`` releases the lock, waits for :meth:`notify`, and
    takes the lock back before it returns (or raises ``Cancelled``).
    """

    __slots__ = ("_notified", "_waiters", "lock")

    def __init__(self, lock: Lock | None = None) -> None:
        if lock is not None and not isinstance(lock, Lock):
            raise TypeError(
                f"Condition() argument 'lock' must be a rocket.Lock, not {type(lock).__name__}"
            )
        self.lock = lock if lock is not None else Lock()
        self._waiters = _CondWaiters(self.lock)
        # Invariant: _notified holds the fibers notified and not yet given the
        # lock back (stale entries go at the fiber's next wait, or with it).
        self._notified: weakref.WeakSet[Fiber[Any]] = weakref.WeakSet()

    def acquire(self) -> Request[Lock]:
        """Take the condition's lock (``with (yield cond.acquire()):``)."""
        return self.lock.acquire()

    def release(self) -> None:
        """Release the condition's lock."""
        self.lock.release()

    def acquire_nowait(self) -> None:
        """Take the condition's lock now if it is free (see :meth:`Lock.acquire_nowait`)."""
        self.lock.acquire_nowait()

    def locked(self) -> bool:
        """True while some fiber holds the condition's lock."""
        return self.lock.locked()

    def statistics(self) -> ConditionStatistics:
        """How many fibers wait for a notify, and the lock's statistics, as a snapshot."""
        return ConditionStatistics(len(self._waiters), self.lock.statistics())

    def wait(self) -> Request[None]:
        """Release the lock, wait for a notify, take the lock back.

        Raises:
            RuntimeError: the calling fiber does not hold the lock.
        """
        request = _CondWait("condition.wait", self._wait)
        request.cond = self
        return request

    def _wait(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self.lock._owner is not fiber:
            raise RuntimeError("Condition.wait() needs the lock: 'with (yield cond.acquire()):'")
        self._notified.discard(fiber)
        self.lock._release()
        return executor.park(fiber, self._waiters, self._waiters.abort)

    def _notify_lost(self, fiber: Fiber[Any]) -> None:
        """``fiber`` was cancelled while waiting for the lock back: pass its notify on.

        Otherwise a notify meant for one waiter would wake none (asyncio
        passes it on too). A fiber cancelled before it was notified had no
        notify to pass.
        """
        if fiber in self._notified:
            self._notified.discard(fiber)
            if self._waiters:
                self._hand_notify(self._waiters.popleft())

    def _hand_notify(self, fiber: Fiber[Any]) -> None:
        self._notified.add(fiber)
        self.lock._take_back(fiber)

    def wait_for(self, predicate: Callable[[], T]) -> Composite[T]:
        """Wait until ``predicate()`` is true; use with ``yield from`` or ``await``."""
        return Composite("wait_for", self._wait_for(predicate))

    def _wait_for(self, predicate: Callable[[], T]) -> Generator[Request[Any], Any, T]:
        result = predicate()
        while not result:
            yield self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters; each takes the lock after the notifier releases it.

        Raises:
            RuntimeError: the calling fiber does not hold the lock.
        """
        _context.loop_thread_only("Condition.notify()")
        if self.lock._owner is not _context.running_fiber("Condition.notify()"):
            raise RuntimeError("Condition.notify() needs the lock: 'with (yield cond.acquire()):'")
        waiters = self._waiters
        for _ in range(min(n, len(waiters))):
            self._hand_notify(waiters.popleft())

    def notify_all(self) -> None:
        """Wake every waiter."""
        self.notify(len(self._waiters))

    def __enter__(self) -> Condition:
        self.lock.__enter__()
        return self

    def __repr__(self) -> str:
        return f"<Condition {self.lock!r} waiters={len(self._waiters)}>"
