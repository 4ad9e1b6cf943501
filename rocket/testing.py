"""A deterministic engine for testing your own fibers: virtual time, scripted I/O.

:class:`VirtualEngine` never touches the kernel and never waits. Its clock
starts at 0 and jumps straight to the next thing that can happen, so a fiber
that sleeps for an hour, or a ``fail_after(30)`` that runs out, finishes at
once and always in the same order. I/O is scripted: you say what each request
on an fd (or path) returns, after how much virtual time; a request with no
script left waits until it is cancelled -- like a peer that never answers::

    import rocket
    from rocket.testing import VirtualEngine

    def fetch(sock):
        with rocket.move_on_after(5) as scope:
            return (yield rocket.recv(sock))
        return "gave up" if scope.timed_out else None

    engine = VirtualEngine()
    engine.script("recv", 7, b"hello", delay=1.0)  # the first recv on fd 7: after 1 s
    assert rocket.run(fetch(7), engine=engine) == b"hello"
    assert engine.now == 1.0
    assert rocket.run(fetch(7), engine=engine) == "gave up"  # nothing scripted: 5 s later
    assert engine.now == 6.0

Results are given as the request would return them (``bytes`` for ``recv``,
``(socket, address)`` for ``accept``...); an exception instance is raised in
the fiber instead. ``to_thread`` jobs run at once, in the loop's thread
(``max_threads`` is accepted and has no effect).

Threads calling in (``loop.call_soon_threadsafe``...) wake the loop through a
real fd (:meth:`VirtualEngine.wake_fd`): it is checked at every wait, and
waited for in real time, the virtual clock standing still, when nothing
virtual is due. (So a fiber waiting for a thread under a virtual timeout
times out at once if the thread has not called yet.)

A :class:`~rocket.Stream` reads with ``stream_recv`` requests, whose verb is
``recv``: script them as ``"recv"`` (each scripted result answers one read; the
multishot receive of the io_uring engine has no counterpart here).

Invariants: every submitted token completes exactly once (cancelled ones with
:class:`~rocket.Cancelled`); events due at the same virtual time complete in
the order they were scheduled.
"""

from __future__ import annotations

import heapq
import itertools
import os
import select
from collections import deque
from typing import Any

from rocket._waitall import wait_all_blocked
from rocket.engines import Completion, closed_completion
from rocket.errors import Cancelled
from rocket.ops import Sleep
from rocket.request import IORequest

__all__ = ["VirtualEngine", "wait_all_blocked"]


def _target(request: IORequest[Any]) -> Any:
    """What a script is keyed on: the request's fd, else its path."""
    return getattr(request, "fd", getattr(request, "path", None))


class VirtualEngine:
    """An engine with a virtual clock and scripted I/O; see the module docstring."""

    name = "virtual"

    def __init__(self, start: float = 0.0) -> None:
        #: The virtual time, in seconds; only ever moves forward.
        self.now = float(start)
        self._scripts: dict[tuple[str, Any], deque[tuple[float, Any]]] = {}
        self._events: list[tuple[float, int, int]] = []  # (due, order, token): a heap
        self._results: dict[int, Any] = {}  # token -> value or exception, for scheduled events
        self._waiting: dict[int, IORequest[Any]] = {}  # submitted, not completed
        self._ready: list[Completion] = []
        self._order = itertools.count()
        self._real: set[int] = set()  # fds whose reads are real (wake-ups from threads)
        #: Accepted for rocket.run(max_threads=...); to_thread jobs run inline anyway.
        self.max_threads = 1

    def clock(self) -> float:
        """The executor's clock while this engine runs it."""
        return self.now

    def script(self, verb: str, target: Any, *results: Any, delay: float = 0.0) -> None:
        """Queue ``results`` for the next ``verb`` requests on ``target`` (an fd or path).

        Each result completes its request ``delay`` virtual seconds after the
        request is made. A socket object may be given for its fd.

        Raises:
            ValueError: ``delay`` is negative.
        """
        if delay < 0:
            raise ValueError(f"script() argument 'delay' must be >= 0, got {delay!r}")
        if hasattr(target, "fileno"):
            target = target.fileno()
        queue = self._scripts.setdefault((verb, target), deque())
        queue.extend((float(delay), result) for result in results)

    # ----------------------------------------------------------- the engine

    def wake_fd(self, fd: int) -> None:
        """Perform reads of the real fd ``fd`` (a thread-safe wake-up's eventfd) for real."""
        self._real.add(fd)

    def _read_real(self, timeout: float | None) -> None:
        """Complete the reads of real fds that are readable (waiting up to ``timeout``)."""
        reads = {fd: t for t, r in self._waiting.items() if (fd := _target(r)) in self._real}
        if reads:
            for fd in select.select(list(reads), [], [], timeout)[0]:
                del self._waiting[reads[fd]]
                self._ready.append((reads[fd], os.read(fd, 8), None))

    def submit(self, token: int, request: IORequest[Any]) -> None:
        """Schedule the request's completion, or leave it waiting (no script)."""
        self._waiting[token] = request
        if type(request) is Sleep:
            self._schedule(token, request.seconds, None)
            return
        call = getattr(request, "call", None)
        if callable(call):  # to_thread: run it now
            try:
                self._schedule(token, 0.0, call())
            except Exception as exc:
                self._schedule(token, 0.0, exc)
            return
        queue = self._scripts.get((request.verb, _target(request)))
        if queue:
            delay, result = queue.popleft()
            self._schedule(token, delay, result)

    def _schedule(self, token: int, delay: float, result: Any) -> None:
        self._results[token] = result
        heapq.heappush(self._events, (self.now + delay, next(self._order), token))

    def cancel(self, token: int) -> None:
        """Complete ``token`` with Cancelled unless it already completed."""
        if self._waiting.pop(token, None) is not None:
            self._results.pop(token, None)  # its heap entry is skipped when it comes up
            self._ready.append((token, None, Cancelled()))

    def notify_closing(self, fd: int) -> None:
        """End every request still waiting on ``fd`` as the real engines do
        (``rocket.engines.closed_completion``)."""
        for token, request in list(self._waiting.items()):
            if getattr(request, "fd", None) == fd:
                del self._waiting[token]
                self._results.pop(token, None)
                self._ready.append(closed_completion(token, request))

    def wait(self, timeout: float | None) -> list[Completion]:
        """Jump to the next event (at most ``timeout`` ahead) and return what is due.

        Raises:
            RuntimeError: asked to wait with no limit while nothing scripted or
                timed can ever complete (the fibers would wait forever).
        """
        if self._real:
            self._read_real(0)
        if not self._ready:
            self._drop_stale()
            if self._events:
                due = self._events[0][0]
                limit = self.now + timeout if timeout is not None else due
                self.now = max(self.now, min(due, limit))
            elif timeout is None and self._real:
                self._read_real(None)  # only a thread can end the wait
            elif timeout is None:
                stuck = ", ".join(r.describe() for r in self._waiting.values()) or "nothing"
                raise RuntimeError(
                    f"rocket.testing: the fibers wait for requests that no script will "
                    f"complete: {stuck}; script them with VirtualEngine.script()"
                )
            elif timeout > 0:
                self.now += timeout
        while self._events and self._events[0][0] <= self.now:
            _, _, token = heapq.heappop(self._events)
            if token in self._results and self._waiting.pop(token, None) is not None:
                result = self._results.pop(token)
                if isinstance(result, BaseException):
                    self._ready.append((token, None, result))
                else:
                    self._ready.append((token, result, None))
        ready, self._ready = self._ready, []
        return ready

    def _drop_stale(self) -> None:
        """Forget heap entries of requests that were cancelled."""
        while self._events and self._events[0][2] not in self._results:
            heapq.heappop(self._events)

    def close(self) -> None:
        """Cancel whatever still waits (nothing is real, so nothing to release)."""
        for token in list(self._waiting):
            self.cancel(token)
        self._ready.clear()
