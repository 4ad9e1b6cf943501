"""Introspection: what every fiber is doing, for diagnosing a hung program.

``infos = yield rocket.snapshot()`` gives one :class:`FiberInfo` per live
fiber; :func:`format_snapshot` turns them into a table. With
``rocket.run(main(), dump_signal=signal.SIGUSR1)``, ``kill -USR1 <pid>``
prints that table to stderr (see :mod:`rocket.signals`), e.g.::

    rocket: 4 fibers
       id  name      state     waiting  deadline  request
        1  main      parked      2.31s         -  join(fiber=2)
        2  server    blocked     2.31s     0.69s  accept(fd=3)
        3  handler   blocked     0.02s         -  recv(fd=7) in Stream.readline < handler
        4  worker    running         -         -  -  at worker.py:17

Each row ends with the line the fiber waits at (or runs at). A fiber shown as
``running`` without having asked is in the middle of a step: the dump
signal arrived, or the watchdog (:mod:`rocket.watchdog`) looked, while it
blocked the loop.

Reading the snapshot changes nothing; it is safe from a signal handler,
which runs between two bytecodes of the loop's thread.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from rocket.fiber import BLOCKED, PARKED
from rocket.sched import ExecutorRequest
from rocket.watchdog import stuck_frame

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["FiberInfo", "Snapshot", "format_snapshot", "snapshot", "snapshot_of"]


class FiberInfo(NamedTuple):
    """One fiber in a :func:`snapshot`."""

    id: int
    name: str
    #: ``running`` (the fiber that asked), ``runnable``, ``blocked`` (on I/O
    #: or a timer) or ``parked`` (join, Event, Queue, signal...).
    state: str
    #: The request it waits on (or last made), e.g. ``read(fd=5)``.
    request: str | None
    #: Seconds it has been waiting (blocked or parked), else None.
    waiting: float | None
    #: Seconds until its nearest ``fail_after``/``move_on_after`` deadline
    #: (negative: passed, the cancel is on its way), else None.
    deadline: float | None
    #: The fiber's call stack, innermost first: the nested calls it yielded
    #: (``yield stream.readline()``) down to its own body, by qualified name.
    calls: tuple[str, ...] = ()
    #: Where the fiber waits (or runs, if running): ``path/to/file.py:42``.
    line: str | None = None


def _calls(fiber: Fiber[Any]) -> tuple[str, ...]:
    frames = [*(fiber.stack or ()), fiber.body]
    return tuple(getattr(body, "__qualname__", "?") for body in reversed(frames) if body)


def _line(fiber: Fiber[Any]) -> str | None:
    body = fiber.body  # the innermost nested call: its frame's line is live while it runs
    frame = getattr(body, "gi_frame", None) or getattr(body, "cr_frame", None)
    return None if frame is None else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _deadline(executor: Executor, fiber: Fiber[Any], now: float) -> float | None:
    nearest = min(
        (getattr(s, "deadline", math.inf) for s in executor.scopes.get(fiber, ())), default=math.inf
    )
    return None if nearest == math.inf else nearest - now


def snapshot_of(executor: Executor, caller: Fiber[Any] | None = None) -> list[FiberInfo]:
    """Every live fiber of ``executor``, by id.

    ``caller`` is shown as running, and so is a fiber in the middle of a step
    (when called from a signal handler or another thread while it blocks).
    """
    now = executor.clock()
    infos = []
    stepping = caller or (executor.running if stuck_frame(executor) is not None else None)
    for fiber in sorted(executor.fibers.values(), key=lambda f: f.id):
        state = "running" if fiber is stepping else fiber.state
        request = fiber.request.describe() if fiber.request is not None else None
        if fiber is stepping and fiber is not caller:
            request = None  # it asked for nothing yet: the last request was answered
        waiting = now - fiber.since if state in (BLOCKED, PARKED) else None
        infos.append(
            FiberInfo(
                fiber.id,
                fiber.name,
                state,
                request,
                waiting,
                _deadline(executor, fiber, now),
                _calls(fiber),
                _line(fiber),
            )
        )
    return infos


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def format_snapshot(infos: list[FiberInfo]) -> str:
    """A table of the fibers, one line each (see the module docstring)."""
    lines = [f"rocket: {len(infos)} fiber{'s' if len(infos) != 1 else ''}"]
    width = max([len(info.name[:30]) for info in infos] + [4])
    lines.append(
        f"  {'id':>5}  {'name':<{width}}  {'state':<8}  {'waiting':>8}  {'deadline':>8}  request"
    )
    for info in infos:
        lines.append(
            f"  {info.id:>5}  {info.name[:30]:<{width}}  {info.state:<8}  "
            f"{_seconds(info.waiting):>8}  {_seconds(info.deadline):>8}  {info.request or '-'}"
            + (f" in {' < '.join(info.calls[:-1])}" if len(info.calls) > 1 else "")
            + (f"  at {info.line.rsplit('/', 1)[-1]}" if info.line else "")
        )
    return "\n".join(lines) + "\n"


class Snapshot(ExecutorRequest[list[FiberInfo]]):
    """The request behind :func:`snapshot`."""

    __slots__ = ()
    verb = "snapshot"

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        return snapshot_of(executor, fiber)


_SNAPSHOT = Snapshot()


def snapshot() -> Snapshot:
    """Describe every live fiber: a list of :class:`FiberInfo`, by fiber id."""
    return _SNAPSHOT
