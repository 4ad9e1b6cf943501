"""``rocket.run``: the entry point that owns an engine and an executor."""

from __future__ import annotations

import threading
from typing import TypeVar

from rocket.engines import create_engine
from rocket.executor import Executor
from rocket.request import FiberBody
from rocket.sched import check_body
from rocket.trace import Tracer

__all__ = ["run"]

R = TypeVar("R")

_state = threading.local()


def run(main: FiberBody[R], *, engine: str = "auto", trace: bool = False) -> R:
    """Run ``main`` (a generator or coroutine object) and every fiber it spawns.

    Returns what ``main`` returns, or raises what it raised. When ``main``
    finishes, fibers still running are cancelled and allowed to finish.

    Args:
        main: the main fiber, e.g. ``main()`` -- not the function ``main``.
        engine: ``"auto"`` (io_uring where it works, else the readiness
            engine; ``$ROCKET_ENGINE`` overrides), ``"io_uring"`` or ``"selector"``.
        trace: print every scheduling step to stderr.

    Raises:
        TypeError: ``main`` is not a generator or coroutine object.
        RuntimeError: called from inside a running fiber.
        rocket.Deadlock: the fibers wait on each other and nothing can happen.
    """
    check_body(main, "run")
    if getattr(_state, "running", False):
        main.close()
        raise RuntimeError(
            "rocket.run() cannot be called while rocket is already running in this thread; "
            "use 'yield rocket.spawn(...)' to start more fibers"
        )
    backend = create_engine(engine)
    executor = Executor(backend, Tracer() if trace else None)
    _state.running = True
    try:
        return executor.run(main)  # type: ignore[no-any-return]
    except BaseException:
        _shut_down(executor)
        raise
    finally:
        _state.running = False
        backend.close()


def _shut_down(executor: Executor) -> None:
    """After an error escaped the loop: cancel every fiber and let them finish."""
    executor.cancel_all()
    try:
        executor.loop()
    except BaseException:
        pass
