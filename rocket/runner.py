"""``rocket.run``: the entry point that owns an engine and an executor."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TypeVar

from rocket import _checks, _context
from rocket.engines import Engine, create_engine
from rocket.errors import Cancelled
from rocket.executor import Executor
from rocket.fiber import Fiber, report_failure
from rocket.loop_handle import close_inbox
from rocket.request import FiberBody
from rocket.sched import check_body
from rocket.signals import SignalWatcher, check_signum
from rocket.trace import Tracer
from rocket.watchdog import DEFAULT_SLOW_STEP, Watchdog

__all__ = ["run"]

R = TypeVar("R")

_state = threading.local()  # .running: a run is on in this thread
_ENGINE_METHODS = ("submit", "cancel", "notify_closing", "wait", "close")
_RUNNING = (
    "rocket.run() cannot be called while rocket is already running in this thread; "
    "use 'yield rocket.spawn(...)' to start more fibers"
)


def run(
    main: FiberBody[R],
    *,
    engine: str | Engine = "auto",
    trace: bool = False,
    dump_signal: int | None = None,
    max_threads: int | None = None,
    slow_step: float | None = DEFAULT_SLOW_STEP,
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
        max_threads: how many worker threads ``to_thread`` may use at once
            in this run (default 8); file operations on the readiness engine
            have a pool of their own.
        slow_step: warn (logger ``rocket``) when one fiber step runs longer
            than this many seconds without yielding; None: never (see
            :mod:`rocket.watchdog`).

    In the main thread, SIGINT and SIGTERM (unless the program set its own
    handlers) cancel every fiber, let them finish, and then make ``run``
    raise ``KeyboardInterrupt`` or ``SystemExit(143)``; a second one stops
    at once (see :mod:`rocket.signals`).

    Raises:
        TypeError: ``main`` is not a generator or coroutine object, or
            ``engine`` neither an engine name nor an engine.
        ValueError: ``dump_signal`` is not a signal that can be caught, or is
            SIGINT/SIGTERM (the shutdown signals); ``max_threads`` < 1 or
            ``slow_step`` <= 0.
        RuntimeError: called from inside a running fiber (a forked child may
            call it again).
        rocket.Deadlock: the fibers wait on each other and nothing can happen.
    """
    check_body(main, "run")
    try:
        _check_no_asyncio()
        _check_arguments(engine, dump_signal)
        _check_threads(engine, max_threads, slow_step)
        backend = create_engine(engine) if isinstance(engine, str) else engine
        if max_threads is not None:
            backend.max_threads = max_threads  # type: ignore[attr-defined]
    except BaseException:
        main.close()  # never started: no "coroutine was never awaited" warning
        raise
    executor = Executor(backend, Tracer() if trace else None)
    watcher = SignalWatcher(executor)
    watchdog = Watchdog(executor, slow_step) if slow_step is not None else None
    _state.running = True
    try:
        try:
            watcher.install(dump_signal)
            if watchdog is not None:
                watchdog.start()
            result: R = executor.run(main)
        except BaseException as exc:
            raiser = executor.running
            stop = watcher.exit_error()
            if stop is None or watcher.forced:
                if not watcher.forced:
                    _shut_down(executor)
                stop = None
            _seen(exc, executor.main, raiser)
            if stop is not None:
                raise stop from None  # every fiber was cancelled and has finished
            raise
    finally:
        _state.running = False
        if watchdog is not None:
            watchdog.stop()
        try:
            backend.close()
        finally:
            watcher.close()  # after the engine: its read of the wakeup pipe is done
            close_inbox(executor)  # the same for the loop handle's eventfd
    stop = watcher.exit_error(late=True)  # after close: a Ctrl-C as main returned too
    if stop is not None:
        raise stop
    return result


def _check_no_asyncio() -> None:
    """Refuse to block a running asyncio loop (asyncio not imported: none can run)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or asyncio.events._get_running_loop() is None:
        return
    try:
        _context.running_executor("run")
    except RuntimeError:
        raise RuntimeError(
            "rocket.run() cannot be called while an asyncio event loop is running in this "
            "thread: it would block that loop; from asyncio code write "
            "'result = await rocket.asyncio.run(main())' (rocket then runs inside the loop)"
        ) from None
    raise RuntimeError(_RUNNING)  # a fiber of a guest run (rocket.asyncio.run)


def _check_arguments(engine: object, dump_signal: object) -> None:
    """Refuse what ``run`` cannot use, before anything is installed."""
    if getattr(_state, "running", False):
        raise RuntimeError(_RUNNING)
    if isinstance(engine, type):
        raise TypeError(
            f"run() argument 'engine' must be an engine object, not the class itself; "
            f"write engine={engine.__name__}()"
        )
    if not isinstance(engine, str) and not all(
        callable(getattr(engine, method, None)) for method in _ENGINE_METHODS
    ):
        raise TypeError(
            f"run() argument 'engine' must be 'auto', 'io_uring', 'selector' or an engine "
            f"object (with {', '.join(_ENGINE_METHODS)}), not {type(engine).__name__}; "
            f"leave it out for 'auto'"
        )
    if dump_signal is not None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("dump_signal needs rocket.run() in the main thread")
        check_signum(dump_signal, "run", "dump_signal", shutdown=False)


def _check_threads(engine: object, max_threads: object, slow_step: object) -> None:
    """Refuse a ``max_threads`` or ``slow_step`` that ``run`` cannot use."""
    if max_threads is not None:
        if isinstance(max_threads, bool) or not isinstance(max_threads, int):
            raise TypeError(
                f"run() argument 'max_threads' must be an int or None, not "
                f"{type(max_threads).__name__}"
            )
        if max_threads < 1:
            raise ValueError(f"run() argument 'max_threads' must be >= 1, got {max_threads}")
        if not isinstance(engine, str) and not hasattr(engine, "max_threads"):
            raise TypeError(
                f"run() argument 'max_threads' needs an engine with a to_thread pool; "
                f"{type(engine).__name__} has no 'max_threads' attribute: leave max_threads out"
            )
    if slow_step is not None and _checks.seconds(slow_step, "run", "slow_step") <= 0:
        raise ValueError(
            f"run() argument 'slow_step' must be > 0 seconds (None: no watchdog), got {slow_step!r}"
        )


def _seen(error: BaseException, *fibers: Fiber[Any] | None) -> None:
    """``error`` escapes ``run``: the fibers that raised it (``sys.exit()`` in a child,
    then in main, which joined it) must not be reported as "failed and was never
    joined" when they are freed."""
    for fiber in set(fibers):
        if fiber is not None and fiber.done():
            other = fiber.exception()  # marks its outcome as seen
            if other is not None and other is not error and not isinstance(other, Cancelled):
                report_failure(fiber, other)  # another failure would go unseen: report it now


def _shut_down(executor: Executor) -> None:
    """After an error escaped the loop: cancel every fiber and let them finish."""
    executor.cancel_all()
    try:
        executor.loop()
    except BaseException:
        pass


def _after_fork_in_child() -> None:
    # A fiber called os.fork(): the child's copy of that run will never go on,
    # so the child may start a run of its own.
    _state.running = False


os.register_at_fork(after_in_child=_after_fork_in_child)
