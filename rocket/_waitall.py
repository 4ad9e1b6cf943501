"""``rocket.testing.wait_all_blocked``: wait until every other fiber waits (trio's
``wait_all_tasks_blocked``).

After ``yield wait_all_blocked()`` each fiber the test started has run up to
its next wait -- parked on a primitive or blocked on the engine -- so a test
can check what the code under test did without sleeping. It works on every
engine, :class:`rocket.testing.VirtualEngine` included (the virtual clock does
not move). Re-exported by :mod:`rocket.testing`, where tests import it from.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from rocket.request import Composite, Request
from rocket.sched import WAIT, ExecutorRequest

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["wait_all_blocked"]


class _Quiet(ExecutorRequest[bool]):
    """True at once if no other fiber is runnable; else go to the back of the queue (False)."""

    __slots__ = ()
    verb = "wait_all_blocked"

    def describe(self) -> str:
        return "wait_all_blocked()"

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        runnable = executor.runnable
        for other, value, error in runnable:
            # Another fiber waiting for quiet counts as waiting (else two would spin forever).
            if not (
                other.request.__class__ is _Quiet
                and value is False
                and error is None
                and other.cancel_requested is None
            ):
                runnable.append((fiber, False, None))
                return WAIT
        return True


_QUIET = _Quiet()


def wait_all_blocked() -> Composite[None]:
    """Return once every other fiber is waiting: parked or blocked, none runnable.

    trio's ``wait_all_tasks_blocked``, for deterministic tests of your own
    fibers: after ``yield wait_all_blocked()`` each fiber you started has
    run up to its next wait (a lock, a queue, I/O, a sleep). A fiber blocked
    on the engine counts as waiting even if its I/O is about to complete.
    Other fibers inside ``wait_all_blocked()`` count as waiting too. It
    waits as long as some fiber stays runnable (one that loops on
    ``yield_now()`` keeps it waiting).
    """
    return Composite("wait_all_blocked", _wait_all_blocked())


def _wait_all_blocked() -> Generator[Request[Any], Any, None]:
    while not (yield _QUIET):
        pass
