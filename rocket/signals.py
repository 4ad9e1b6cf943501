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

Everything is restored when ``run`` returns, even when it fails at start, and in
the child of an ``os.fork()`` made in a fiber (whose signals would otherwise
wake the parent's loop through the shared pipe).
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

__all__ = ["Signal", "SignalWatcher", "check_signum", "signal"]

_SHUTDOWN = (_signal.SIGINT, _signal.SIGTERM)
# Invariant: holds a watcher only from install() to close(); its value refers to its
# key, so the entry must be removed by close() or the executor would never be freed.
_watchers: weakref.WeakKeyDictionary[Executor, SignalWatcher] = weakref.WeakKeyDictionary()
_installed: SignalWatcher | None = None  # the active watcher (main thread: at most one)


def check_signum(value: Any, op: str, arg: str = "signum", *, shutdown: bool = True) -> int:
    """A signal number that can be caught: not SIGKILL or SIGSTOP.

    With ``shutdown=False``, SIGINT and SIGTERM (rocket's shutdown signals) are refused too.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}() argument {arg!r} must be an int, not {type(value).__name__}")
    refused = {_signal.SIGKILL, _signal.SIGSTOP}
    if not shutdown:
        refused.update(_SHUTDOWN)
    if value not in _signal.valid_signals() or value in refused:
        which = "" if shutdown else " other than SIGINT and SIGTERM (rocket's shutdown signals)"
        raise ValueError(
            f"{op}() argument {arg!r} must be a signal that can be caught{which}, such as "
            f"signal.SIGUSR1 or signal.SIGQUIT (SIGKILL and SIGSTOP cannot be), "
            f"got {_name(value)}"
        )
    return int(value)


def _name(signum: int) -> str:
    try:
        return f"{signum} ({_signal.Signals(signum).name})"
    except ValueError:
        return str(signum)


def _exit_error(signum: int) -> BaseException:
    if signum == _signal.SIGINT:
        return KeyboardInterrupt()
    return SystemExit(128 + signum)


class _SignalWaiters(deque[Any]):
    """Fibers waiting for one signal; they keep the loop waiting (``executor.outside``)."""

    def abort(self, fiber: Fiber[Any], error: BaseException) -> None:
        self.remove(fiber)
        fiber.executor.outside -= 1
        fiber.executor.wake(fiber, None, error)


class SignalWatcher:
    """Signal handling for one ``rocket.run``; see the module docstring."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.received: int | None = None  # the signal that started a shutdown
        # A shutdown signal whose number the loop has not read from the pipe yet:
        # one that arrives as main returns must still stop the program.
        self._pending: int | None = None
        self.stopping = False  # set by the handler at the first SIGINT/SIGTERM
        self.forced = False  # a second one came: the handler raised at once
        self.active = False
        self._old_handlers: dict[int, Any] = {}
        self._ours: dict[int, Any] = {}  # the handler installed for each of those
        self._old_wakeup = -1
        self._rfd = self._wfd = -1
        self._waiters: dict[int, _SignalWaiters] = {}
        self._kept: set[int] = set()  # arrived while nobody waited

    def install(self, dump_signal: int | None = None) -> bool:
        """Take over the signals (main thread only); False if not possible here."""
        global _installed
        if threading.current_thread() is not threading.main_thread():
            if dump_signal is not None:
                raise RuntimeError("dump_signal needs rocket.run() in the main thread")
            return False
        self._rfd, self._wfd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._wfd, False)
        self.active = True  # from here on, close() undoes what was done
        self._old_wakeup = _signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)
        _watchers[self.executor] = self
        _installed = self
        for signum in _SHUTDOWN:
            default = _signal.default_int_handler if signum == _signal.SIGINT else _signal.SIG_DFL
            if _signal.getsignal(signum) is default:
                self._handle(signum, self._on_shutdown_signal)
        if dump_signal is not None:
            self._handle(dump_signal, self._on_dump_signal)
        self._read_next()
        return True

    def _handle(self, signum: int, handler: Any) -> None:
        old = _signal.signal(signum, handler)
        self._old_handlers.setdefault(signum, old)
        self._ours[signum] = handler

    # ---------------------------------------------------- Python-level handlers

    def _on_shutdown_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            self.forced = True
            raise _exit_error(signum)
        if not self._waiters.get(signum):
            self.stopping = True  # the loop starts the shutdown when it reads the pipe
            if self._pending is None:
                self._pending = signum

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
        if signum == self._pending:
            self._pending = None  # read from the pipe: handled here
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
        return executor.park(fiber, waiters, waiters.abort)

    def exit_error(self, *, late: bool = False) -> BaseException | None:
        """What ``run`` raises after a signal shutdown (None if there was none).

        With ``late=True``, also for a SIGINT/SIGTERM that arrived too late for
        the loop to read it (as main returned): ask after :meth:`close` to miss none.
        """
        signum = self.received
        if signum is None and late:
            signum = self._pending
        return None if signum is None else _exit_error(signum)

    def close(self) -> None:
        """Restore the handlers and the wakeup fd; close the pipe (after the engine).

        Idempotent, and safe after a partial :meth:`install`.
        """
        global _installed
        _watchers.pop(self.executor, None)
        if _installed is self:
            _installed = None
        if self.active:
            self.active = False
            # Like trio and asyncio.Runner: what the program set during the run stays.
            for signum, handler in self._old_handlers.items():
                if _signal.getsignal(signum) == self._ours[signum]:
                    _signal.signal(signum, handler)
            self._old_handlers.clear()
            current = _signal.set_wakeup_fd(self._old_wakeup)
            if current != self._wfd:
                _signal.set_wakeup_fd(current)
        self._close_pipe()

    def _close_pipe(self) -> None:
        for fd in (self._rfd, self._wfd):
            if fd >= 0:
                os.close(fd)
        self._rfd = self._wfd = -1

    def forget_after_fork(self) -> None:
        """In a forked child: give back the handlers and the wakeup fd, drop the pipe.

        The child's copy of the loop never reads that pipe, and the parent's
        would read what the child's signals write into it.
        """
        self.close()
        self._pending = self.received = None


def _after_fork_in_child() -> None:
    if _installed is not None:
        _installed.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Signal(ExecutorRequest[int]):
    """The request behind :func:`signal`."""

    __slots__ = ("signum",)
    verb = "signal"

    def __init__(self, signum: int) -> None:
        self.signum = check_signum(signum, "signal")

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        watcher = _watchers.get(executor)
        if watcher is None or not watcher.active:
            raise RuntimeError(
                "rocket.signal() needs rocket.run() in the main thread; in a guest run "
                "(rocket.asyncio.run) signals belong to asyncio: use asyncio's "
                "loop.add_signal_handler() and hand the signal to the fibers with "
                "rocket's loop.call_soon_threadsafe()"
            )
        return watcher.wait(executor, fiber, self.signum)

    def describe(self) -> str:
        try:
            return f"signal({_signal.Signals(self.signum).name})"
        except ValueError:  # a real-time signal has no name
            return f"signal({self.signum})"


def signal(signum: int) -> Signal:
    """Wait until the process receives ``signum``; the result is ``signum``.

    E.g. ``yield rocket.signal(signal.SIGHUP)`` to reload a configuration.
    Works while ``rocket.run`` runs in the main thread (not in a guest run).

    Raises:
        TypeError, ValueError: not a signal number that can be caught.
        RuntimeError (when yielded): rocket.run is not in the main thread, or
            this is a guest run of asyncio, which owns the signals.
    """
    return Signal(signum)
