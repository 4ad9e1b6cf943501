"""What every request module shares: fd and path requests, and the fast argument checks."""

from __future__ import annotations

import errno
import socket
from typing import Any, TypeVar

from rocket import _checks
from rocket.errors import os_error
from rocket.request import IORequest

__all__ = [
    "DEFAULT_SIZE",
    "FD_LIMIT",
    "MAX_SIZE",
    "FdRequest",
    "PathRequest",
    "fd_of",
    "socket_address",
    "socket_family",
]

T_co = TypeVar("T_co", covariant=True)

DEFAULT_SIZE = 65536
_socket = socket.socket
MAX_SIZE = _checks.MAX_SIZE
FD_LIMIT = 2**31  # fds are C ints


def fd_of(sock: Any, op: str) -> int:
    """The fd of a socket or int; the common cases cost one type test, the rest go to _checks."""
    kind = sock.__class__
    fd = sock if kind is int else sock.fileno() if kind is _socket else -1
    if 0 <= fd < FD_LIMIT:
        return fd
    return _checks.fileno(sock, op, "sock")


class FdRequest(IORequest[T_co]):
    """A request on one file descriptor; describes itself as ``verb(fd=N)``."""

    __slots__ = ("fd",)
    fd: int

    def describe(self) -> str:
        return f"{self.verb}(fd={self.fd})"


class PathRequest(IORequest[T_co]):
    """A request on one path; describes itself as ``verb(path='...')``."""

    __slots__ = ("path",)
    path: str

    def describe(self) -> str:
        return f"{self.verb}(path={self.path!r})"


def socket_family(sock: Any, fd: int, op: str) -> int:
    """The address family of ``sock`` (a socket object, or an fd that is one)."""
    family = getattr(sock, "family", None)
    if family is None:
        try:
            probe = socket.socket(fileno=fd)
        except OSError as exc:
            raise os_error(exc.errno or errno.ENOTSOCK, f"{op}(fd={fd})") from None
        family = probe.family
        probe.detach()
    return int(family)


def socket_address(family: int, address: Any, op: str) -> Any:
    """Check an address to connect or send to: a path for AF_UNIX, else a numeric (host, port)."""
    if family == socket.AF_UNIX:
        return _checks.unix_path(address, op, "address")
    if (
        not isinstance(address, tuple)
        or len(address) < 2
        or not isinstance(address[0], str)
        or isinstance(address[1], bool)
        or not isinstance(address[1], int)
    ):
        raise TypeError(
            f"{op}() argument 'address' must be a (host, port) tuple with a str host and "
            f"an int port, got {address!r}"
        )
    host, port = address[0], address[1]
    if not 0 <= port <= 65535:
        raise ValueError(f"{op}() port must be between 0 and 65535, got {port}")
    try:
        socket.inet_pton(family, host.partition("%")[0])
    except OSError:
        raise ValueError(
            f"{op}() needs a numeric address for this socket's family, got {host!r}; "
            f"resolve names first (rocket.getaddrinfo or rocket.open_connection)"
        ) from None
    return address
