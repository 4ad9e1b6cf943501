"""One blocking call in a thread of its own, whose result wakes the loop through an eventfd.

The io_uring engine uses it for an ``open`` that may wait for a FIFO's peer
forever: such a call must not hold a worker of the pool (:mod:`rocket.engines._workers`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BlockingCall"]


class _Handoff:
    """What a :class:`BlockingCall`'s thread shares with the loop (under ``lock``)."""

    __slots__ = ("abandoned", "fd", "lock", "outcome", "undo")

    def __init__(self, undo: Callable[[Any], None]) -> None:
        self.lock = threading.Lock()
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        self.outcome: tuple[Any, BaseException | None] | None = None
        self.abandoned = False
        self.undo = undo

    def run(self, func: Callable[[], Any]) -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (func(), None)
        except BaseException as exc:  # delivered to the loop, never lost here
            outcome = (None, exc)
        with self.lock:
            if self.abandoned:  # nobody waits any more: undo it (close the fd it opened)
                self._drop(outcome)
                return
            self.outcome = outcome
            os.eventfd_write(self.fd, 1)  # under the lock: abandon() cannot close fd first

    def _drop(self, outcome: tuple[Any, BaseException | None]) -> None:
        if outcome[1] is None:
            try:
                self.undo(outcome[0])
            except OSError:
                pass
        os.close(self.fd)


class BlockingCall:
    """One blocking call (an open that may wait for a FIFO's peer) in a thread of its own.

    Its result is ready when :attr:`fd` (an eventfd) becomes readable, so the
    io_uring engine waits for it with an ordinary read SQE, which timeouts and
    cancellation stop like any other. A thread of its own, not the pool: such
    a call may never return (no writer ever comes), and must not hold a worker.
    If the loop gives up first (the object is dropped before :meth:`result`),
    a late result is undone with ``undo`` (``os.close`` for an fd) in the thread.
    """

    def __init__(self, func: Callable[[], Any], undo: Callable[[Any], None]) -> None:
        self._handoff = handoff = _Handoff(undo)
        self.fd = handoff.fd
        self.buffer = bytearray(8)  # for the eventfd read
        self._taken = False
        threading.Thread(
            target=handoff.run, args=(func,), name="rocket-blocking", daemon=True
        ).start()

    def result(self) -> Any:
        """The call's return value (raises its exception); only once :attr:`fd` was read."""
        handoff = self._handoff
        with handoff.lock:
            assert handoff.outcome is not None
            self._taken = True
            os.close(handoff.fd)
            value, error = handoff.outcome
        if error is not None:
            raise error
        return value

    def __del__(self) -> None:
        """Dropped unanswered (cancelled, timed out): undo a result that came or comes."""
        if self._taken:
            return
        handoff = self._handoff
        with handoff.lock:
            if handoff.outcome is None:
                handoff.abandoned = True  # the thread undoes it when the call returns
            else:
                handoff._drop(handoff.outcome)
