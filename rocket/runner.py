"""``rocket.run``: the entry point that owns an engine and an executor."""

from __future__ import annotations

import threading
from typing import TypeVar

from rocket.engines import Engine, create_engine
from rocket.executor import Executor
from rocket.request import FiberBody
from rocket.sched import check_body
from rocket.signals import SignalWatcher
from rocket.trace import Tracer

__all__ = ["run"]

R = TypeVar("R")

_state = threading.local()


def run(
    main: FiberBody[R],
    *,
    engine: str | Engine = "auto",
    trace: bool = False,
    dump_signal: int | None = None,
) -> R:
    """Run ``main`` (a generator or coroutine object) and every fiber it spawns.

    Returns what ``main`` returns, or raises what it raised. When ``main``
    finishes, fibers still running are cancelled and allowed to finish.

    Args:
        main: the main fiber, e.g. ``main()`` -- not the function ``main``.
        engine: ``"auto"`` (io_uring where it works, else the readiness
            engine; ``$ROCKET_ENGINE`` overrides), ``"io_uring"``, ``"selector"``,
            or an engine instance such as :class:`rocket.testing.VirtualEngine`.
        trace: print every scheduling step to stderr.
        dump_signal: a signal (e.g. ``signal.SIGUSR1``) on which to print
            every fiber's state to stderr (see :mod:`rocket.introspect`).

    In the main thread, SIGINT and SIGTERM (unless the program set its own
    handlers) cancel every fiber, let them finish, and then make ``run``
    raise ``KeyboardInterrupt`` or ``SystemExit(143)``; a second one stops
    at once (see :mod:`rocket.signals`).

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
    if dump_signal is not None and threading.current_thread() is not threading.main_thread():
        main.close()
        raise RuntimeError("dump_signal needs rocket.run() in the main thread")
    backend = create_engine(engine) if isinstance(engine, str) else engine
    executor = Executor(backend, Tracer() if trace else None)
    watcher = SignalWatcher(executor)
    _state.running = True
    try:
        watcher.install(dump_signal)
        try:
            result: R = executor.run(main)
        except BaseException:
            stop = watcher.exit_error()
            if stop is not None and not watcher.forced:
                raise stop from None  # every fiber was cancelled and has finished
            if not watcher.forced:
                _shut_down(executor)
            raise
        stop = watcher.exit_error()
        if stop is not None:
            raise stop
        return result
    finally:
        _state.running = False
        backend.close()
        watcher.close()  # after the engine: its read of the wakeup pipe is done


def _shut_down(executor: Executor) -> None:
    """After an error escaped the loop: cancel every fiber and let them finish."""
    executor.cancel_all()
    try:
        executor.loop()
    except BaseException:
        pass
