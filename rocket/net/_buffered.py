"""What every byte stream shares: the read buffer, one reader at a time, and the line reads.

:class:`~rocket.net.stream.Stream` (sockets) and
:class:`~rocket.net.pipes.PipeStream` (pipes, ttys) differ only in the request
that fetches bytes (``recv`` or ``read``), in how they write and close; each
gives :meth:`BufferedStream._fetch` and :meth:`BufferedStream._fd`, and keeps its
own ``read`` (the hot path: one frame, no call through here).

Invariant: ``_buffer`` holds bytes received and not yet returned to the
caller, in order; every read method takes from it first.
"""

from __future__ import annotations

import errno
from collections.abc import Generator
from typing import Any

from rocket import _checks
from rocket.fiber import BLOCKED
from rocket.request import Composite, Request

from ._common import StreamLifecycle, read_exactly, read_until

__all__ = ["CHUNK", "DEFAULT_LIMIT", "BufferedStream"]

#: Largest line ``readline``/``read_until`` accept unless told otherwise.
DEFAULT_LIMIT = 65536
CHUNK = 65536

_Body = Generator[Request[Any], Any, Any]


class BufferedStream(StreamLifecycle):
    """The buffered reads of a stream; subclasses give ``_fetch`` and ``_fd``."""

    __slots__ = (
        "_buffer",
        "_closed",
        "_reader",
        "_reader_fiber",
        "_reader_token",
        "_writer",
        "_writing",
    )

    #: The class name shown in error messages and traces.
    _kind = "Stream"

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._closed = False
        # Invariant: _reader names the read method a fiber is running, or is None.
        # With _reader_token 0 that read runs until it sets _reader back to None;
        # with a token (a StreamRead's receive), it runs while _reader_fiber still
        # waits under that token, and so ends by itself when the receive completes.
        self._reader: str | None = None
        self._reader_token = 0
        self._reader_fiber: Any = None
        # Invariant: the writer claim; a second writer is refused while it holds.
        # 0: no writer. -1: a write body (a Composite) is running. A token > 0: the
        # send of a StreamWrite that fiber _writer yielded; it holds while that fiber
        # still waits under that token, and so ends by itself when the send completes.
        self._writing = 0
        self._writer: Any = None

    def _fetch(self, fd: int, n: int) -> Request[bytes]:
        """The request that fetches up to ``n`` bytes (``recv`` or ``read``)."""
        raise NotImplementedError

    def _recv(self, fd: int, n: int) -> _Body:
        """One fetch of up to ``n`` bytes; one ``close()`` stopped is ``b""`` (end of stream)."""
        try:
            return (yield self._fetch(fd, n))
        except OSError as exc:
            if self._closed and exc.errno == errno.EBADF:
                return b""
            raise

    def _read(self, fd: int, n: int) -> _Body:
        """``read``'s body: the buffer first, else one fetch."""
        data = self._buffered(n)
        if data is not None:
            return data
        return (yield from self._recv(fd, n))

    def _buffered(self, n: int) -> bytes | None:
        """What a read of up to ``n`` bytes gets without a fetch (None: it must fetch)."""
        buffer = self._buffer
        if buffer:
            data = bytes(buffer[:n])
            del buffer[:n]
            return data
        return b"" if n == 0 else None

    def _fd(self, op: str) -> int:
        """The fd to use for ``op``; raises ValueError once closed."""
        raise NotImplementedError

    def _reading(self, op: str, body: _Body) -> _Body:
        """Run a read's body as the stream's only reader (trio's rule, asyncio's error).

        Two fibers reading at once would split the bytes between them in an
        order that depends on the engine, so the second one gets RuntimeError.
        """
        self._claim(op)
        try:
            return (yield from body)
        finally:
            self._reader = None

    def _reader_busy(self) -> bool:
        """True while a read holds the reader claim (see ``_reader``)."""
        if self._reader is None:
            return False
        token = self._reader_token
        if token == 0:
            return True
        reader = self._reader_fiber
        return bool(reader.state == BLOCKED and reader.token == token)

    def _claim(self, op: str) -> None:
        """Become the stream's reader, or raise RuntimeError if another fiber is."""
        self._refuse_second_reader(op)
        self._reader = op
        self._reader_token = 0

    def _refuse_second_reader(self, op: str) -> None:
        if self._reader_busy():
            kind = self._kind
            raise RuntimeError(
                f"{kind}.{op}(): another fiber is already reading {self!r} (in "
                f"{kind}.{self._reader}()); read a stream from one fiber only, and hand "
                "what it reads to the others (e.g. through a rocket.Queue)"
            )

    def _writer_busy(self) -> bool:
        """True while a write holds the writer claim (see ``_writing``)."""
        writing = self._writing
        if writing > 0:
            writer = self._writer
            return bool(writer.state == BLOCKED and writer.token == writing)
        return writing < 0

    def _claim_writer(self) -> None:
        """Become the stream's writer (for a write body), or raise RuntimeError if another is."""
        self._refuse_second_writer()
        self._writing = -1

    def _refuse_second_writer(self) -> None:
        if self._writing and self._writer_busy():
            raise RuntimeError(
                f"{self._kind}.write(): another fiber is already writing {self!r}; write a "
                "stream from one fiber only (e.g. a writer fiber fed by a rocket.Queue)"
            )

    def read_exactly(self, n: int) -> Composite[bytes]:
        """Read exactly ``n`` bytes.

        If the read is interrupted (cancelled, timed out, or an error such as
        a connection reset), the bytes it received stay in the stream, and the
        next read returns them first.

        Raises:
            IncompleteReadError: the peer closed first; the message says how
                many bytes were missing, ``.partial`` holds those that came.
        """
        kind = self._kind
        size = _checks.size(n, f"{kind}.read_exactly", "n")
        body = self._read_exactly(self._fd("read_exactly"), size)
        return Composite(f"{kind}.read_exactly", self._reading("read_exactly", body))

    def _read_exactly(self, fd: int, n: int) -> _Body:
        return read_exactly(self._buffer, lambda size: self._recv(fd, size), n, 1 << 20)

    def read_until(self, delimiter: bytes = b"\n", limit: int = DEFAULT_LIMIT) -> Composite[bytes]:
        """Read up to and including ``delimiter``; the result is at most ``limit`` bytes.

        Raises:
            LimitOverrunError: no delimiter within ``limit`` bytes (the data
                stays buffered; ``read`` can still fetch it).
            IncompleteReadError: the peer closed before the delimiter came.
        """
        kind = self._kind
        delimiter = _checks.data(delimiter, f"{kind}.read_until", "delimiter")
        if not delimiter:
            raise ValueError(f"{kind}.read_until() argument 'delimiter' must not be empty")
        limit = _checks.size(limit, f"{kind}.read_until", "limit")
        body = self._read_until(self._fd("read_until"), delimiter, limit, eof_ok=False)
        return Composite(f"{kind}.read_until", self._reading("read_until", body))

    def readline(self, limit: int = DEFAULT_LIMIT) -> Composite[bytes]:
        """Read one line, ``\\n`` included; at end of stream, what is left (maybe ``b""``).

        Raises:
            LimitOverrunError: the line is longer than ``limit`` bytes.
        """
        kind = self._kind
        limit = _checks.size(limit, f"{kind}.readline", "limit")
        body = self._read_until(self._fd("readline"), b"\n", limit, eof_ok=True)
        return Composite(f"{kind}.readline", self._reading("readline", body))

    def _read_until(self, fd: int, delimiter: bytes, limit: int, eof_ok: bool) -> _Body:
        return read_until(
            self._buffer, lambda size: self._recv(fd, size), delimiter, limit, eof_ok, CHUNK
        )
