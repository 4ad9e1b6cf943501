"""Guest mode: rocket fibers inside a running asyncio loop, in the same thread.

From asyncio code, run a rocket program as a guest of the running loop::

    result = await rocket.asyncio.run(main())

From a rocket fiber in guest mode, wait for asyncio code (a coroutine, task or
future), which runs as a task of the host loop::

    rows = yield rocket.asyncio.wait(db.fetch_all(query))

The asyncio loop stays the only one blocking in the kernel: it watches the
engine's fd and runs one executor pass per callback (see ``rocket._guest``,
the design of trio's guest mode). Works with any asyncio loop that has
``add_reader`` (the default loop on Linux, uvloop). See ``docs/asyncio.md``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from rocket._guest import Guest, guest_of
from rocket.engines import Engine, create_engine
from rocket.errors import Cancelled
from rocket.executor import Executor
from rocket.request import FiberBody
from rocket.runner import _check_arguments, _check_threads
from rocket.sched import ExecutorRequest, check_body
from rocket.trace import Tracer
from rocket.watchdog import DEFAULT_SLOW_STEP, Watchdog

if TYPE_CHECKING:
    from rocket.fiber import Fiber

__all__ = ["AsyncioWait", "run", "wait"]

R = TypeVar("R")
T = TypeVar("T")


async def run(
    main: FiberBody[R],
    *,
    engine: str | Engine = "auto",
    trace: bool = False,
    max_threads: int | None = None,
    slow_step: float | None = DEFAULT_SLOW_STEP,
) -> R:
    """Run ``main`` and every fiber it spawns as a guest of the running asyncio loop.

    Returns what ``main`` returns, or raises what it raised, like
    :func:`rocket.run`; the asyncio loop goes on running its own tasks
    meanwhile. Cancelling the awaiting asyncio task cancels ``main`` (and so
    every fiber); once they have finished, ``asyncio.CancelledError`` is
    raised, unless ``main`` caught the cancel and returned.

    Signals stay with asyncio: rocket installs no SIGINT/SIGTERM handler here
    (``asyncio.run`` turns Ctrl-C into the cancellation of its main task), and
    ``rocket.signal()`` and ``dump_signal`` are not available.

    Args:
        main: the main fiber, e.g. ``main()`` -- not the function ``main``.
        engine: ``"auto"``, ``"io_uring"``, ``"selector"``, or an engine
            instance with ``fileno()`` and ``before_idle()`` (both built-in
            engines have them; :class:`rocket.testing.VirtualEngine` does not).
        trace: print every scheduling step to stderr.
        max_threads, slow_step: as for :func:`rocket.run` (the to_thread pool;
            the watchdog that names a fiber blocking the loop -- which here is
            asyncio's loop too).

    Raises:
        TypeError: ``main`` is not a generator or coroutine object, or the
            engine cannot run as a guest.
        RuntimeError: called from inside a ``rocket.run`` fiber.
    """
    check_body(main, "rocket.asyncio.run")
    try:
        _check_arguments(engine, None)
        _check_threads(engine, max_threads, slow_step)
        backend = _guest_engine(engine)
        if max_threads is not None:
            backend.max_threads = max_threads  # type: ignore[attr-defined]
    except BaseException:
        main.close()  # never started: no "coroutine was never awaited" warning
        raise
    guest = Guest(Executor(backend, Tracer() if trace else None), asyncio.get_running_loop())
    try:
        guest.start(main)
    except NotImplementedError:  # e.g. Windows' proactor loop
        backend.close()
        main.close()
        raise RuntimeError(
            "rocket.asyncio.run() needs an asyncio loop with add_reader() (the default "
            "loop on Linux and macOS, uvloop); this one has none"
        ) from None
    watchdog = Watchdog(guest.executor, slow_step) if slow_step is not None else None
    if watchdog is not None:
        watchdog.start()
    cancelled: asyncio.CancelledError | None = None
    try:
        while not guest.done.done():
            try:
                await asyncio.wait((guest.done,))  # never cancels guest.done itself
            except asyncio.CancelledError as exc:
                cancelled = cancelled or exc
                guest.cancel_main()  # and go on waiting: the fibers' cleanup may do I/O
    finally:
        if watchdog is not None:
            watchdog.stop()
    try:
        result: R = guest.done.result()
    except Cancelled:
        if cancelled is None:
            raise
        raise cancelled from None  # main ended by the host's cancel: asyncio's error
    return result


def _guest_engine(engine: str | Engine) -> Engine:
    """The engine for a guest run: one whose fd the host loop can watch."""
    backend = create_engine(engine) if isinstance(engine, str) else engine
    if not all(callable(getattr(backend, name, None)) for name in ("fileno", "before_idle")):
        raise TypeError(
            f"rocket.asyncio.run() needs an engine with fileno() and before_idle() for the "
            f"asyncio loop to watch; {type(backend).__name__} has not both: use "
            f"engine='auto', 'io_uring' or 'selector', or rocket.run() in a thread"
        )
    return backend


class AsyncioWait(ExecutorRequest[T]):
    """Run an awaitable as a task of the host asyncio loop and wait for its result."""

    __slots__ = ("awaitable",)
    verb = "rocket.asyncio.wait"

    def __init__(self, awaitable: Awaitable[T]) -> None:
        thing: object = awaitable
        if not inspect.isawaitable(thing):
            hint = ""
            if inspect.iscoroutinefunction(thing):
                name = getattr(thing, "__name__", "function")
                hint = f" (that is the function {name!r} itself; call it: wait({name}(...)))"
            raise TypeError(
                f"rocket.asyncio.wait() expects an asyncio coroutine, task or future, not "
                f"{type(thing).__name__}{hint}"
            )
        self.awaitable = awaitable

    def describe(self) -> str:
        what = getattr(self.awaitable, "__qualname__", type(self.awaitable).__name__)
        return f"rocket.asyncio.wait({what})"

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        guest = guest_of(executor)
        if guest is None:
            if inspect.iscoroutine(self.awaitable):
                self.awaitable.close()  # never started: no "never awaited" warning
            raise RuntimeError(
                "rocket.asyncio.wait() needs rocket running inside asyncio (guest mode): "
                "from asyncio code start it with 'await rocket.asyncio.run(main())'; under "
                "rocket.run(), run asyncio code in a thread instead: "
                "'yield rocket.to_thread(asyncio.run, coro)'"
            )
        future = asyncio.ensure_future(self.awaitable, loop=guest.loop)
        return guest.wait(fiber, future)


def wait(awaitable: Awaitable[T]) -> AsyncioWait[T]:
    """Wait, in a fiber, for asyncio code: ``value = yield rocket.asyncio.wait(coro)``.

    ``awaitable`` (a coroutine, task, future or other awaitable) runs as a task
    of the host loop; the fiber parks until it is done and gets its result or
    its exception. Cancelling the fiber cancels the task (the fiber resumes once
    the task has ended); a task cancelled on the asyncio side raises
    :class:`rocket.Cancelled` in the fiber.

    Raises:
        TypeError: ``awaitable`` is not awaitable.
        RuntimeError (when yielded): rocket is not running as a guest of asyncio
            (under :func:`rocket.run`).
    """
    return AsyncioWait(awaitable)
