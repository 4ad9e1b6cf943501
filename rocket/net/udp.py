"""Datagrams: ``sendto`` and ``recvfrom`` on UDP (or Unix datagram) sockets.

Two I/O requests that every engine performs (defined in :mod:`rocket.ops.datagrams`)::

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 9999))
    data, address = yield rocket.recvfrom(sock, 2048)
    yield rocket.sendto(sock, data.upper(), address)
"""

from __future__ import annotations

from rocket.ops.datagrams import DATAGRAM_SIZE, RecvFrom, SendTo, recvfrom, sendto

__all__ = ["DATAGRAM_SIZE", "RecvFrom", "SendTo", "recvfrom", "sendto"]
