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

__all__ = [
    "enter_loop",
    "leave_loop",
    "loop_thread_only",
    "notify_closing",
    "running_executor",
    "running_fiber",
    "swap",
]

_local = threading.local()
#: Ident of each thread a rocket loop runs in now -> how many (a guest mode
#: thread may host several); read without a lock.
_loop_threads: dict[int, int] = {}
_get_ident = threading.get_ident


def swap(executor: Executor | None) -> Executor | None:
    """Make ``executor`` this thread's running executor; return the previous one."""
    previous: Executor | None = getattr(_local, "executor", None)
    _local.executor = executor
    return previous


def enter_loop(executor: Executor) -> None:
    """A loop of ``executor`` starts in this thread (``rocket.run``, or a guest run).

    Records the thread as a loop thread (for :func:`loop_thread_only`) until the
    matching :func:`leave_loop`, also between a guest's passes, and in
    ``executor.thread`` (for the watchdog and the loop handle).
    """
    ident = executor.thread = _get_ident()
    _loop_threads[ident] = _loop_threads.get(ident, 0) + 1


def leave_loop() -> None:
    """The loop that :func:`enter_loop` recorded for this thread has ended."""
    ident = _get_ident()
    left = _loop_threads.get(ident, 0) - 1
    if left > 0:
        _loop_threads[ident] = left
    else:
        _loop_threads.pop(ident, None)


def loop_thread_only(what: str) -> None:
    """Refuse a sync primitive's method called from a thread no rocket loop runs in.

    Such a call would change the primitive behind the loop's back, and a
    fiber it wakes would wait until something else woke the loop. Outside
    every run (no loop anywhere) it is allowed: nothing can be waiting.
    Costs a set lookup: one line at the top of each such method.

    Raises:
        RuntimeError: another thread runs the loop; names the thread-safe way.
    """
    if _loop_threads and _get_ident() not in _loop_threads:
        raise RuntimeError(
            f"{what} was called from a thread that is not running rocket; rocket's "
            f"primitives belong to the loop's thread: get 'loop = yield rocket.current_loop()' "
            f"in a fiber, then call loop.call_soon_threadsafe({_bound(what)}) "
            f"from the other thread"
        )


def _bound(what: str) -> str:
    """``"Queue.put_nowait()"`` -> ``"queue.put_nowait, ..."``: what to pass on."""
    name = what.split("(")[0]
    return name[:1].lower() + name[1:] + (", ..." if name.endswith("put_nowait") else "")


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
