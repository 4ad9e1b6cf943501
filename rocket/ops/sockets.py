"""Socket requests: accept, connect, recv, stream_recv, recv_into, send, sendall, shutdown.

Sockets may be given as socket objects or as fds. Results match the standard
library: ``recv`` returns ``b""`` when the peer closed, ``accept`` returns
``(socket.socket, address)``.
"""

from __future__ import annotations

import socket
from typing import Any

from rocket import _checks
from rocket.ops._base import (
    DEFAULT_SIZE,
    FD_LIMIT,
    MAX_SIZE,
    FdRequest,
    fd_of,
    socket_address,
    socket_family,
)

_socket = socket.socket
_new = object.__new__

__all__ = [
    "Accept",
    "Connect",
    "Recv",
    "RecvInto",
    "Send",
    "SendAll",
    "Shutdown",
    "StreamRecv",
    "accept",
    "accepted_socket",
    "connect",
    "recv",
    "recv_into",
    "send",
    "sendall",
    "shutdown",
    "stream_recv",
]


class Accept(FdRequest[tuple[socket.socket, Any]]):
    """Accept a connection on a listening socket."""

    __slots__ = ("family", "proto", "type")
    verb = "accept"

    def __init__(self, sock: Any) -> None:
        self.fd = _checks.fileno(sock, "accept", "sock")
        # Known family/type spare the new socket object three getsockopt calls.
        self.family = getattr(sock, "family", -1)
        self.type = getattr(sock, "type", -1)
        self.proto = getattr(sock, "proto", -1)


class Connect(FdRequest[None]):
    """Connect a socket to a numeric address (resolve names beforehand)."""

    __slots__ = ("address", "family")
    verb = "connect"

    def __init__(self, sock: Any, address: Any) -> None:
        self.fd = _checks.fileno(sock, "connect", "sock")
        self.family = socket_family(sock, self.fd, "connect")
        self.address = socket_address(self.family, address, "connect")


class Recv(FdRequest[bytes]):
    """Receive up to ``size`` bytes; ``b""`` when the peer closed."""

    __slots__ = ("size",)
    verb = "recv"

    def __init__(self, sock: Any, size: int) -> None:
        self.fd = fd_of(sock, "recv")
        self.size = (
            size if size.__class__ is int and 0 <= size <= MAX_SIZE else _checks.size(size, "recv")
        )


class StreamRecv(Recv):
    """Receive up to ``size`` bytes of a byte stream: :class:`Recv`'s result and errors.

    What :class:`~rocket.Stream` reads with. An engine may keep one receive
    armed per socket across requests: the io_uring engine, with multishot on
    (``UringEngine(multishot=True)``, or ``ROCKET_MULTISHOT=1`` in the
    environment), keeps one multishot receive per fd, which fills buffers the
    kernel picks from the engine's pool; bytes that arrive while no request
    waits are kept, in order, for the next one (a ``recv`` on such an fd takes
    them first too). The readiness engine performs it as ``recv``.

    A ``stream_recv`` that ``notify_closing`` stops (``Stream.close``,
    ``rocket.close`` from another fiber) ends with ``b""`` on every engine: the
    stream closed under its reader has ended (a ``recv`` gets EBADF).

    Close such a socket through rocket (``Stream.close``, ``rocket.close``):
    that cancels the multishot. One closed behind the engine's back (a plain
    ``sock.close()``) stays open in the kernel while its multishot holds it,
    and a new socket given the same fd number would read its bytes.
    """

    __slots__ = ()


class RecvInto(FdRequest[int]):
    """Receive into ``buffer``; the result is the number of bytes received."""

    __slots__ = ("buffer",)
    verb = "recv_into"

    def __init__(self, sock: Any, buffer: Any) -> None:
        self.fd = _checks.fileno(sock, "recv_into", "sock")
        self.buffer = _checks.buffer(buffer, "recv_into")


class Send(FdRequest[int]):
    """Send ``data``; the result is how many bytes the kernel took."""

    __slots__ = ("data",)
    verb = "send"

    def __init__(self, sock: Any, data: Any) -> None:
        self.fd = fd_of(sock, "send")
        self.data = data if data.__class__ is bytes else _checks.data(data, "send")


class SendAll(FdRequest[None]):
    """Send all of ``data``, as many sends as it takes; done when the kernel took every byte.

    One request, however many partial sends: the engine sends the rest itself
    (without copying what is left over and over), so a large write stays linear.
    Invariant: the request object is never changed; the engine keeps the progress.
    """

    __slots__ = ("data",)
    verb = "sendall"

    def __init__(self, sock: Any, data: Any, op: str = "sendall") -> None:
        self.fd = fd_of(sock, op)
        self.data = data if data.__class__ is bytes else _checks.data(data, op)


class Shutdown(FdRequest[None]):
    """Shut down one or both directions of a connection."""

    __slots__ = ("how",)
    verb = "shutdown"

    def __init__(self, sock: Any, how: int) -> None:
        self.fd = _checks.fileno(sock, "shutdown", "sock")
        if how not in (socket.SHUT_RD, socket.SHUT_WR, socket.SHUT_RDWR):
            raise ValueError(
                "shutdown() argument 'how' must be socket.SHUT_RD, SHUT_WR or SHUT_RDWR, "
                f"got {how!r}"
            )
        self.how = int(how)


def accepted_socket(request: Accept, fd: int) -> tuple[socket.socket, Any]:
    """Wrap the fd that accept returned as ``(socket.socket, peer address)``."""
    if request.family >= 0:
        sock = socket.socket(request.family, request.type, request.proto, fileno=fd)
    else:
        sock = socket.socket(fileno=fd)
    try:
        address = sock.getpeername()
    except OSError:  # the peer already left; the socket is still the caller's
        address = None
    return sock, address


def accept(sock: Any) -> Accept:
    """Accept a connection; the result is ``(socket.socket, address)``."""
    return Accept(sock)


def connect(sock: Any, address: Any) -> Connect:
    """Connect to a numeric address: ``(ip, port)`` or a Unix socket path."""
    return Connect(sock, address)


# The hot verbs (recv, send, sendall) build their request without the __init__
# frame that calling the class costs (about 100 ns of the ~300): the same checks,
# with a socket object's fd taken inline; anything else goes through fd_of.


def recv(sock: Any, size: int = DEFAULT_SIZE) -> Recv:
    """Receive up to ``size`` bytes; ``b""`` when the peer has closed."""
    request: Recv = _new(Recv)
    fd = sock.fileno() if sock.__class__ is _socket else -1
    request.fd = fd if fd >= 0 else fd_of(sock, "recv")
    request.size = (
        size if size.__class__ is int and 0 <= size <= MAX_SIZE else _checks.size(size, "recv")
    )
    return request


def stream_recv(sock: Any, size: int = DEFAULT_SIZE) -> StreamRecv:
    """Receive up to ``size`` bytes of a stream (``b""`` at its end); see :class:`StreamRecv`."""
    request: StreamRecv = _new(StreamRecv)
    kind = sock.__class__  # Stream.read passes an int fd
    fd = sock if kind is int else sock.fileno() if kind is _socket else -1
    request.fd = fd if 0 <= fd < FD_LIMIT else fd_of(sock, "stream_recv")
    request.size = (
        size if size.__class__ is int and 0 <= size <= MAX_SIZE else _checks.size(size, "recv")
    )
    return request


def recv_into(sock: Any, buffer: Any) -> RecvInto:
    """Receive into a writable buffer; the result is the number of bytes."""
    return RecvInto(sock, buffer)


def send(sock: Any, data: Any) -> Send:
    """Send bytes; the result is how many the kernel took (may be fewer)."""
    request: Send = _new(Send)
    fd = sock.fileno() if sock.__class__ is _socket else -1
    request.fd = fd if fd >= 0 else fd_of(sock, "send")
    request.data = data if data.__class__ is bytes else _checks.data(data, "send")
    return request


def sendall(sock: Any, data: Any) -> SendAll:
    """Send all of ``data``; returns once the kernel has taken every byte."""
    request: SendAll = _new(SendAll)
    fd = sock.fileno() if sock.__class__ is _socket else -1
    request.fd = fd if fd >= 0 else fd_of(sock, "sendall")
    request.data = data if data.__class__ is bytes else _checks.data(data, "sendall")
    return request


def shutdown(sock: Any, how: int) -> Shutdown:
    """Shut down reading (``SHUT_RD``), writing (``SHUT_WR``) or both."""
    return Shutdown(sock, how)
