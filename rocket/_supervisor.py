"""The supervisor of :func:`rocket.run_workers`: the parent's loop over its workers.

See :mod:`rocket.workers` for what it does; this module is how. One
``select`` (epoll) waits on each worker's pidfd (readable once the process
has exited; a thread worker closes its report pipe instead), each report
pipe, and the pipe that ``signal.set_wakeup_fd`` writes to; restarts and
the end of the grace period are the select's timeout.
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
from rocket._worker_state import WorkerInfo
from rocket.request import FiberBody

__all__ = [
    "FIRST_BACKOFF",
    "LAST_BACKOFF",
    "MAX_FAILED_STARTS",
    "STARTUP_SECONDS",
    "Supervisor",
]

#: Failed starts in a row (in one worker slot) after which the supervisor gives up.
MAX_FAILED_STARTS = 5
#: A worker that ran this long counts as started even if it never said it was ready.
STARTUP_SECONDS = 5.0
#: The pause before the first restart of a slot; it doubles, up to LAST_BACKOFF.
FIRST_BACKOFF = 0.1
LAST_BACKOFF = 5.0


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


class Supervisor:
    """Starts the workers, watches them, and stops them; see the module docstring."""

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
        # Invariant: (message, traceback) once the supervisor gave up.
        self.failure: tuple[str, str] | None = None
        self.killed: list[int] = []

    def run(self) -> tuple[str, str] | None:
        """Run the workers to the end; returns (message, traceback) if it went wrong.

        Raises:
            KeyboardInterrupt, SystemExit: a second signal cut the shutdown short.
        """
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
        return self._outcome()

    def _outcome(self) -> tuple[str, str] | None:
        if self.forced:
            raise KeyboardInterrupt if self.signal == signal.SIGINT else SystemExit(143)
        if self.failure is None and self.killed:
            which = ", ".join(str(index) for index in self.killed)
            message = (
                f"run_workers(): worker(s) {which} did not stop within the grace period of "
                f"{self.grace:g} s and were killed; give a larger grace=, or make handlers "
                "return when worker_info().stopping is set"
            )
            return message, ""
        return self.failure

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
                if slot.thread is not None:
                    self._forget(slot)  # a thread cannot be killed: left to die with the process
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
            self.failure = (
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
