"""File requests: open, read, readinto, write, close, fsync, stat, wait_readable.

``read``/``write`` with ``offset=None`` use (and move) the file position, like
``os.read``/``os.write``; with an int they read or write at that offset and
leave the position alone, like ``os.pread``/``os.pwrite``.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from rocket import _checks
from rocket.ops._base import DEFAULT_SIZE, FdRequest, PathRequest

__all__ = [
    "Close",
    "Fsync",
    "Open",
    "Read",
    "ReadInto",
    "Stat",
    "StatResult",
    "WaitReadable",
    "Write",
    "close",
    "fsync",
    "open",
    "read",
    "readinto",
    "stat",
    "wait_readable",
    "write",
]


class StatResult(NamedTuple):
    """What :func:`stat` returns (a subset of ``os.stat_result``)."""

    size: int
    mode: int
    mtime: float


class Open(PathRequest[int]):
    """Open ``path``; the result is the new fd."""

    __slots__ = ("flags", "mode")
    verb = "open"

    def __init__(self, path: str | bytes | os.PathLike[str], flags: int, mode: int) -> None:
        self.path = _checks.path(path, "open")
        self.flags = _checks.open_flags(flags, "open")
        self.mode = _checks.mode(mode, "open")


class Read(FdRequest[bytes]):
    """Read up to ``size`` bytes at ``offset`` (None: the current position)."""

    __slots__ = ("offset", "size")
    verb = "read"

    def __init__(self, fd: Any, size: int, offset: int | None) -> None:
        self.fd = _checks.fileno(fd, "read")
        self.size = _checks.size(size, "read")
        self.offset = _checks.offset(offset, "read")


class ReadInto(FdRequest[int]):
    """Read into ``buffer``; the result is the number of bytes read."""

    __slots__ = ("buffer", "offset")
    verb = "readinto"

    def __init__(self, fd: Any, buffer: Any, offset: int | None) -> None:
        self.fd = _checks.fileno(fd, "readinto")
        self.buffer = _checks.buffer(buffer, "readinto")
        self.offset = _checks.offset(offset, "readinto")


class Write(FdRequest[int]):
    """Write ``data`` at ``offset``; the result is the number of bytes written."""

    __slots__ = ("data", "offset")
    verb = "write"

    def __init__(self, fd: Any, data: Any, offset: int | None) -> None:
        self.fd = _checks.fileno(fd, "write")
        self.data = _checks.data(data, "write")
        self.offset = _checks.offset(offset, "write")


class Close(FdRequest[None]):
    """Close an fd; performed even when a cancel is pending (see ``Request.releases``)."""

    __slots__ = ()
    verb = "close"
    releases = True

    def __init__(self, fd: Any) -> None:
        self.fd = _checks.fileno(fd, "close")


class Fsync(FdRequest[None]):
    """Flush an fd's data and metadata to storage."""

    __slots__ = ()
    verb = "fsync"

    def __init__(self, fd: Any) -> None:
        self.fd = _checks.fileno(fd, "fsync")


class WaitReadable(FdRequest[None]):
    """Wait until ``fd`` is readable (input, end of file, an error or a hang-up to report)."""

    __slots__ = ()
    verb = "wait_readable"

    def __init__(self, fd: Any) -> None:
        self.fd = _checks.fileno(fd, "wait_readable")


class Stat(PathRequest[StatResult]):
    """Size, mode and modification time of ``path`` (following symlinks)."""

    __slots__ = ()
    verb = "stat"

    def __init__(self, path: str | bytes | os.PathLike[str]) -> None:
        self.path = _checks.path(path, "stat")


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


def wait_readable(fd: Any) -> WaitReadable:
    """Wait until ``fd`` is readable, without reading; the result is None.

    For any fd the kernel can poll: pipes, sockets, ttys, a pidfd (readable once
    its process has exited), an eventfd. A regular file is always readable.
    """
    return WaitReadable(fd)
