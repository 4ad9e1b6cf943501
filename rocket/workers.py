"""``rocket.run_workers``: one executor and one engine per core, under a supervisor.

The io_uring runtimes that scale (glommio, monoio, tokio-uring) are
thread-per-core: one ring and one executor per core, nothing shared, and the
kernel spreads connections among the listeners of one port
(``SO_REUSEPORT``: ``serve_tcp(..., reuse_port=True)``). With the GIL,
CPython runs Python code on one core per *process*, so rocket's workers are
processes (forked, so ``main`` may be any function, closures included); on
a free-threaded build they may be threads (``mode="threads"``).

The supervisor is the parent process (its loop is ``rocket._supervisor``):

* a worker that **fails before it is ready** (and within
  ``STARTUP_SECONDS``, 5 s) is a failed start; after ``MAX_FAILED_STARTS`` (5)
  in a row in one slot the supervisor stops the others and raises
  :class:`WorkersFailed` with that worker's traceback. Any other failure
  (an exception later, ``kill -9``, the OOM killer) is restarted after a
  back-off that doubles with each failure in a row, from ``FIRST_BACKOFF``
  (0.1 s) up to ``LAST_BACKOFF`` (5 s); a worker that ran ``STARTUP_SECONDS``
  starts the count again. A worker whose ``main`` returns is done and is not
  restarted.
* the first **SIGTERM or SIGINT** starts a graceful shutdown: each worker is
  asked through its stop pipe to stop accepting, finish its connections and
  exit (see ``rocket._worker_child``); one still running when ``grace``
  seconds have passed is killed (SIGKILL). A second SIGTERM/SIGINT kills them
  at once.
* when every worker has reported ready (the first time), ``ready()`` is called.

``run_workers`` returns None (exit status 0) when every worker ended well:
its ``main`` returned, or it drained within the grace period after a signal
(for an orchestrator a stop on request is success). It raises
:class:`WorkersFailed` (exit status 1, the message says why) when it gave up
restarting or had to kill a worker, and ``KeyboardInterrupt`` or
``SystemExit(143)`` when a second signal cut the shutdown short.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from rocket._supervisor import (
    FIRST_BACKOFF,
    LAST_BACKOFF,
    MAX_FAILED_STARTS,
    STARTUP_SECONDS,
    Supervisor,
)
from rocket._worker_state import WorkerInfo, worker_info, worker_ready
from rocket.errors import RocketError
from rocket.request import FiberBody

__all__ = [
    "FIRST_BACKOFF",
    "LAST_BACKOFF",
    "MAX_FAILED_STARTS",
    "STARTUP_SECONDS",
    "WorkerInfo",
    "WorkersFailed",
    "run_workers",
    "worker_info",
    "worker_ready",
]

_MODES = ("processes", "threads")


class WorkersFailed(RocketError):
    """The supervisor gave up: workers kept failing at start, or had to be killed.

    The message says which worker and why, and ends with the worker's
    traceback when there is one (also in :attr:`traceback`).
    """

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(f"{message}\n\n{traceback}".rstrip() if traceback else message)
        #: the failing worker's traceback, as it printed it ("" if it was killed)
        self.traceback = traceback


def run_workers(
    main: Callable[[], FiberBody[Any]],
    workers: int | None = None,
    *,
    pin: bool = True,
    mode: str = "processes",
    grace: float = 10.0,
    engine: str = "auto",
    ready: Callable[[], object] | None = None,
) -> None:
    """Run ``rocket.run(main())`` in ``workers`` workers at once, and supervise them.

    Each worker has its own engine and executor; a server in ``main`` should
    listen with ``serve_tcp(..., reuse_port=True)`` so that they share its
    port. A worker learns its place with :func:`rocket.worker_info`. See the
    module docstring for restarts, signals and the exit status.

    Args:
        main: the function that makes each worker's main fiber, e.g. ``main``
            (not ``main()``): every worker calls it for fibers of its own.
        workers: how many; default: the CPUs this process may use
            (``os.sched_getaffinity``).
        pin: pin worker ``i`` to the ``i``-th of those CPUs (round robin).
        mode: ``"processes"``, or ``"threads"`` on a free-threaded CPython.
        grace: seconds a graceful shutdown may take before workers are killed.
        engine: passed to each worker's ``rocket.run``.
        ready: called in the supervisor once every worker is ready (see
            :func:`rocket.worker_ready`), e.g. to write a readiness file.

    Raises:
        TypeError, ValueError: a bad argument (before any worker starts).
        RuntimeError: ``mode="threads"`` where threads cannot run in parallel,
            or not called from the main thread.
        WorkersFailed: see above.
    """
    cpus = _check(main, workers, mode, grace, engine, ready)
    count = len(cpus) if workers is None else workers
    failure = Supervisor(main, count, cpus if pin else [], mode, float(grace), engine, ready).run()
    if failure is not None:
        raise WorkersFailed(*failure)


def _check(
    main: object, workers: object, mode: object, grace: object, engine: object, ready: object
) -> list[int]:
    """Refuse what ``run_workers`` cannot use; returns the usable CPUs."""
    if not callable(main) or hasattr(main, "send"):
        raise TypeError(
            "run_workers() argument 'main' must be the function itself (run_workers(main)), "
            f"not {type(main).__name__}: each worker calls it to build its own fibers"
        )
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"run_workers() argument 'workers' must be an int >= 1, got {workers!r}")
    if mode not in _MODES:
        raise ValueError(
            f"run_workers() argument 'mode' must be 'processes' or 'threads', not {mode!r}"
        )
    if mode == "threads" and not free_threaded():
        raise RuntimeError(
            "run_workers(mode='threads') needs a free-threaded CPython (3.13t or later, "
            f"running with the GIL disabled); this is CPython {sys.version.split()[0]} with "
            "the GIL, where worker threads would take turns on one core. "
            "Use mode='processes' (the default)"
        )
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        raise ValueError(f"run_workers() argument 'grace' must be seconds >= 0, got {grace!r}")
    if not isinstance(engine, str):
        raise TypeError(
            "run_workers() argument 'engine' must be an engine name ('auto', 'io_uring', "
            f"'selector'), not {type(engine).__name__}: each worker creates its own engine"
        )
    if ready is not None and not callable(ready):
        raise TypeError(f"run_workers() argument 'ready' must be callable or None, not {ready!r}")
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_workers() must be called from the main thread (it handles signals)")
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def free_threaded() -> bool:
    """True on a CPython whose threads run Python code in parallel (the GIL is off)."""
    is_gil_enabled: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return is_gil_enabled is not None and not is_gil_enabled()
