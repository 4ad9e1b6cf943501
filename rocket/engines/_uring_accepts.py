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
* An error (EMFILE...) ends the multishot; it reaches the next ``accept``
  once, after the kept connections, and the one after arms afresh.
* ``notify_closing`` (``Server`` closes its listeners through it) cancels the
  multishot and closes every kept fd; a connection that arrives after that is
  closed at once. No fd leaks.
* A time-limited ``accept`` takes a kept connection if there is one, else is
  a plain accept SQE with a linked timeout (two accepts on one listener are
  fine: each connection goes to one of them).
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

    __slots__ = ("closed", "end", "fd", "kept", "stopping", "user_data", "waiter")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.user_data = 0  # Invariant: the armed multishot's user_data, or 0
        self.kept: deque[int] = deque()  # Invariant: accepted fds nobody took yet, in order
        self.end = 0  # an errno to report after the kept ones (0: none)
        self.waiter: tuple[int, ops.Accept] | None = None
        self.stopping = False  # a cancel is on its way (back-pressure)
        self.closed = False


class Accepts:
    """Every listener's multishot accept and kept connections; see the module docstring."""

    def __init__(self, ring: Ring, ready: Callable[[Any], None], ids: Callable[[], int]) -> None:
        self._ring = ring
        self._ready = ready
        self._ids = ids
        self.by_fd: dict[int, _Listener] = {}
        self.armed: dict[int, _Listener] = {}  # Invariant: until the final CQE
        self._waiting: dict[int, _Listener] = {}

    def submit(self, token: int, r: ops.Accept) -> tuple[Any, Any]:
        listener = self.by_fd.get(r.fd)
        if listener is None:
            listener = self.by_fd[r.fd] = _Listener(r.fd)
        if listener.waiter is not None:  # a second acceptor: wait for a connection of its own
            raise RuntimeError(f"{r.describe()}: another accept is already waiting on fd {r.fd}")
        if listener.kept or listener.end:
            self._ready(self._answer(listener, token, r))
        else:
            listener.waiter = (token, r)
            self._waiting[token] = listener
            if not listener.user_data:
                self._arm(listener)
        return None, None

    def limited(self, token: int, r: ops.Timeout[Any], prep: Callable[[int, Any], Any]) -> Any:
        """A time-limited accept: a kept connection now, else a plain accept with its timeout."""
        listener = self.by_fd.get(r.request.fd)  # type: ignore[attr-defined]
        if listener is not None and listener.kept:
            self._ready(self._answer(listener, token, r.request))  # type: ignore[arg-type]
            return None, None
        return prep(token, r)

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
        del self.by_fd[listener.fd]  # the error, once; the next accept arms afresh
        return token, None, os_error(listener.end, r.describe())

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
        waiter = listener.waiter
        if waiter is not None and (listener.kept or listener.end):
            listener.waiter = None
            del self._waiting[waiter[0]]
            out.append(self._answer(listener, *waiter))
        elif not listener.user_data and not listener.end and len(listener.kept) < MOST_KEPT:
            self._arm(listener)  # ended without an error (e.g. a CQ overflow): go on

    def cancel(self, token: int) -> bool:
        listener = self._waiting.pop(token, None)
        if listener is None:
            return False
        listener.waiter = None
        self._ready((token, None, Cancelled()))
        return True

    def closing(self, fd: int) -> bool:
        """``fd`` closes: fail its waiter (EBADF), close the kept fds, cancel the multishot."""
        listener = self.by_fd.pop(fd, None)
        if listener is None:
            return False
        listener.closed = True
        while listener.kept:
            os.close(listener.kept.popleft())
        if listener.waiter is not None:
            token, r = listener.waiter
            listener.waiter = None
            del self._waiting[token]
            self._ready((token, None, os_error(errno.EBADF, r.describe())))
        if listener.user_data:
            self._ring.prep_cancel(listener.user_data)
            return True
        return False
