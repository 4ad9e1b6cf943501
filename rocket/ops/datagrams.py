"""Datagram requests: ``sendto`` and ``recvfrom`` on UDP (or Unix datagram) sockets.

A datagram arrives whole or not at all; ``recvfrom(sock, size)`` truncates one
longer than ``size`` (as ``socket.recvfrom`` does). Addresses must be numeric
(``("127.0.0.1", 53)``, ``("::1", 53)``) or, for ``AF_UNIX``, a path.
"""

from __future__ import annotations

import socket
from typing import Any

from rocket import _checks
from rocket.ops._base import FdRequest, socket_address, socket_family

__all__ = ["DATAGRAM_SIZE", "RecvFrom", "SendTo", "recvfrom", "sendto"]

#: Large enough for any UDP datagram over IPv4 or IPv6 (without jumbograms).
DATAGRAM_SIZE = 65536


class SendTo(FdRequest[int]):
    """Send one datagram to ``address``; the result is its size in bytes."""

    __slots__ = ("address", "data", "family")
    verb = "sendto"

    def __init__(self, sock: Any, data: Any, address: Any) -> None:
        self.fd = _checks.fileno(sock, "sendto", "sock")
        self.data = _checks.data(data, "sendto")
        self.family = socket_family(sock, self.fd, "sendto")
        self.address = socket_address(self.family, address, "sendto")


class RecvFrom(FdRequest[tuple[bytes, Any]]):
    """Receive one datagram; the result is ``(data, sender_address)``.

    ``sock`` is kept: engines that wait for readiness first and then call
    ``recvfrom`` need a socket object to call it on.
    """

    __slots__ = ("size", "sock")
    verb = "recvfrom"

    def __init__(self, sock: Any, size: int) -> None:
        self.fd = _checks.fileno(sock, "recvfrom", "sock")
        self.size = _checks.size(size, "recvfrom")
        self.sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None

    def receive(self) -> tuple[bytes, Any]:
        """Call ``recvfrom`` without waiting (``BlockingIOError`` if nothing is there)."""
        if self.sock is not None:
            return self.sock.recvfrom(self.size, socket.MSG_DONTWAIT)
        sock = socket.socket(fileno=self.fd)
        try:
            return sock.recvfrom(self.size, socket.MSG_DONTWAIT)
        finally:
            sock.detach()


def sendto(sock: Any, data: Any, address: Any) -> SendTo:
    """Send ``data`` as one datagram to ``address``; the result is the byte count."""
    return SendTo(sock, data, address)


def recvfrom(sock: Any, size: int = DATAGRAM_SIZE) -> RecvFrom:
    """Receive one datagram (at most ``size`` bytes); the result is ``(data, address)``."""
    return RecvFrom(sock, size)
