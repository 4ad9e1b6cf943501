"""Inside one worker of :func:`rocket.run_workers`: start, report, drain, exit.

A worker talks to its supervisor through two pipes:

* the *stop* pipe (supervisor -> worker): a byte, or end of file when the
  supervisor has died, asks for a graceful shutdown. A fiber of the worker
  keeps a read of it in flight, so the request is served between two fiber
  steps like any other completion, on every engine and in both modes (a
  thread has no signals of its own).
* the *report* pipe (worker -> supervisor): ``R`` once the worker is ready,
  then ``E`` and the traceback of what ended it, if anything did. End of
  file on it is how a thread worker says it has finished.

The graceful shutdown is the order a load balancer expects: set
``worker_info().stopping``; every server stops accepting (its clients go to
the other workers, or are refused so the balancer tries elsewhere);
connections are served until they end, for ``drain`` seconds at most; then
``main`` is cancelled and ``rocket.run`` cancels whatever is left, which runs
its ``finally`` blocks and closes its sockets.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from rocket import _worker_state, ops
from rocket.errors import Cancelled
from rocket.fiber import Fiber
from rocket.group import race
from rocket.request import FiberBody
from rocket.runner import run
from rocket.sched import Spawn, join
from rocket.signals import Signal

__all__ = ["drain_time", "run_worker"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep  # rocket/
#: Seconds kept, out of the grace period, for the cancelled fibers' ``finally`` blocks.
_CANCEL_ALLOWANCE = 1.0


def drain_time(grace: float) -> float:
    """How long connections may run on after a stop, within ``grace`` seconds."""
    return max(0.0, grace - min(_CANCEL_ALLOWANCE, grace / 5))


def run_worker(
    main: Callable[[], FiberBody[Any]],
    info: _worker_state.WorkerInfo,
    pipes: tuple[int, int],
    engine: str,
    cpu: int | None,
    grace: float,
) -> int:
    """Run one worker to the end; returns its exit status (0: main ended or drained).

    ``pipes`` is (stop pipe's read end, report pipe's write end); both are
    closed here. ``cpu`` pins the calling thread (a whole worker process, or
    one worker thread) to that CPU.
    """
    stop_fd, report_fd = pipes

    def report_ready() -> None:
        _write(report_fd, b"R")

    info._report_ready = report_ready
    _worker_state.install(info)
    status = 0
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        run(_worker_body(main, stop_fd, grace), engine=engine)
        if info._signalled:
            status = 128 + signal.SIGTERM
    except BaseException as exc:
        if not isinstance(exc, SystemExit) or exc.code not in (None, 0):
            text = _format(exc)
            sys.stderr.write(f"rocket worker {info.index} (pid {os.getpid()}) failed:\n{text}")
            _write(report_fd, b"E" + text.encode(errors="replace"))
            status = 1
    finally:
        _worker_state.install(None)
        for fd in pipes:
            os.close(fd)
    return status


def start_process(
    close_fds: list[int], body: Callable[[], int]
) -> int:  # pragma: no cover - runs in the child
    """Fork; the child closes the supervisor's fds, runs ``body`` and exits. Returns the pid."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        signal.set_wakeup_fd(-1)  # the supervisor's: its signals are not ours
        # Ctrl-C reaches the whole process group: the supervisor turns it into a stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # rocket.run's handling, if sent to us
        for fd in close_fds:
            os.close(fd)
        status = body()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


def _worker_body(main: Callable[[], FiberBody[Any]], stop_fd: int, grace: float) -> Any:
    body = main()
    if not (inspect.isgenerator(body) or inspect.iscoroutine(body)):
        raise TypeError(
            f"run_workers() argument 'main' must be a function that returns a generator or "
            f"coroutine (a def with yield, or an async def), but it returned {body!r:.60}"
        )
    info = _worker_state.current_info()
    fiber: Fiber[Any] = yield Spawn(body, "main")
    stopper = yield Spawn(_stop_when_asked(stop_fd, fiber, grace), "worker stop pipe")
    try:
        return (yield join(fiber))
    except Cancelled:
        if info.stopping.is_set():
            return None  # cancelled when the drain ran out: a graceful stop all the same
        raise
    finally:
        stopper.cancel()


def _stop_when_asked(stop_fd: int, main: Fiber[Any], grace: float) -> Any:
    info = _worker_state.current_info()
    asked = ops.Read(stop_fd, 1, None)  # a byte, or b"" if the supervisor died
    if threading.current_thread() is threading.main_thread():
        # A worker process may get SIGTERM itself (systemd signals the whole group):
        # it drains the same way, and exits with 143 so that, unless everyone is
        # stopping, the supervisor starts another.
        which, data = yield race(asked, Signal(signal.SIGTERM))
        info._signalled = which == 1
        if which == 0 and not data:
            _exit_after(grace)  # the supervisor is gone: nobody else would kill us
    else:
        yield asked
    info.stopping.set()
    for server in _worker_state.servers():
        server.stop_accepting()
    yield ops.Sleep(drain_time(grace))
    main.cancel()


def _exit_after(seconds: float) -> None:
    """End the process in ``seconds``, even if a fiber ignores its cancellation."""
    timer = threading.Timer(seconds, os._exit, args=(1,))
    timer.daemon = True
    timer.start()


def _format(error: BaseException) -> str:
    """The traceback, without the frames of rocket that lead to the worker's own code."""
    report = traceback.TracebackException.from_exception(error)
    frames = list(report.stack)
    while len(frames) > 1 and frames[0].filename.startswith(_PACKAGE):
        del frames[0]
    report.stack = traceback.StackSummary.from_list(frames)
    return "".join(report.format())


def _write(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:  # the supervisor is gone: nobody to tell
        pass
