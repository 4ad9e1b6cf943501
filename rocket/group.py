"""Waiting on several fibers: ``gather``, ``race`` and (in :mod:`rocket.taskgroup`) ``TaskGroup``.

::

    results = yield rocket.gather(fetch(a), fetch(b))        # in order
    index, result = yield rocket.race(rocket.recv(sock), rocket.sleep(5))

    async with rocket.TaskGroup() as tg:                       # async fibers
        tg.spawn(handler(conn))

All three are structured: they return (or raise) only once every fiber they
started has finished, so no child outlives them. The failure rule is the
same everywhere: when a child fails, the others are cancelled, and once all
have finished the failure is raised in the parent. If more than one child
of a ``gather`` or ``TaskGroup`` failed (a sibling may fail while it is being
cancelled), the parent gets one ``ExceptionGroup`` of every failure, in the
order they happened, so ``except*`` works; a single failure is raised as
itself. ``race`` raises its winner's failure. If the parent itself is
cancelled while it waits, it cancels the children, waits for them, then
raises ``Cancelled``.

Items may be generators or coroutines (started as child fibers), fiber
handles from ``spawn`` (joined, and cancelled like the others), or -- handy
for ``race`` -- single requests such as ``rocket.recv(sock)`` or
``queue.get()``, each run in a child fiber of its own.
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from rocket import ops
from rocket.errors import Cancelled
from rocket.fiber import Fiber
from rocket.request import Composite, Request
from rocket.sched import ExecutorRequest, check_body, one_request

if sys.version_info < (3, 11):  # pragma: no cover - the backport's classes
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from rocket.executor import Executor

__all__ = ["failure_of", "gather", "race"]

R = TypeVar("R")


def failure_of(what: str, errors: list[BaseException]) -> BaseException:
    """The one error to raise for ``errors``: itself if alone, else an exception group.

    ``BaseExceptionGroup(...)`` makes an ``ExceptionGroup`` when every error is
    an ``Exception``, so ``except ExceptionGroup`` and ``except*`` work.
    """
    if len(errors) == 1:
        return errors[0]
    return BaseExceptionGroup(f"{len(errors)} failures in {what}", errors)


def _check_item(item: Any, op: str) -> None:
    if isinstance(item, (Fiber, Request, Composite)):
        return
    if inspect.isgenerator(item) or inspect.iscoroutine(item):
        return
    check_body(item, op)  # raises, with a hint for a function passed uncalled


def _dispose(item: Any, result: Any) -> None:
    """Free what a losing request produced anyway (an accepted socket, an opened fd)."""
    if isinstance(item, ops.Accept) and isinstance(result, tuple):
        sock = result[0]
        if isinstance(sock, socket.socket):
            sock.close()
    elif isinstance(item, ops.Open) and isinstance(result, int):
        os.close(result)


class _ParentWaiters(deque[Any]):
    """Where the parent waits: cancelling it cancels the children first."""

    def __init__(self, group: _Group) -> None:
        super().__init__()
        self.group = group

    def abort(self, fiber: Fiber[Any], error: BaseException) -> None:
        self.group.cancel_children()  # the parent stays parked until they finish


class _Group:
    """The children of one gather, race or TaskGroup, and the parent waiting on them.

    Invariants: ``live`` holds the children that have not finished, in
    start order; each one's finish calls :meth:`finished` exactly once (the
    executor calls back the joiners of a fiber when it finishes), which
    takes it out. ``children``/``items`` keep every child of a gather or
    race (their results are the outcome); a TaskGroup (``keep`` False)
    keeps no finished child but ``failures`` (the first is ``decided``) --
    so a long-lived group (an accept loop) does not grow -- and, once
    someone asked for ``next_done``, ``done``: the finished children not
    handed out yet.
    """

    def __init__(
        self, executor: Executor, parent: Fiber[Any], first_wins: bool, keep: bool = True
    ) -> None:
        self.executor = executor
        self.parent = parent
        self.first_wins = first_wins
        self.keep = keep
        self.children: list[Fiber[Any]] = []
        self.items: list[Any] = []
        self.live: dict[Fiber[Any], None] = {}  # an ordered set
        self.decided: Fiber[Any] | None = None  # the first failure, or the race's winner
        self.failures: list[Fiber[Any]] = []  # every failed child, in finish order
        self.done: deque[Fiber[Any]] | None = None  # for next_done; made on first use
        self.done_waiters: deque[Fiber[Any]] = deque()
        self.cancelling = False  # the group cancelled its children: their Cancelled is no failure
        self.waiters = _ParentWaiters(self)
        self.on_failure: Any = None  # TaskGroup: called with the failed child
        self.outcome_for_parent = True  # False: wake the parent with None (TaskGroup decides)

    @property
    def pending(self) -> int:
        """How many children have not finished."""
        return len(self.live)

    def add(self, item: Any, name: str | None = None) -> Fiber[Any]:
        """Start (or adopt) one child and watch it."""
        if isinstance(item, Fiber):
            child = item
        elif isinstance(item, (Request, Composite)):  # a Composite runs (is taken) in the child
            child = self.executor.start(one_request(item), name or repr(item))
        else:
            child = self.executor.start(item, name)
        if self.keep:
            self.children.append(child)
            self.items.append(item)
        if child.done():
            self.finished(child)
        else:
            self.live[child] = None
            if child.joiners is None:
                child.joiners = deque()
            child.joiners.append(self.finished)
            if self.decided is not None:
                self.executor.cancel(child)
        return child

    def finished(self, child: Fiber[Any]) -> None:
        self.live.pop(child, None)
        error = child._error  # read without marking it retrieved
        failed = error is not None and not (self.cancelling and isinstance(error, Cancelled))
        if failed:
            self.failures.append(child)
        if self.done_waiters:
            self.executor.wake(self.done_waiters.popleft(), child)
        elif self.done is not None:
            self.done.append(child)
        if self.decided is None and (failed or self.first_wins):
            self.decided = child
            self.cancel_children()
            if failed and self.on_failure is not None:
                self.on_failure(child)
        elif self.first_wins and not failed:
            _dispose(self.items[self.children.index(child)], child._result)
        if not self.live and self.done_waiters:  # next_done: no child left to wait for
            while self.done_waiters:
                self.executor.wake(self.done_waiters.popleft(), None)
        if not self.live and self.waiters:
            self.waiters.popleft()
            if self.outcome_for_parent:
                self.executor.wake(self.parent, *self.outcome())
            else:
                cancelled = self.parent.cancel_requested is not None
                self.executor.wake(self.parent, None, Cancelled() if cancelled else None)

    def cancel_children(self) -> None:
        self.cancelling = True
        for child in list(self.live):
            self.executor.cancel(child)

    def errors(self) -> list[BaseException]:
        """The failed children's errors, in finish order (marks them retrieved)."""
        return [error for child in self.failures if (error := child.exception()) is not None]

    def outcome(self) -> tuple[Any, BaseException | None]:
        """``(value, error)`` for the parent once every child has finished."""
        if self.parent.cancel_requested is not None:
            return None, Cancelled()  # the executor throws the parent's own Cancelled
        decided = self.decided
        if decided is not None:
            if self.first_wins:
                error = decided.exception()
                if error is not None:
                    return None, error
                return (self.children.index(decided), decided.result()), None
            return None, failure_of("gather()", self.errors())
        return [child.result() for child in self.children], None


class _Gather(ExecutorRequest[Any]):
    __slots__ = ("first_wins", "items", "verb")

    def __init__(self, items: tuple[Any, ...], first_wins: bool) -> None:
        self.verb = "race" if first_wins else "gather"
        if first_wins and not items:
            raise ValueError("race() needs at least one request or fiber")
        for item in items:
            _check_item(item, self.verb)
        self.items: tuple[Any, ...] | None = items
        self.first_wins = first_wins

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        items = self.items
        if items is None:
            raise RuntimeError(f"a {self.verb}() request can be yielded only once")
        self.items = None  # the generators in it are now running
        group = _Group(executor, fiber, self.first_wins)
        for item in items:
            group.add(item)
        if group.pending == 0:
            value, error = group.outcome()
            if error is not None:
                raise error
            return value
        return executor.park(fiber, group.waiters, group.waiters.abort)

    def describe(self) -> str:
        return f"{self.verb}({len(self.items or ())} items)"


def gather(*items: Any) -> Request[list[Any]]:
    """Run the items concurrently; the result is the list of their results, in order.

    If one fails, the others are cancelled, and its error is raised once all
    have finished.

    Raises:
        TypeError: an item is not a generator, coroutine, fiber handle or request.
    """
    return _Gather(items, first_wins=False)


def race(*items: Any) -> Request[tuple[int, Any]]:
    """The first item to finish wins: the result is ``(its index, its result)``.

    The others are cancelled, and the race returns once they have finished. If
    the first to finish failed, its error is raised. A loser that completed
    anyway, before its cancel landed, has its result discarded -- except that
    a socket from ``accept`` or an fd from ``open`` is closed, never leaked.

    Raises:
        TypeError: an item is not a generator, coroutine, fiber handle or request.
        ValueError: no items.
    """
    return _Gather(items, first_wins=True)
