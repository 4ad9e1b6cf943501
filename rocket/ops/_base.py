"""What every request module shares: fd and path requests, and the fast argument checks."""

from __future__ import annotations

import socket
from typing import Any, TypeVar

from rocket import _checks
from rocket.request import IORequest

__all__ = ["DEFAULT_SIZE", "MAX_SIZE", "FdRequest", "PathRequest", "fd_of"]

T_co = TypeVar("T_co", covariant=True)

DEFAULT_SIZE = 65536
_socket = socket.socket
MAX_SIZE = _checks.MAX_SIZE
_FD_LIMIT = 2**31  # fds are C ints


def fd_of(sock: Any, op: str) -> int:
    """The fd of a socket or int; the common cases cost one type test, the rest go to _checks."""
    kind = sock.__class__
    fd = sock if kind is int else sock.fileno() if kind is _socket else -1
    if 0 <= fd < _FD_LIMIT:
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
