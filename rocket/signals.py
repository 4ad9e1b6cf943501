"""Signals: orderly shutdown on SIGINT/SIGTERM, ``yield rocket.signal(n)``, SIGUSR1 dumps.

While ``rocket.run`` runs in the main thread, a :class:`SignalWatcher`:

* points ``signal.set_wakeup_fd`` at a pipe and keeps a read of that pipe in
  flight on the engine (an executor *service*: a request no fiber waits
  for). The C-level handler writes each signal's number there, so a signal
  that arrives while the loop waits in the kernel completes the read and
  wakes the loop at once, on any engine. The loop then handles it between
  two fiber steps, where changing the executor's state is safe.
* replaces the default SIGINT and SIGTERM handlers (only those: a handler
  the program set itself is left alone). The first such signal cancels
  every fiber -- each one's ``finally`` blocks run and may do I/O -- and
  once all have finished ``run`` raises ``KeyboardInterrupt`` (SIGINT) or
  ``SystemExit(143)`` (SIGTERM: 128 + 15, the shell's convention), with no
  traceback per fiber. A second one during that shutdown stops at once
  (raised straight from the handler), for a fiber that will not finish.
* lets fibers wait for a signal: ``signum = yield rocket.signal(SIGHUP)``.
  Every fiber waiting for that signal wakes up. A signal that arrives
  while nobody waits for it (but someone did before) is kept, like a
  pending signal, and the next wait returns at once. If a fiber waits for
  SIGINT or SIGTERM, it gets the signal instead of the shutdown.
* with ``rocket.run(main(), dump_signal=signal.SIGUSR1)``, prints the
  :mod:`rocket.introspect` table on that signal, straight from the handler,
  so it works even while a fiber hogs the CPU.

Everything is restored when ``run`` returns.
"""

from __future__ import annotations

import os
import signal as _signal
import sys
import threading
import weakref
from collections import deque
from types import FrameType
from typing import TYPE_CHECKING, Any

from rocket import ops
from rocket.introspect import format_snapshot, snapshot_of
from rocket.sched import ExecutorRequest

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["Signal", "SignalWatcher", "signal"]

_SHUTDOWN = (_signal.SIGINT, _signal.SIGTERM)
_watchers: weakref.WeakKeyDictionary[Executor, SignalWatcher] = weakref.WeakKeyDictionary()


def _exit_error(signum: int) -> BaseException:
    if signum == _signal.SIGINT:
        return KeyboardInterrupt()
    return SystemExit(128 + signum)


class _SignalWaiters(deque[Any]):
    """Fibers waiting for one signal; they keep the loop waiting (``executor.outside``)."""

    def cancel(self, fiber: Fiber[Any], error: BaseException) -> None:
        self.remove(fiber)
        fiber.executor.outside -= 1
        fiber.executor.wake(fiber, None, error)


class SignalWatcher:
    """Signal handling for one ``rocket.run``; see the module docstring."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.received: int | None = None  # the signal that started a shutdown
        self.stopping = False  # set by the handler at the first SIGINT/SIGTERM
        self.forced = False  # a second one came: the handler raised at once
        self.active = False
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup = -1
        self._rfd = self._wfd = -1
        self._waiters: dict[int, _SignalWaiters] = {}
        self._kept: set[int] = set()  # arrived while nobody waited

    def install(self, dump_signal: int | None = None) -> bool:
        """Take over the signals (main thread only); False if not possible here."""
        if threading.current_thread() is not threading.main_thread():
            if dump_signal is not None:
                raise RuntimeError("dump_signal needs rocket.run() in the main thread")
            return False
        self._rfd, self._wfd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._wfd, False)
        self._old_wakeup = _signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)
        self.active = True
        _watchers[self.executor] = self
        for signum in _SHUTDOWN:
            default = _signal.default_int_handler if signum == _signal.SIGINT else _signal.SIG_DFL
            if _signal.getsignal(signum) is default:
                self._handle(signum, self._on_shutdown_signal)
        if dump_signal is not None:
            self._handle(dump_signal, self._on_dump_signal)
        self._read_next()
        return True

    def _handle(self, signum: int, handler: Any) -> None:
        if signum not in self._old_handlers:
            self._old_handlers[signum] = _signal.getsignal(signum)
        _signal.signal(signum, handler)

    # ---------------------------------------------------- Python-level handlers

    def _on_shutdown_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            self.forced = True
            raise _exit_error(signum)
        if not self._waiters.get(signum):
            self.stopping = True  # the loop starts the shutdown when it reads the pipe

    def _on_dump_signal(self, signum: int, frame: FrameType | None) -> None:
        sys.stderr.write(format_snapshot(snapshot_of(self.executor)))
        sys.stderr.flush()

    @staticmethod
    def _on_other_signal(signum: int, frame: FrameType | None) -> None:
        """Installed for signals fibers wait for: the wakeup fd does the work."""

    # ---------------------------------------------------------- in the loop

    def _read_next(self) -> None:
        self.executor.serve(ops.Read(self._rfd, 64, None), self._on_read)

    def _on_read(self, data: Any, error: BaseException | None) -> None:
        if error is not None or not self.active:
            return  # the engine is closing
        for signum in data:
            self.dispatch(signum)
        self._read_next()

    def dispatch(self, signum: int) -> None:
        """Act on one signal, in the loop, between fiber steps."""
        waiters = self._waiters.get(signum)
        if waiters:
            executor = self.executor
            while waiters:
                executor.outside -= 1
                fiber = waiters.popleft()
                executor.wake(fiber, signum)
        elif signum in _SHUTDOWN and signum in self._old_handlers and self.received is None:
            self.received = signum
            self.stopping = True
            self.executor.cancel_all()
        elif signum in self._waiters:
            self._kept.add(signum)

    def wait(self, executor: Executor, fiber: Fiber[Any], signum: int) -> Any:
        """Park ``fiber`` until ``signum`` arrives (the :class:`Signal` request)."""
        if signum in self._kept:
            self._kept.discard(signum)
            return signum
        waiters = self._waiters.get(signum)
        if waiters is None:
            waiters = self._waiters[signum] = _SignalWaiters()
            if signum not in self._old_handlers:
                self._handle(signum, self._on_other_signal)
        executor.outside += 1
        return executor.park(fiber, waiters)

    def exit_error(self) -> BaseException | None:
        """What ``run`` raises after a signal shutdown (None if there was none)."""
        return None if self.received is None else _exit_error(self.received)

    def close(self) -> None:
        """Restore the handlers and the wakeup fd; close the pipe (after the engine)."""
        if not self.active:
            return
        self.active = False
        for signum, handler in self._old_handlers.items():
            _signal.signal(signum, handler)
        _signal.set_wakeup_fd(self._old_wakeup)
        os.close(self._rfd)
        os.close(self._wfd)


class Signal(ExecutorRequest[int]):
    """The request behind :func:`signal`."""

    __slots__ = ("signum",)
    verb = "signal"

    def __init__(self, signum: int) -> None:
        if isinstance(signum, bool) or not isinstance(signum, int):
            raise TypeError(
                f"signal() argument 'signum' must be an int, not {type(signum).__name__}"
            )
        if signum not in _signal.valid_signals() or signum in (_signal.SIGKILL, _signal.SIGSTOP):
            raise ValueError(
                f"signal() argument 'signum' must be a signal that can be caught, got {signum}"
            )
        self.signum = int(signum)

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        watcher = _watchers.get(executor)
        if watcher is None or not watcher.active:
            raise RuntimeError("rocket.signal() needs rocket.run() in the main thread")
        return watcher.wait(executor, fiber, self.signum)

    def describe(self) -> str:
        try:
            return f"signal({_signal.Signals(self.signum).name})"
        except ValueError:  # a real-time signal has no name
            return f"signal({self.signum})"


def signal(signum: int) -> Signal:
    """Wait until the process receives ``signum``; the result is ``signum``.

    E.g. ``yield rocket.signal(signal.SIGHUP)`` to reload a configuration.
    Works while ``rocket.run`` runs in the main thread.

    Raises:
        TypeError, ValueError: not a signal number that can be caught.
        RuntimeError (when yielded): rocket.run is not in the main thread.
    """
    return Signal(signum)
