"""Which executor runs in this thread, and which fiber it is stepping.

Lets plain ``with`` blocks (``fail_after``, ``move_on_after``) and methods
such as ``Lock.release`` find the calling fiber without a request: the
executor records the fiber it is stepping in ``executor.running``, and
:meth:`~rocket.executor.Executor.run` records itself here for its thread.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["notify_closing", "running_executor", "running_fiber", "swap"]

_local = threading.local()


def swap(executor: Executor | None) -> Executor | None:
    """Make ``executor`` this thread's running executor; return the previous one."""
    previous: Executor | None = getattr(_local, "executor", None)
    _local.executor = executor
    return previous


def running_executor(what: str) -> Executor:
    """This thread's running executor.

    Raises:
        RuntimeError: no rocket.run() is running in this thread.
    """
    executor: Executor | None = getattr(_local, "executor", None)
    if executor is None:
        raise RuntimeError(f"{what} must be used inside a rocket fiber (within rocket.run)")
    return executor


def running_fiber(what: str) -> Fiber[Any]:
    """The fiber being stepped in this thread.

    Raises:
        RuntimeError: called outside a fiber.
    """
    fiber = running_executor(what).running
    if fiber is None:
        raise RuntimeError(f"{what} must be used inside a rocket fiber (within rocket.run)")
    return fiber


def notify_closing(fd: int) -> None:
    """Tell the running engine that ``fd`` is about to close: its waiters fail (EBADF) first.

    Outside ``rocket.run`` no request can be waiting, so there is nothing to do.
    """
    try:
        engine = running_executor("close").engine
    except RuntimeError:
        return
    notify = getattr(engine, "notify_closing", None)
    if notify is not None:
        notify(fd)
