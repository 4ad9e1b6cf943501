"""``TaskGroup``: structured concurrency for async fibers, on the group of :mod:`rocket.group`.

A TaskGroup is a cancel scope (``rocket._scope``) around its body plus a
``_Group`` of children: a child's failure cancels the scope (the body) and
the siblings; ``__aexit__`` waits for every child, then raises what failed
(:func:`rocket.group.failure_of`). ``start`` is in ``rocket._start``.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from rocket._scope import CancelScope
from rocket._start import Start, TaskStatus
from rocket.errors import Cancelled
from rocket.fiber import Fiber
from rocket.group import _Group, failure_of
from rocket.request import FiberBody, Request
from rocket.sched import ExecutorRequest, call_body, check_body

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVarTuple, Unpack

    from rocket.executor import Executor

    Ts = TypeVarTuple("Ts")

__all__ = ["TaskGroup", "TaskStatus"]

R = TypeVar("R")


class _WaitChildren(ExecutorRequest[None]):
    __slots__ = ("group",)
    verb = "taskgroup.wait"

    def __init__(self, group: _Group) -> None:
        self.group = group

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        if self.group.pending == 0:
            return None
        return executor.park(fiber, self.group.waiters, self.group.waiters.abort)


class _NextDone(ExecutorRequest["Fiber[Any] | None"]):
    __slots__ = ("group",)
    verb = "taskgroup.next_done"

    def __init__(self, group: _Group) -> None:
        self.group = group

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        group = self.group
        if group.done is None:
            group.done = deque()
        if group.done:
            return group.done.popleft()
        if group.pending == 0:
            return None
        return executor.park(fiber, group.done_waiters)


class TaskGroup(CancelScope):
    """Structured concurrency for async fibers: children never outlive the block.

    ::

        async with rocket.TaskGroup() as tg:
            tg.spawn(worker, 1)                     # or tg.spawn(worker(1))
            port = await tg.start(server, 0)         # returns once it listens
            async for child in tg:                   # children as they finish
                print(child.result())
        # here every child has finished

    If a child fails, the other children and the block's body are cancelled,
    and once all have finished the failure is raised from the ``async with``:
    the child's own exception if it is the only one, else an
    ``ExceptionGroup`` of every failure (the body's error first, if it
    raised). If the body raises, the children are cancelled the same way.
    ``cancel()`` cancels the body and the children. A ``Cancelled`` from
    outside the group (its fiber cancelled, an outer scope) leaves the block
    unchanged; children that failed meanwhile are then reported on stderr.
    """

    def __init__(self) -> None:
        super().__init__()
        self._group: _Group | None = None
        self._body_done = False

    async def __aenter__(self) -> TaskGroup:
        self._open("TaskGroup")
        assert self.fiber is not None
        group = self._group = _Group(self.executor, self.fiber, first_wins=False, keep=False)
        group.on_failure = self._child_failed
        group.outcome_for_parent = False
        self._arm()
        return self

    def __enter__(self) -> TaskGroup:
        raise TypeError("TaskGroup needs 'async with'; in a generator fiber use rocket.gather()")

    def _open_group(self, op: str) -> _Group:
        if self._group is None or self._closed:
            raise RuntimeError(f"TaskGroup.{op}() needs an open group: inside 'async with'")
        return self._group

    @overload
    def spawn(self, body: FiberBody[R], *, name: str | None = None) -> Fiber[R]: ...

    @overload
    def spawn(
        self,
        body: Callable[[Unpack[Ts]], FiberBody[R]],
        *args: Unpack[Ts],
        name: str | None = None,
    ) -> Fiber[R]: ...

    def spawn(  # type: ignore[misc]  # mypy 2.4 cannot match *args: Any to Unpack[Ts]
        self, body: Any, *args: Any, name: str | None = None
    ) -> Fiber[Any]:
        """Start ``body`` as a child; returns its handle. ``spawn(func, *args)`` works too.

        Raises:
            TypeError: ``body`` is no coroutine or generator (nor a function making one).
            RuntimeError: the group is not open (outside ``async with``, or finished).
        """
        group = self._open_group("spawn")
        body = call_body(body, args, "TaskGroup.spawn")
        check_body(body, "TaskGroup.spawn")
        return group.add(body, name)

    def start(self, func: Callable[..., Any], *args: Any, name: str | None = None) -> Request[Any]:
        """Start ``func(*args, task_status=...)`` and wait until it calls ``task_status.started()``.

        ``value = await tg.start(func, *args)`` returns the value passed to
        ``started(value)``; from then on the child belongs to the group. If the
        child fails (or returns) before ``started()``, ``start`` raises its error
        (or a ``RuntimeError``) and the group is not affected (trio's
        ``nursery.start``).

        Raises:
            TypeError: ``func`` is not callable.
            RuntimeError: the group is not open.
        """
        return Start(self._open_group("start"), func, args, name)

    def next_done(self) -> Request[Fiber[Any] | None]:
        """Wait for the next child to finish; its handle, or None when no child is left.

        curio's ``next_done``; ``async for child in tg`` does the same. Children
        are reported from the first call on: the group keeps no finished child
        before anyone asks, so that a long-lived group does not grow.
        """
        return _NextDone(self._open_group("next_done"))

    def __aiter__(self) -> TaskGroup:
        return self

    async def __anext__(self) -> Fiber[Any]:
        child = await self.next_done()
        if child is None:
            raise StopAsyncIteration
        return child

    def cancel(self) -> None:
        """Cancel the body (if it still runs) and every child."""
        if self._body_done:
            self.cancel_called = True  # the fiber waits for the children: only they stop
        else:
            super().cancel()
        if self._group is not None:
            self._group.cancel_children()

    def _expire(self) -> None:
        self._timer = None
        self.cancel()

    def _child_failed(self, child: Fiber[Any]) -> None:
        if not self._body_done:
            self.cancel_fiber(f"a child of the TaskGroup failed: {child}")

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        group = self._group
        fiber = self.fiber
        assert group is not None
        assert fiber is not None
        self._body_done = True
        pending = fiber.cancel_requested
        if pending is not None and pending.scope is self:
            fiber.cancel_requested = None  # the body is over: nothing left to stop
        own = isinstance(error, Cancelled) and error.scope is self
        if error is not None and not own:
            group.cancel_children()
        try:
            await _WaitChildren(group)
        finally:
            self._close()
        if error is not None and not own and not isinstance(error, Exception):
            return False  # an outer cancel, KeyboardInterrupt...: goes on unchanged
        if own and self.caught(error):  # (raises a stronger Cancelled it interrupted)
            self.cancelled_caught = True
        errors = group.errors()
        if error is not None and not own:
            if not errors:
                return False  # the body's own error goes on
            errors.insert(0, error)
        if errors:
            raise failure_of("a TaskGroup", errors) from None
        return own
