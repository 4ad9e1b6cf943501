"""What a worker of :func:`rocket.run_workers` knows about itself, per thread.

This module sits below the servers and the supervisor: :mod:`rocket.net.server`
tells it when a server starts and when a fiber first waits in
``serve_forever`` (the worker is then ready); :mod:`rocket.workers` sets it up
in each worker and reads it at shutdown. Outside ``run_workers`` it describes
a single worker (index 0 of 1) that never reports anything.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rocket.sync import Event

if TYPE_CHECKING:
    from rocket.net.server import Server

__all__ = ["WorkerInfo", "current_info", "server_started", "serving", "worker_info", "worker_ready"]


@dataclass(eq=False)
class WorkerInfo:
    """One worker's place among its peers; see :func:`rocket.worker_info`."""

    #: this worker's number, 0 to ``count - 1`` (a restarted worker keeps its number)
    index: int = 0
    #: how many workers ``run_workers`` runs (1 under plain ``rocket.run``)
    count: int = 1
    #: set when the worker starts its graceful shutdown: a handler that serves
    #: several requests per connection should return after the current one
    stopping: Event = field(default_factory=Event)
    # Invariant: called at most once, by worker_ready() (the supervisor hears of it).
    _report_ready: Callable[[], None] | None = field(default=None, repr=False)
    _signalled: bool = field(default=False, repr=False)  # stopped by its own SIGTERM
    _servers: weakref.WeakSet[Server] = field(default_factory=weakref.WeakSet, repr=False)

    @property
    def cpu(self) -> int | None:
        """The CPU this worker is pinned to, or None if it may run on several."""
        try:
            cpus = os.sched_getaffinity(0)
        except (AttributeError, OSError):
            return None
        return next(iter(cpus)) if len(cpus) == 1 else None


_local = threading.local()


def current_info() -> WorkerInfo:
    """This thread's :class:`WorkerInfo` (a lone worker's outside ``run_workers``)."""
    info: WorkerInfo | None = getattr(_local, "info", None)
    if info is None:
        info = _local.info = WorkerInfo()
    return info


def install(info: WorkerInfo | None) -> None:
    """Make ``info`` this thread's (``run_workers`` does this in each worker)."""
    _local.info = info


def worker_info() -> WorkerInfo:
    """This worker's index, the number of workers, and its ``stopping`` event.

    Under :func:`rocket.run_workers`, each worker has its own index (0 to
    ``count - 1``); under plain :func:`rocket.run` the answer is index 0 of 1,
    so the same code runs single-process.
    """
    return current_info()


def worker_ready() -> None:
    """Tell the supervisor this worker is ready (does nothing outside ``run_workers``).

    Called for you the first time a fiber waits in ``Server.serve_forever()``;
    call it yourself if the worker serves without ``serve_forever``, after the
    last of its servers listens.
    """
    info = current_info()
    report, info._report_ready = info._report_ready, None
    if report is not None:
        report()


def server_started(server: Server) -> None:
    """A server of this worker listens (the graceful shutdown will stop it accepting)."""
    current_info()._servers.add(server)


def serving() -> None:
    """A fiber waits in ``serve_forever``: every server main starts first is listening."""
    worker_ready()


def servers() -> list[Server]:
    """The servers of this worker that are still open."""
    return [server for server in current_info()._servers if not server.closed]
