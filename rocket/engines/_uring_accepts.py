"""Accepts on io_uring with multishot on: one multishot accept per listening socket.

Part of the engine's stream receives (``UringEngine(multishot=True)``, see
:mod:`rocket.engines._uring_multishot`, which routes these CQEs here). The first
``accept`` on a listener arms ``io_uring_prep_multishot_accept``; each new
connection is then a CQE whose ``res`` is its fd. The rules are those of the
stream receives:

* Connections accepted while no request waits are kept per listener, in order,
  for the next ``accept``; a cancelled ``accept`` loses none.
* Back-pressure: above :data:`MOST_KEPT` kept connections (a server at its
  ``max_connections`` stops accepting) the multishot is cancelled, and the
  kernel's listen backlog holds the rest; it is armed again by the next
  ``accept`` that finds fewer kept.
* An error (EMFILE...) ends the multishot; it reaches the first waiting
  ``accept`` once, after the kept connections; the next ones arm afresh.
* ``notify_closing`` (``Server`` closes its listeners through it) cancels the
  multishot and closes every kept fd; a connection that arrives after that is
  closed at once. No fd leaks.
* Several fibers may accept on one listener at once: they wait in order, and
  each connection goes to the first. A time-limited ``accept`` waits the same
  way, with a timer of the stream receives' (``_uring_multishot``).
"""

from __future__ import annotations

import errno
import os
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rocket import ops
from rocket.engines._liburing import CQE_F_MORE
from rocket.errors import Cancelled, os_error

if TYPE_CHECKING:
    from rocket.engines import Completion
    from rocket.engines._liburing import Ring

__all__ = ["MOST_KEPT", "Accepts"]

MOST_KEPT = 64  #: kept connections per listener above which its multishot is stopped


class _Listener:
    """One listening fd's accept state."""

    __slots__ = ("closed", "end", "fd", "kept", "stopping", "user_data", "waiters")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.user_data = 0  # Invariant: the armed multishot's user_data, or 0
        self.kept: deque[int] = deque()  # Invariant: accepted fds nobody took yet, in order
        self.end = 0  # an errno to report after the kept ones (0: none)
        self.waiters: deque[tuple[int, ops.Accept]] = deque()  # in the order they came
        self.stopping = False  # a cancel is on its way (back-pressure)
        self.closed = False


class Accepts:
    """Every listener's multishot accept and kept connections; see the module docstring."""

    def __init__(
        self,
        ring: Ring,
        ready: Callable[[Any], None],
        ids: Callable[[], int],
        answered: Callable[[int], None],
    ) -> None:
        self._ring = ring
        self._ready = ready
        self._ids = ids
        self._answered = answered  # a waiter was answered: its time limit goes
        self.by_fd: dict[int, _Listener] = {}
        self.armed: dict[int, _Listener] = {}  # Invariant: until the final CQE
        self._waiting: dict[int, _Listener] = {}

    def submit(self, token: int, r: ops.Accept) -> tuple[Any, Any]:
        listener = self.by_fd.get(r.fd)
        if listener is None:
            listener = self.by_fd[r.fd] = _Listener(r.fd)
        if (listener.kept or listener.end) and not listener.waiters:
            self._ready(self._answer(listener, token, r))
        else:
            listener.waiters.append((token, r))
            self._waiting[token] = listener
            if not listener.user_data:
                self._arm(listener)
        return None, None

    def waiting(self, token: int) -> bool:
        return token in self._waiting

    def _answer(self, listener: _Listener, token: int, r: ops.Accept) -> Completion:
        if listener.kept:
            fd = listener.kept.popleft()
            if not listener.user_data and not listener.end and len(listener.kept) < MOST_KEPT:
                self._arm(listener)
            try:
                return token, ops.accepted_socket(r, fd), None
            except OSError as exc:
                os.close(fd)
                return token, None, os_error(exc.errno or errno.EIO, r.describe())
        err, listener.end = listener.end, 0  # the error, once; the next accept arms afresh
        return token, None, os_error(err, r.describe())

    def _arm(self, listener: _Listener) -> None:
        listener.user_data = self._ids()
        listener.stopping = False
        self.armed[listener.user_data] = listener
        self._ring.prep_multishot_accept(listener.user_data, listener.fd)

    def done(self, user_data: int, res: int, flags: int, out: list[Completion]) -> None:
        listener = self.armed[user_data]
        if not flags & CQE_F_MORE:
            del self.armed[user_data]
            listener.user_data = 0
        if listener.closed:
            if res >= 0:
                os.close(res)  # arrived after the close: nobody's
            return
        if res >= 0:
            listener.kept.append(res)
            if len(listener.kept) > MOST_KEPT and listener.user_data and not listener.stopping:
                listener.stopping = True
                self._ring.prep_cancel(listener.user_data)
        elif not (res == -errno.ECANCELED and listener.stopping):
            listener.end = -res
        waiters = listener.waiters
        while waiters and (listener.kept or listener.end):
            token, r = waiters.popleft()
            del self._waiting[token]
            self._answered(token)
            out.append(self._answer(listener, token, r))
        if listener.user_data or listener.end:
            return
        if len(listener.kept) < MOST_KEPT:
            self._arm(listener)  # ended without an error (e.g. a CQ overflow): go on

    def cancel(self, token: int, error: BaseException | None = None) -> bool:
        """Withdraw a waiting accept: it completes with ``error`` (Cancelled); False if none."""
        listener = self._waiting.pop(token, None)
        if listener is None:
            return False
        listener.waiters = deque(w for w in listener.waiters if w[0] != token)
        self._answered(token)
        self._ready((token, None, Cancelled() if error is None else error))
        return True

    def closing(self, fd: int) -> bool:
        """``fd`` closes: fail its waiter (EBADF), close the kept fds, cancel the multishot."""
        listener = self.by_fd.pop(fd, None)
        if listener is None:
            return False
        listener.closed = True
        while listener.kept:
            os.close(listener.kept.popleft())
        for token, r in listener.waiters:
            del self._waiting[token]
            self._answered(token)
            self._ready((token, None, os_error(errno.EBADF, r.describe())))
        listener.waiters.clear()
        if listener.user_data:
            self._ring.prep_cancel(listener.user_data)
            return True
        return False
