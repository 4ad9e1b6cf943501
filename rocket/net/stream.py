"""``Stream``: a byte stream over a connected socket (TCP or Unix), for fibers.

Every reading and writing method returns something to yield (a request, or
a :class:`~rocket.Composite` for the buffered reads), in both fiber styles::

    line = yield stream.readline()             # generator fiber
    line = await stream.readline()             # async def fiber

Buffering and backpressure:

* ``write`` returns only when the kernel has taken *all* the data. A peer that
  never reads fills its socket buffer, and then the writing fiber waits: the
  stream itself never buffers outgoing data, so memory stays bounded.
* Reading buffers only what ``read_until``/``readline`` received past the end
  of a line. That buffer never exceeds ``limit`` bytes: a peer that sends an
  endless line gets :class:`LimitOverrunError`, not unbounded memory.
* A read that is interrupted -- cancelled, timed out, or ended by an error --
  leaves the bytes it had received in the buffer, so the next read returns
  them in order: the stream never loses or reorders data.
* One fiber reads at a time: a read while another fiber's read is under way
  raises ``RuntimeError`` (trio's rule; asyncio raises it too). Writing from
  one fiber while another reads is fine.

The buffered reads (``read_exactly``, ``read_until``, ``readline``) are
shared with :class:`~rocket.PipeStream` in :mod:`rocket.net._buffered`;
``read`` and ``write``, the hot path of every stream server, are one request
each (:class:`StreamRead`, :class:`StreamWrite`): no generator frame.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from rocket import _checks, _context
from rocket.ops import SendAll, Shutdown, StreamRecv, stream_recv
from rocket.request import Composite, Request
from rocket.sched import WAIT, ExecutorRequest

from ._buffered import DEFAULT_LIMIT, BufferedStream
from .errors import IncompleteReadError, LimitOverrunError

if TYPE_CHECKING:
    import ssl

    from rocket.executor import Executor
    from rocket.fiber import Fiber

    from .tls import TLSStream

__all__ = [
    "DEFAULT_LIMIT",
    "IncompleteReadError",
    "LimitOverrunError",
    "Stream",
    "StreamRead",
    "StreamWrite",
]

_CHUNK = 65536

_Body = Generator[Request[Any], Any, Any]


class Stream(BufferedStream):
    """Reads and writes bytes on a connected socket; see the module docstring.

    Made by :func:`rocket.open_connection` and given to each
    :func:`rocket.serve_tcp` handler; wrap any connected stream socket with
    ``Stream(sock)``. ``with stream:`` closes it at the end of the block.
    """

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        if not isinstance(sock, socket.socket):
            raise TypeError(f"Stream() expects a socket.socket, not {type(sock).__name__}")
        tls = sys.modules.get("ssl")  # (no SSLSocket can exist unless ssl was imported)
        if tls is not None and isinstance(sock, tls.SSLSocket):
            raise TypeError(
                "Stream() takes a plain socket, not an ssl.SSLSocket: rocket reads and writes "
                "the fd itself, so the bytes would bypass TLS (plaintext out, raw records in); "
                "pass the plain socket and use TLS through rocket: Stream(sock).start_tls("
                "context), rocket.TLSStream, or open_connection(..., ssl=context)"
            )
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"Stream() needs a SOCK_STREAM socket, got {sock.type!r}")
        BufferedStream.__init__(self)
        self.sock = sock

    # ------------------------------------------------------------- reading

    def read(self, n: int = _CHUNK) -> StreamRead:
        """Read up to ``n`` bytes (at least one, unless the peer closed: ``b""``).

        Raises:
            RuntimeError: another fiber is reading this stream (here and in
                every read method: one reader at a time).
        """
        size = (
            n
            if n.__class__ is int and 0 <= n <= _checks.MAX_SIZE
            else _checks.size(n, "Stream.read", "n")
        )
        return StreamRead(self, self._fd("read"), size)

    def _fetch(self, fd: int, n: int) -> StreamRecv:
        return StreamRecv(fd, n)

    # ------------------------------------------------------------- writing

    def write(self, data: Any) -> StreamWrite:
        """Send all of ``data``; returns once the kernel has taken every byte.

        Raises:
            RuntimeError: another fiber is writing this stream: two writes at
                once would mix their bytes on the wire after a partial send (one
                writer at a time, as for readers; hand messages to one writer
                fiber through a rocket.Queue).
        """
        return StreamWrite(self, SendAll(self._fd("write"), data, "Stream.write"))

    def write_eof(self) -> Shutdown:
        """Close the sending direction: the peer reads end of stream, and can still reply.

        Raises:
            RuntimeError: a write is still in progress in another fiber.
        """
        if self._writing and self._writer_busy():
            raise RuntimeError(
                f"Stream.write_eof(): a write on {self!r} is still in progress in another "
                "fiber; end the stream after the last write has returned"
            )
        return Shutdown(self._fd("write_eof"), socket.SHUT_WR)

    # ----------------------------------------------------------------- TLS

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
    ) -> Composite[TLSStream]:
        """Start TLS on this connection; the result is a :class:`~rocket.TLSStream`, handshake done.

        The TLS stream owns this one from now on (closing it closes this).
        Bytes this stream had already received past the last read (a client
        that sent its hello right after ``STARTTLS``) go to the TLS layer.

        Raises:
            ssl.SSLError: the handshake failed (the stream is closed then).
        """
        from .tls import TLSStream  # ssl is imported only by programs that use TLS

        self._fd("start_tls")
        tls = TLSStream(self, context, server_side=server_side, server_hostname=server_hostname)
        return Composite("Stream.start_tls", _handshake(tls))

    # ----------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the connection at once; idempotent.

        Requests of other fibers still waiting on the socket end first (the
        engine's ``notify_closing``, as in trio): a read returns ``b""``, a
        write raises ``OSError`` (EBADF). Then the fd is closed.
        """
        if self._closed:
            return
        self._closed = True
        fd = self.sock.fileno()
        if fd >= 0:
            _context.notify_closing(fd)
        self.sock.close()

    def fileno(self) -> int:
        """The socket's fd (-1 once closed)."""
        return self.sock.fileno()

    @property
    def peer(self) -> Any:
        """The peer's address, e.g. ``('127.0.0.1', 51234)``."""
        return self.sock.getpeername()

    def _fd(self, op: str) -> int:
        if self._closed:
            raise ValueError(f"Stream.{op}() on a closed stream")
        return self.sock.fileno()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self.sock.fileno()}"
        return f"<Stream {state}>"


def _handshake(tls: TLSStream) -> _Body:
    """Do ``tls``'s handshake; on failure close it (and the plain stream)."""
    try:
        yield from tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    return tls


class StreamWrite(ExecutorRequest[None]):
    """What :meth:`Stream.write` returns: its ``sendall``, under the stream's writer claim.

    One engine request and no generator frame: ``handle`` refuses a second
    writer, submits the send, and records its token as the claim
    (``BufferedStream._writing``), which ends by itself when the send completes;
    nothing has to run afterwards to release it.
    """

    __slots__ = ("send", "stream")
    verb = "Stream.write"

    def __init__(self, stream: Stream, send: SendAll) -> None:
        self.stream = stream
        self.send = send

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        stream = self.stream
        stream._refuse_second_writer()
        fiber.request = send = self.send  # what it waits on, as for a plain sendall
        executor.submit(fiber, send)
        stream._writing = fiber.token
        stream._writer = fiber
        return WAIT

    def describe(self) -> str:
        return f"Stream.write(fd={self.send.fd})"


class StreamRead(ExecutorRequest[bytes]):
    """What :meth:`Stream.read` returns: the buffered bytes, or one receive, as the reader.

    One request and no generator frame, the hot path of every stream server:
    ``handle`` refuses a second reader, answers at once from the stream's
    buffer, or submits one ``stream_recv`` and records its token as the reader
    claim (``BufferedStream._reader``), which ends by itself when the receive
    completes. A receive that ``Stream.close()`` stops ends with ``b""`` (the
    engines' rule for ``stream_recv``): the end of the stream.
    """

    __slots__ = ("fd", "size", "stream")
    verb = "Stream.read"

    def __init__(self, stream: Stream, fd: int, size: int) -> None:
        self.stream = stream
        self.fd = fd
        self.size = size

    def handle(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        stream = self.stream
        if stream._reader is not None:
            stream._refuse_second_reader("read")
        data = stream._buffered(self.size)
        if data is not None:
            return data
        fiber.request = receive = stream_recv(self.fd, self.size)  # what it waits on
        executor.submit(fiber, receive)
        stream._reader = "read"
        stream._reader_token = fiber.token
        stream._reader_fiber = fiber
        return WAIT

    def describe(self) -> str:
        return f"Stream.read(fd={self.fd})"
