"""How the io_uring engine performs the less common socket requests.

A base class of :class:`~rocket.engines.uring.UringEngine`, as
:class:`~rocket.engines._uring_files.UringFiles` is: ``recv_into``, ``accept``,
``connect``, ``sendto``, ``recvfrom`` (a poll for input, then a ``recvfrom``
that does not wait: see the engine's docstring on datagrams) and
``wait_readable``. The hot ones (``recv``, ``send``, ``sendall``) stay in the
engine itself. Each prep returns ``(finisher, what to keep alive)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import _liburing
from rocket.engines._uring_finish import accepted, copy_into, count, nothing, received_from

__all__ = ["UringSockets"]

_Finisher = Callable[[int, Any], Any]


class UringSockets:
    """The socket requests' preps that are not on an echo server's hot path."""

    __slots__ = ()

    _ring: _liburing.Ring

    def _watch(self, token: int, fd: int) -> None:
        raise NotImplementedError

    def _recv_into(self, token: int, r: ops.RecvInto) -> tuple[_Finisher, Any]:
        if memoryview(r.buffer).nbytes == 0:
            self._ring.prep_nop(token)
            return count, None
        self._watch(token, r.fd)
        if type(r.buffer) is bytearray:
            self._ring.prep_recv(token, r.fd, r.buffer)
            return count, None
        scratch = bytearray(memoryview(r.buffer).nbytes)
        self._ring.prep_recv(token, r.fd, scratch)
        return copy_into, (r.buffer, scratch)

    def _accept(self, token: int, r: ops.Accept) -> tuple[_Finisher, Any]:
        self._ring.prep_accept(token, r.fd)
        self._watch(token, r.fd)
        return accepted, r

    def _connect(self, token: int, r: ops.Connect) -> tuple[_Finisher, Any]:
        sockaddr = self._ring.new_sockaddr(r.family, r.address)
        self._ring.prep_connect(token, r.fd, sockaddr)
        self._watch(token, r.fd)
        return nothing, sockaddr

    def _sendto(self, token: int, r: ops.SendTo) -> tuple[_Finisher, Any]:
        sockaddr = self._ring.new_sockaddr(r.family, r.address)
        self._ring.prep_sendto(token, r.fd, r.data, sockaddr)
        self._watch(token, r.fd)
        return count, sockaddr

    def _recvfrom(self, token: int, r: ops.RecvFrom) -> tuple[_Finisher, Any]:
        self._ring.prep_poll_in(token, r.fd)
        self._watch(token, r.fd)
        return received_from, r

    def _wait_readable(self, token: int, r: ops.WaitReadable) -> tuple[_Finisher, Any]:
        self._ring.prep_poll_in(token, r.fd)  # (res is the poll mask: the result is None)
        self._watch(token, r.fd)
        return nothing, None
