"""``PipeStream``: a byte stream over an fd that is not a socket (a pipe, a tty), for fibers.

The same reads as :class:`~rocket.Stream` (``read``, ``read_exactly``,
``read_until``, ``readline``, ``async for``), and ``write``, made of the file
requests ``rocket.read(fd, n)`` and ``rocket.write(fd, data)``: io_uring reads
and writes at the current position (which pipes do not have), the readiness
engine waits until the fd is ready. Buffering, the one-reader/one-writer rule
and what an interrupted read keeps are as for ``Stream`` (see
:mod:`rocket.net.stream`). ``write`` returns once every byte was written (it
writes again after a short write); closing the write end is how a reader sees
end of stream, so there is no ``write_eof``: call :meth:`PipeStream.close`.

:func:`stdin` and :func:`stdout` give streams over fds 0 and 1 that do not
close them.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

from rocket import _checks, _context
from rocket.ops import Read, Write
from rocket.request import Composite, Request

from ._buffered import CHUNK, BufferedStream

__all__ = ["PipeStream", "stdin", "stdout"]

_Body = Generator[Request[Any], Any, Any]


class PipeStream(BufferedStream):
    """Reads and writes bytes on a pipe or tty fd; see the module docstring.

    Args:
        fd: the fd (an int, or an object with ``fileno()``). The stream owns it
            and closes it, unless ``closefd=False``.
    """

    __slots__ = ("_fileno", "_owned")

    _kind = "PipeStream"

    def __init__(self, fd: Any, *, closefd: bool = True) -> None:
        BufferedStream.__init__(self)
        self._fileno = _checks.fileno(fd, "PipeStream")
        self._owned = closefd

    def read(self, n: int = CHUNK) -> Composite[bytes]:
        """Read up to ``n`` bytes (at least one, unless the writer closed: ``b""``).

        Raises:
            RuntimeError: another fiber is reading this stream.
        """
        size = _checks.size(n, "PipeStream.read", "n")
        body = self._read(self._fd("read"), size)
        return Composite("PipeStream.read", self._reading("read", body))

    def _fetch(self, fd: int, n: int) -> Read:
        return Read(fd, n, None)

    def write(self, data: Any) -> Composite[None]:
        """Write all of ``data``; returns once the kernel has taken every byte.

        Raises:
            BrokenPipeError: the reading end was closed.
            RuntimeError: another fiber is writing this stream.
        """
        data = _checks.data(data, "PipeStream.write")
        return Composite("PipeStream.write", self._write(self._fd("write"), data))

    def _write(self, fd: int, data: Any) -> _Body:
        self._claim_writer()
        try:
            view = memoryview(data).cast("B")
            done = yield Write(fd, data, None)
            while done < len(view):  # a short write (a full pipe on the readiness engine)
                done += yield Write(fd, bytes(view[done:]), None)
        finally:
            self._writing = 0

    def close(self) -> None:
        """Close the fd at once (idempotent); waiting reads return ``b""``, writes fail (EBADF).

        A stream made with ``closefd=False`` (:func:`stdin`, :func:`stdout`)
        stops its waiting requests the same way but leaves the fd open.
        """
        if self._closed:
            return
        self._closed = True
        _context.notify_closing(self._fileno)
        if self._owned:
            os.close(self._fileno)

    def fileno(self) -> int:
        """The fd (-1 once closed)."""
        return -1 if self._closed else self._fileno

    def _fd(self, op: str) -> int:
        if self._closed:
            raise ValueError(f"PipeStream.{op}() on a closed stream")
        return self._fileno

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._fileno}"
        return f"<PipeStream {state}>"


def stdin() -> PipeStream:
    """A stream reading fd 0; closing it leaves fd 0 open."""
    return PipeStream(0, closefd=False)


def stdout() -> PipeStream:
    """A stream writing fd 1 (unbuffered: mind ``print``'s buffer); closing it leaves fd 1 open."""
    return PipeStream(1, closefd=False)
