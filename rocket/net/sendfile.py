"""``rocket.sendfile``: send (part of) a file to a stream, zero-copy where the kernel can.

::

    f = yield rocket.open_file("index.html")
    with f:
        sent = yield rocket.sendfile(stream, f)      # the whole file

On a plain :class:`~rocket.Stream` it is one :class:`~rocket.ops.sendfile.SendFile`
request: the bytes go from the page cache to the socket and never through
Python (io_uring: ``splice`` from the file into a pipe and from the pipe into
the socket; readiness engine: ``os.sendfile`` on the non-blocking socket,
waiting until it is writable whenever it is full). A
:class:`~rocket.TLSStream` must encrypt every byte, and a
:class:`~rocket.PipeStream` writes to a pipe, so for those it reads the file in
chunks and writes them (a copy through Python, as asyncio's fallback does).

The file is read at explicit offsets: its position is neither used nor moved
(asyncio's ``loop.sendfile`` moves it), so one open file can be sent to many
streams at once. Sending counts as the stream's one write, so another fiber's
``write`` meanwhile raises ``RuntimeError``.

Cancelling: what reached the socket is a prefix of the range, and nothing
else; bytes that io_uring had moved into its pipe but not yet into the socket
are dropped with the pipe (they never reach the peer, so a later write follows
that prefix directly). As for an interrupted ``Stream.write``, how much was
sent is then unknown: end the connection (or the response) rather than go on.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Generator
from typing import Any

from rocket import _checks
from rocket._fileobj import File
from rocket.ops import Read
from rocket.ops.sendfile import SEND_TO_EOF, SendFile
from rocket.request import Composite, Request

from ._common import StreamLifecycle
from .pipes import PipeStream
from .stream import Stream

__all__ = ["sendfile"]

_Body = Generator[Request[Any], Any, Any]
_CHUNK = 256 * 1024  # what the read+write fallback reads at once


def sendfile(stream: Any, file: Any, offset: int = 0, count: int | None = None) -> Composite[int]:
    """Send ``count`` bytes of ``file`` from ``offset`` on (None: to its end) to ``stream``.

    The result is the number of bytes sent: ``count``, or fewer if the file
    ended first (0 if ``offset`` is at or past its end).

    Args:
        stream: a :class:`~rocket.Stream` (zero-copy), or a :class:`~rocket.TLSStream`
            or :class:`~rocket.PipeStream` (read and write in chunks).
        file: a :class:`~rocket.File` from :func:`rocket.open_file`, a Python file
            object with ``fileno()``, or an fd; a regular file, opened for reading.
        offset: where in the file to start; the file's position is not used or moved.
        count: how many bytes at most; None sends up to the end of the file.

    Raises:
        TypeError: ``stream`` is not a rocket stream (wrap a socket in ``rocket.Stream``).
        ValueError: the stream or the file is closed, the file is not a regular
            file (a pipe, a socket...), or a bad offset or count.
        io.UnsupportedOperation: a :class:`~rocket.File` not opened for reading.
        RuntimeError: another fiber is writing the stream.
        OSError: the connection failed (e.g. ``BrokenPipeError``), or the file could not be read.
    """
    fd = _file_fd(file)
    checked = _checks.offset(offset, "sendfile")
    if checked is None:
        raise TypeError("sendfile() argument 'offset' must be an int (0: the start), not None")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise TypeError(f"sendfile() argument 'count' must be an int or None, not {count!r}")
    if count is not None and count < 0:
        raise ValueError(f"sendfile() argument 'count' must be >= 0 or None, got {count}")
    if isinstance(stream, Stream):
        request = SendFile(
            stream._fd("sendfile"), fd, checked, SEND_TO_EOF if count is None else count
        )
        return Composite("sendfile", _zero_copy(stream, request))
    if isinstance(stream, (StreamLifecycle, PipeStream)):
        if stream.closed:
            raise ValueError(f"sendfile() on a closed stream {stream!r}")
        return Composite("sendfile", _copy(stream, fd, checked, count))
    hint = " (wrap it: rocket.Stream(sock))" if isinstance(stream, socket.socket) else ""
    raise TypeError(
        f"sendfile() argument 'stream' must be a rocket.Stream, TLSStream or PipeStream, "
        f"not {type(stream).__name__}{hint}"
    )


def _file_fd(file: Any) -> int:
    if isinstance(file, File):
        if file.closed:
            raise ValueError(f"sendfile(): the file {file.name!r} is closed")
        if not file._readable:
            raise io.UnsupportedOperation(
                f"sendfile(): {file.name!r} is not readable (opened with mode {file.mode!r}); "
                "open it with 'rb' to send it"
            )
        return file.fileno()
    return _checks.fileno(file, "sendfile", "file")


def _zero_copy(stream: Stream, request: SendFile) -> _Body:
    stream._claim_writer()
    try:
        return (yield request)
    finally:
        stream._writing = 0


def _copy(stream: Any, fd: int, offset: int, count: int | None) -> _Body:
    """The fallback: read a chunk at its offset, write it, until ``count`` or the end."""
    sent = 0
    while count is None or sent < count:
        size = _CHUNK if count is None else min(_CHUNK, count - sent)
        data = yield Read(fd, size, offset + sent)
        if not data:
            break
        yield from stream.write(data)
        sent += len(data)
    return sent
