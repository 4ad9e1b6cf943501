"""``rocket.run_workers``: one executor and one engine per core, under a supervisor.

The io_uring runtimes that scale (glommio, monoio, tokio-uring) are
thread-per-core: one ring and one executor per core, nothing shared, and the
kernel spreads connections among the listeners of one port
(``SO_REUSEPORT``: ``serve_tcp(..., reuse_port=True)``). With the GIL,
CPython runs Python code on one core per *process*, so rocket's workers are
processes (forked, so ``main`` may be any function, closures included); on
a free-threaded build they may be threads (``mode="threads"``).

The supervisor is the parent process. It waits, in one ``select`` (epoll),
on each worker's pidfd (readable when the process exits; a thread worker
closes its report pipe instead), each worker's report pipe, and a pipe that
``signal.set_wakeup_fd`` writes to, and it acts on what it sees:

* a worker that **fails before it is ready** (and within
  :data:`STARTUP_SECONDS`) is a failed start; after :data:`MAX_FAILED_STARTS`
  in a row in one slot the supervisor stops the others and raises
  :class:`WorkersFailed` with that worker's traceback. Any other failure
  (an exception later, ``kill -9``, the OOM killer) is restarted after a
  back-off that doubles with each failure in a row, from :data:`FIRST_BACKOFF`
  up to :data:`LAST_BACKOFF`; a worker that ran :data:`STARTUP_SECONDS` starts
  the count again.
  A worker whose ``main`` returns is done and is not restarted.
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
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rocket import _worker_child
from rocket._worker_state import WorkerInfo, worker_info, worker_ready
from rocket.errors import RocketError
from rocket.request import FiberBody

__all__ = ["WorkerInfo", "WorkersFailed", "run_workers", "worker_info", "worker_ready"]

#: Failed starts in a row (in one worker slot) after which the supervisor gives up.
MAX_FAILED_STARTS = 5
#: A worker that ran this long counts as started even if it never said it was ready.
STARTUP_SECONDS = 5.0
#: The pause before the first restart of a slot; it doubles, up to LAST_BACKOFF.
FIRST_BACKOFF = 0.1
LAST_BACKOFF = 5.0
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
    _Supervisor(main, count, cpus if pin else [], mode, float(grace), engine, ready).run()


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


class _Slot:
    """One worker's place: what runs there now, and how its starts went."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid = 0  # processes: the worker's pid (0: none running)
        self.thread: threading.Thread | None = None
        self.exit_fd = -1  # processes: a pidfd, readable once the process has exited
        self.report_fd = -1  # the report pipe's read end (-1: closed)
        self.stop_fd = -1  # the stop pipe's write end (-1: closed)
        self.status: int | None = None  # thread workers: the exit status they returned
        self.report = bytearray()
        self.started = 0.0
        self.ready = False
        self.failed_starts = 0  # in a row, before the worker was ready
        self.failures = 0  # in a row, of any kind (the back-off); reset by a long run
        self.restart_at: float | None = None
        self.done = False  # main returned: not restarted

    @property
    def running(self) -> bool:
        return self.report_fd >= 0 or self.exit_fd >= 0

    def traceback(self) -> str:
        _, tag, text = bytes(self.report).partition(b"E")
        return text.decode(errors="replace") if tag else ""


class _Supervisor:
    def __init__(
        self,
        main: Callable[[], FiberBody[Any]],
        count: int,
        cpus: list[int],
        mode: str,
        grace: float,
        engine: str,
        ready: Callable[[], object] | None,
    ) -> None:
        self.main, self.count, self.cpus, self.mode = main, count, cpus, mode
        self.grace, self.engine, self.on_ready = grace, engine, ready
        self.slots = [_Slot(i) for i in range(count)]
        self.selector = selectors.DefaultSelector()
        self.signal_r, self.signal_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.signal: int | None = None  # the signal that started the shutdown
        self.forced = False
        self.deadline: float | None = None  # set when the shutdown starts
        self.announced = False
        self.error: WorkersFailed | None = None
        self.killed: list[int] = []

    def run(self) -> None:
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        old_wakeup = signal.set_wakeup_fd(self.signal_w, warn_on_full_buffer=False)
        try:
            self.selector.register(self.signal_r, selectors.EVENT_READ, None)
            for slot in self.slots:
                self._start(slot)
            while any(slot.running or slot.restart_at is not None for slot in self.slots):
                self._step()
        finally:
            for slot in self.slots:
                self._kill(slot)
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.selector.close()
            os.close(self.signal_r)
            os.close(self.signal_w)
        self._outcome()

    def _outcome(self) -> None:
        if self.forced:
            raise KeyboardInterrupt if self.signal == signal.SIGINT else SystemExit(143)
        if self.error is not None:
            raise self.error
        if self.killed:
            which = ", ".join(str(index) for index in self.killed)
            raise WorkersFailed(
                f"run_workers(): worker(s) {which} did not stop within the grace period of "
                f"{self.grace:g} s and were killed; give a larger grace=, or make handlers "
                "return when worker_info().stopping is set"
            )

    # ------------------------------------------------------------ the loop

    def _step(self) -> None:
        now = time.monotonic()
        waits = [s.restart_at for s in self.slots if s.restart_at is not None]
        if self.deadline is not None:
            waits.append(self.deadline)
        timeout = max(0.0, min(waits) - now) if waits else None
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self._read_signals()
            # (each fd is checked: reaping a worker reads and closes its report pipe)
            elif key.data[0] == "report" and key.fd == key.data[1].report_fd:
                self._read_report(key.data[1])
            elif key.data[0] == "exit" and key.fd == key.data[1].exit_fd:
                self._reap(key.data[1])
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                slot.restart_at = None
                self._start(slot)
        if self.deadline is not None and now >= self.deadline:
            for slot in self.slots:
                if slot.running and slot.pid:
                    self.killed.append(slot.index)
                    self._kill(slot)
            if self.mode == "threads" and any(slot.running for slot in self.slots):
                self.killed.extend(slot.index for slot in self.slots if slot.running)
                for slot in self.slots:  # threads cannot be killed: leave them (daemons)
                    self._forget(slot)

    def _on_signal(self, signum: int, frame: object) -> None:
        """The Python-level handler: the wakeup fd wakes the loop, which acts."""
        if self.signal is None:
            self.signal = signum
        else:
            self.forced = True
            self.signal = signum  # like rocket.run: what the second one means is raised

    def _read_signals(self) -> None:
        try:
            data = os.read(self.signal_r, 64)
        except BlockingIOError:
            return
        if self.forced:
            self._stop_all()
            for slot in self.slots:
                self._kill(slot)
        elif self.signal is not None and data:
            self._stop_all()

    def _stop_all(self) -> None:
        """Ask every worker for a graceful shutdown; none is restarted after this."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace
        for slot in self.slots:
            slot.restart_at = None
            self._ask_to_stop(slot)

    def _ask_to_stop(self, slot: _Slot) -> None:
        if slot.stop_fd >= 0:
            try:
                os.write(slot.stop_fd, b"S")
            except OSError:
                pass

    # ------------------------------------------------------------ workers

    def _start(self, slot: _Slot) -> None:
        stop_r, stop_w = os.pipe2(os.O_CLOEXEC)
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(report_r, False)
        info = WorkerInfo(slot.index, self.count)
        cpu = self.cpus[slot.index % len(self.cpus)] if self.cpus else None
        pipes = (stop_r, report_w)

        def body() -> int:
            return _worker_child.run_worker(self.main, info, pipes, self.engine, cpu, self.grace)

        slot.report.clear()
        slot.ready, slot.status, slot.started = False, None, time.monotonic()
        if self.mode == "threads":
            thread = threading.Thread(target=self._thread, args=(slot, body), daemon=True)
            slot.thread = thread
            thread.start()
        else:
            supervisor_fds = [
                self.signal_r,
                self.signal_w,
                self.selector.fileno(),
                stop_w,
                report_r,
            ]
            for other in self.slots:
                supervisor_fds += [
                    fd for fd in (other.exit_fd, other.report_fd, other.stop_fd) if fd >= 0
                ]
            slot.pid = _worker_child.start_process(supervisor_fds, body)
            os.close(stop_r)
            os.close(report_w)
            slot.exit_fd = os.pidfd_open(slot.pid)
            self.selector.register(slot.exit_fd, selectors.EVENT_READ, ("exit", slot))
        slot.stop_fd, slot.report_fd = stop_w, report_r
        self.selector.register(report_r, selectors.EVENT_READ, ("report", slot))
        if self.deadline is not None:
            self._ask_to_stop(slot)

    @staticmethod
    def _thread(slot: _Slot, body: Callable[[], int]) -> None:
        slot.status = body()  # then body has closed the report pipe: the supervisor sees EOF

    def _read_report(self, slot: _Slot, *, last: bool = False) -> bool:
        """Take what the worker wrote; False once the pipe is closed (or, if ``last``, empty)."""
        try:
            data = os.read(slot.report_fd, 65536)
        except BlockingIOError:
            if not last:
                return True
            data = b""  # a process of its own still holds the pipe: stop listening
        except OSError:
            data = b""
        if data:
            slot.report += data
            if not slot.ready and slot.report.startswith(b"R"):
                slot.ready = True
                self._maybe_announce()
            return True
        self.selector.unregister(slot.report_fd)
        os.close(slot.report_fd)
        slot.report_fd = -1
        if slot.thread is not None:
            slot.thread.join()
            slot.thread = None
            self._ended(slot, slot.status or 0, "")
        return False

    def _reap(self, slot: _Slot) -> None:
        """The worker process has exited: collect it and decide what comes next."""
        while slot.report_fd >= 0 and self._read_report(slot, last=True):
            pass  # what it wrote before it died
        self.selector.unregister(slot.exit_fd)
        os.close(slot.exit_fd)
        slot.exit_fd = -1
        _, status = os.waitpid(slot.pid, 0)
        slot.pid = 0
        code = os.waitstatus_to_exitcode(status)
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        self._ended(slot, code, how)

    def _ended(self, slot: _Slot, code: int, how: str) -> None:
        if slot.stop_fd >= 0:
            os.close(slot.stop_fd)
            slot.stop_fd = -1
        if code == 0 or self.deadline is not None:
            slot.done = code == 0
            return
        now = time.monotonic()
        started = slot.ready or now - slot.started >= STARTUP_SECONDS
        slot.failed_starts = 0 if started else slot.failed_starts + 1
        slot.failures = 1 if now - slot.started >= STARTUP_SECONDS else slot.failures + 1
        text = slot.traceback()
        sys.stderr.write(
            f"rocket: worker {slot.index} {how or 'failed'}"
            f"{'' if started else ' before it was ready'}; "
        )
        if slot.failed_starts >= MAX_FAILED_STARTS:
            sys.stderr.write("giving up\n")
            self.error = WorkersFailed(
                f"run_workers(): worker {slot.index} failed {slot.failed_starts} times in a row "
                f"before it was ready; the last time it {how or 'raised'}:",
                text,
            )
            self._stop_all()
            return
        backoff = min(FIRST_BACKOFF * 2 ** (slot.failures - 1), LAST_BACKOFF)
        sys.stderr.write(f"restarting it in {backoff:g} s\n")
        slot.restart_at = now + backoff

    def _kill(self, slot: _Slot) -> None:
        if slot.pid:
            try:
                os.kill(slot.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(slot)

    def _forget(self, slot: _Slot) -> None:
        for fd in (slot.report_fd, slot.stop_fd):
            if fd >= 0:
                try:
                    self.selector.unregister(fd)
                except KeyError:
                    pass
                os.close(fd)
        slot.report_fd = slot.stop_fd = -1
        slot.thread = None

    def _maybe_announce(self) -> None:
        if not self.announced and all(slot.ready for slot in self.slots):
            self.announced = True
            if self.on_ready is not None:
                self.on_ready()
