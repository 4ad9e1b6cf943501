"""I/O requests: one small class per operation, and the verbs users call.

Users call lowercase verbs (``read``, ``recv``...) that return request objects
(``Read``, ``Recv``...). A request only holds its checked arguments; every engine
knows every request class and translates it (io_uring: one SQE; readiness
engine: a non-blocking call or a worker thread). So this module imports on any
platform and never touches an engine.

Sockets may be given as socket objects or as fds. Results match the standard
library: ``read``/``recv`` return ``bytes`` (``b""`` at end of file or when the
peer closed), ``accept`` returns ``(socket.socket, address)``.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, NamedTuple, TypeVar

from rocket import _checks
from rocket.errors import os_error
from rocket.request import IORequest

__all__ = [
    "Accept",
    "Close",
    "Connect",
    "Fsync",
    "Open",
    "Read",
    "ReadInto",
    "Recv",
    "RecvInto",
    "Send",
    "SendAll",
    "Shutdown",
    "Sleep",
    "Stat",
    "StatResult",
    "Write",
    "accept",
    "accepted_socket",
    "close",
    "connect",
    "fsync",
    "open",
    "read",
    "readinto",
    "recv",
    "recv_into",
    "send",
    "sendall",
    "shutdown",
    "sleep",
    "stat",
    "write",
]

DEFAULT_SIZE = 65536
_socket = socket.socket
_MAX_SIZE = _checks.MAX_SIZE
_FD_LIMIT = 2**31  # fds are C ints


def _fd(sock: Any, op: str) -> int:
    """The fd of a socket or int; the common cases cost one type test, the rest go to _checks."""
    kind = sock.__class__
    fd = sock if kind is int else sock.fileno() if kind is _socket else -1
    if 0 <= fd < _FD_LIMIT:
        return fd
    return _checks.fileno(sock, op, "sock")


T_co = TypeVar("T_co", covariant=True)


class StatResult(NamedTuple):
    """What :func:`stat` returns (a subset of ``os.stat_result``)."""

    size: int
    mode: int
    mtime: float


class _FdRequest(IORequest[T_co]):
    """A request on one file descriptor; describes itself as ``verb(fd=N)``."""

    __slots__ = ("fd",)
    fd: int

    def describe(self) -> str:
        return f"{self.verb}(fd={self.fd})"


class _PathRequest(IORequest[T_co]):
    """A request on one path; describes itself as ``verb(path='...')``."""

    __slots__ = ("path",)
    path: str

    def describe(self) -> str:
        return f"{self.verb}(path={self.path!r})"


# ----------------------------------------------------------------- files


class Open(_PathRequest[int]):
    """Open ``path``; the result is the new fd."""

    __slots__ = ("flags", "mode")
    verb = "open"

    def __init__(self, path: str | bytes | os.PathLike[str], flags: int, mode: int) -> None:
        self.path = _checks.path(path, "open")
        self.flags = _checks.open_flags(flags, "open")
        self.mode = _checks.mode(mode, "open")


class Read(_FdRequest[bytes]):
    """Read up to ``size`` bytes at ``offset`` (None: the current position)."""

    __slots__ = ("offset", "size")
    verb = "read"

    def __init__(self, fd: Any, size: int, offset: int | None) -> None:
        self.fd = _checks.fileno(fd, "read")
        self.size = _checks.size(size, "read")
        self.offset = _checks.offset(offset, "read")


class ReadInto(_FdRequest[int]):
    """Read into ``buffer``; the result is the number of bytes read."""

    __slots__ = ("buffer", "offset")
    verb = "readinto"

    def __init__(self, fd: Any, buffer: Any, offset: int | None) -> None:
        self.fd = _checks.fileno(fd, "readinto")
        self.buffer = _checks.buffer(buffer, "readinto")
        self.offset = _checks.offset(offset, "readinto")


class Write(_FdRequest[int]):
    """Write ``data`` at ``offset``; the result is the number of bytes written."""

    __slots__ = ("data", "offset")
    verb = "write"

    def __init__(self, fd: Any, data: Any, offset: int | None) -> None:
        self.fd = _checks.fileno(fd, "write")
        self.data = _checks.data(data, "write")
        self.offset = _checks.offset(offset, "write")


class Close(_FdRequest[None]):
    """Close an fd; performed even when a cancel is pending (see ``Request.releases``)."""

    __slots__ = ()
    verb = "close"
    releases = True

    def __init__(self, fd: Any) -> None:
        self.fd = _checks.fileno(fd, "close")


class Fsync(_FdRequest[None]):
    """Flush an fd's data and metadata to storage."""

    __slots__ = ()
    verb = "fsync"

    def __init__(self, fd: Any) -> None:
        self.fd = _checks.fileno(fd, "fsync")


class Stat(_PathRequest[StatResult]):
    """Size, mode and modification time of ``path`` (following symlinks)."""

    __slots__ = ()
    verb = "stat"

    def __init__(self, path: str | bytes | os.PathLike[str]) -> None:
        self.path = _checks.path(path, "stat")


# --------------------------------------------------------------- sockets


class Accept(_FdRequest[tuple[socket.socket, Any]]):
    """Accept a connection on a listening socket."""

    __slots__ = ("family", "proto", "type")
    verb = "accept"

    def __init__(self, sock: Any) -> None:
        self.fd = _checks.fileno(sock, "accept", "sock")
        # Known family/type spare the new socket object three getsockopt calls.
        self.family = getattr(sock, "family", -1)
        self.type = getattr(sock, "type", -1)
        self.proto = getattr(sock, "proto", -1)


class Connect(_FdRequest[None]):
    """Connect a socket to a numeric address (resolve names beforehand)."""

    __slots__ = ("address", "family")
    verb = "connect"

    def __init__(self, sock: Any, address: Any) -> None:
        self.fd = _checks.fileno(sock, "connect", "sock")
        family = getattr(sock, "family", None)
        if family is None:
            try:
                probe = socket.socket(fileno=self.fd)
            except OSError as exc:
                raise os_error(exc.errno or errno.ENOTSOCK, self.describe()) from None
            family = probe.family
            probe.detach()
        self.family = int(family)
        self.address = _checks_address(self.family, address)


class Recv(_FdRequest[bytes]):
    """Receive up to ``size`` bytes; ``b""`` when the peer closed."""

    __slots__ = ("size",)
    verb = "recv"

    def __init__(self, sock: Any, size: int) -> None:
        self.fd = _fd(sock, "recv")
        self.size = (
            size if size.__class__ is int and 0 <= size <= _MAX_SIZE else _checks.size(size, "recv")
        )


class RecvInto(_FdRequest[int]):
    """Receive into ``buffer``; the result is the number of bytes received."""

    __slots__ = ("buffer",)
    verb = "recv_into"

    def __init__(self, sock: Any, buffer: Any) -> None:
        self.fd = _checks.fileno(sock, "recv_into", "sock")
        self.buffer = _checks.buffer(buffer, "recv_into")


class Send(_FdRequest[int]):
    """Send ``data``; the result is how many bytes the kernel took."""

    __slots__ = ("data",)
    verb = "send"

    def __init__(self, sock: Any, data: Any) -> None:
        self.fd = _fd(sock, "send")
        self.data = data if data.__class__ is bytes else _checks.data(data, "send")


class SendAll(_FdRequest[None]):
    """Send all of ``data``, as many sends as it takes; done when the kernel took every byte.

    One request, however many partial sends: the engine sends the rest itself
    (without copying what is left over and over), so a large write stays linear.
    Invariant: the request object is never changed; the engine keeps the progress.
    """

    __slots__ = ("data",)
    verb = "sendall"

    def __init__(self, sock: Any, data: Any, op: str = "sendall") -> None:
        self.fd = _fd(sock, op)
        self.data = data if data.__class__ is bytes else _checks.data(data, op)


class Shutdown(_FdRequest[None]):
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


# ------------------------------------------------------------------ time


class Sleep(IORequest[None]):
    """Wait ``seconds``; the engine's timer wakes the fiber."""

    __slots__ = ("seconds",)
    verb = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = _checks.seconds(seconds, "sleep")

    def describe(self) -> str:
        return f"sleep({self.seconds:g})"


# ---------------------------------------------------------- verb helpers


def _checks_address(family: int, address: Any) -> Any:
    """Check a connect address: (numeric host, port) for IP, a path for AF_UNIX."""
    if family == socket.AF_UNIX:
        return _checks.unix_path(address, "connect", "address")
    if not isinstance(address, tuple) or len(address) < 2:
        raise TypeError(
            f"connect() argument 'address' must be a (host, port) tuple, not {address!r}"
        )
    host, port = address[0], address[1]
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(
            f"connect() argument 'address' must be (str host, int port), got {address!r}"
        )
    if not 0 <= port <= 65535:
        raise ValueError(f"connect() port must be between 0 and 65535, got {port}")
    try:
        socket.inet_pton(family, host.partition("%")[0])
    except OSError:
        raise ValueError(
            f"connect() needs a numeric address for this socket's family, got {host!r}; "
            f"resolve names first (rocket.getaddrinfo or rocket.open_connection)"
        ) from None
    return address


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


def open(  # noqa: A001 - mirrors os.open
    path: str | bytes | os.PathLike[str], flags: int = os.O_RDONLY, mode: int = 0o644
) -> Open:
    """Open a file; the result is its fd (``os.open`` without blocking).

    ``flags`` are ``os.O_*`` constants (not a mode string such as ``"r"``), e.g.
    ``rocket.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)``; ``mode`` holds
    the permission bits of a file it creates (0 to 0o7777).
    """
    return Open(path, _checks.open_flags(flags, "open") | os.O_CLOEXEC, mode)


def read(fd: Any, size: int = DEFAULT_SIZE, offset: int | None = None) -> Read:
    """Read up to ``size`` bytes; ``b""`` at end of file.

    ``offset=None`` reads at the current file position and advances it, like
    ``os.read``; an int reads at that offset and leaves the position alone.
    """
    return Read(fd, size, offset)


def readinto(fd: Any, buffer: Any, offset: int | None = None) -> ReadInto:
    """Read into a writable buffer; the result is the number of bytes read."""
    return ReadInto(fd, buffer, offset)


def write(fd: Any, data: Any, offset: int | None = None) -> Write:
    """Write bytes; the result is how many were written (may be fewer)."""
    return Write(fd, data, offset)


def close(fd: Any) -> Close:
    """Close a file descriptor."""
    return Close(fd)


def fsync(fd: Any) -> Fsync:
    """Flush a file's data and metadata to storage."""
    return Fsync(fd)


def stat(path: str | bytes | os.PathLike[str]) -> Stat:
    """Size, mode and mtime of a path, as a :class:`StatResult`."""
    return Stat(path)


def accept(sock: Any) -> Accept:
    """Accept a connection; the result is ``(socket.socket, address)``."""
    return Accept(sock)


def connect(sock: Any, address: Any) -> Connect:
    """Connect to a numeric address: ``(ip, port)`` or a Unix socket path."""
    return Connect(sock, address)


def recv(sock: Any, size: int = DEFAULT_SIZE) -> Recv:
    """Receive up to ``size`` bytes; ``b""`` when the peer has closed."""
    return Recv(sock, size)


def recv_into(sock: Any, buffer: Any) -> RecvInto:
    """Receive into a writable buffer; the result is the number of bytes."""
    return RecvInto(sock, buffer)


def send(sock: Any, data: Any) -> Send:
    """Send bytes; the result is how many the kernel took (may be fewer)."""
    return Send(sock, data)


def shutdown(sock: Any, how: int) -> Shutdown:
    """Shut down reading (``SHUT_RD``), writing (``SHUT_WR``) or both."""
    return Shutdown(sock, how)


def sleep(seconds: float) -> Sleep:
    """Let ``seconds`` pass; other fibers run meanwhile."""
    return Sleep(seconds)


def sendall(sock: Any, data: Any) -> SendAll:
    """Send all of ``data``; returns once the kernel has taken every byte."""
    return SendAll(sock, data)
