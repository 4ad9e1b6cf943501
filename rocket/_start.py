"""``TaskGroup.start``: start a child and wait until it says it is ready (trio's ``nursery.start``).

::

    async def serve(port, *, task_status):
        listener = ...                       # bind, listen
        task_status.started(listener.port)   # start() returns this in the parent
        ...                                  # serve on, as a child of the group

    async with rocket.TaskGroup() as tg:
        port = await tg.start(serve, 0)

Until ``started()`` the child belongs to the fiber that called ``start``,
not to the group: if it fails (or returns) first, ``start`` raises its error
(or a ``RuntimeError``) and the group never sees it; if the starting fiber is
cancelled, it cancels the child and raises ``Cancelled`` once the child has
finished. ``started()`` hands the child to the group (it may then be
cancelled like its siblings) and wakes the starting fiber with the value.

Invariant: the starting fiber waits in ``waiters`` until ``started()`` (if
the starter was not cancelled) or the child's end wakes it; until then the
child's joiners hold :meth:`TaskStatus._finished`. ``settled`` is True once
``started()`` was called or the child ended.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rocket.errors import Cancelled
from rocket.sched import ExecutorRequest

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber
    from rocket.group import _Group

__all__ = ["Start", "TaskStatus"]


class TaskStatus:
    """What ``tg.start(func)`` passes to ``func`` as ``task_status``: call :meth:`started`."""

    __slots__ = ("_aborted", "_child", "_executor", "_group", "_starter", "settled", "waiters")

    def __init__(self, executor: Executor, group: _Group, starter: Fiber[Any]) -> None:
        self._executor = executor
        self._group = group
        self._starter = starter
        self._child: Fiber[Any] | None = None
        self.settled = False
        self._aborted = False  # the starter was cancelled while it waited
        self.waiters: deque[Fiber[Any]] = deque()

    def started(self, value: Any = None) -> None:
        """Say the child is ready: ``start()`` returns ``value``; the group owns the child.

        Raises:
            RuntimeError: called a second time.
        """
        if self.settled:
            raise RuntimeError("task_status.started() was already called; call it once")
        self.settled = True
        if self._aborted:
            return  # the starter was cancelled: it waits for the child's end instead
        child = self._child
        assert child is not None
        assert child.joiners is not None
        child.joiners.remove(self._finished)
        self._group.add(child)
        self.waiters.popleft()
        self._executor.wake(self._starter, value)

    def _finished(self, child: Fiber[Any]) -> None:
        """The child ended before ``started()``: wake the starter with why."""
        self.settled = True
        error = child.exception()
        self.waiters.popleft()
        if error is None or isinstance(error, Cancelled):
            if self._starter.cancel_requested is not None:
                error = Cancelled()  # the executor throws the starter's own
            elif error is None:
                error = RuntimeError(
                    f"{child.name} returned without calling task_status.started(); "
                    f"call task_status.started(value) once it is ready, or use spawn()"
                )
        self._executor.wake(self._starter, None, error)

    def _abort(self, starter: Fiber[Any], error: BaseException) -> None:
        """The starter was cancelled: cancel the child; the starter waits for its end."""
        assert self._child is not None
        self._aborted = True
        self._executor.cancel(self._child)


class Start(ExecutorRequest[Any]):
    """The request ``tg.start(func, *args)`` returns; see the module docstring."""

    __slots__ = ("args", "func", "group", "name")
    verb = "taskgroup.start"

    def __init__(
        self, group: _Group, func: Callable[..., Any], args: tuple[Any, ...], name: str | None
    ) -> None:
        if not callable(func):
            raise TypeError(
                f"TaskGroup.start() expects a function taking task_status, such as "
                f"start(serve, port), not {type(func).__name__} {func!r:.60}"
            )
        self.group = group
        self.func = func
        self.args = args
        self.name = name

    def describe(self) -> str:
        return f"taskgroup.start({getattr(self.func, '__qualname__', '?')})"

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        status = TaskStatus(executor, self.group, fiber)
        child = executor.start(self.func(*self.args, task_status=status), self.name)
        status._child = child
        if child.joiners is None:
            child.joiners = deque()
        child.joiners.append(status._finished)
        return executor.park(fiber, status.waiters, status._abort)
