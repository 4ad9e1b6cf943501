"""``Stream``: a byte stream over a connected socket (TCP or Unix), for fibers.

Every reading and writing method returns something to yield (a request, or
a :class:`~rocket.Composite` for the reads), in both fiber styles::

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

Invariant: ``_buffer`` holds bytes received from the socket and not yet
returned to the caller, in order; every read method takes from it first.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from rocket import _checks, _context
from rocket.ops import Recv, SendAll, Shutdown
from rocket.request import Composite, Request

from ._common import StreamLifecycle, read_exactly, read_until
from .errors import IncompleteReadError, LimitOverrunError

if TYPE_CHECKING:
    import ssl

    from .tls import TLSStream

__all__ = ["DEFAULT_LIMIT", "IncompleteReadError", "LimitOverrunError", "Stream"]

#: Largest line ``readline``/``read_until`` accept unless told otherwise.
DEFAULT_LIMIT = 65536
_CHUNK = 65536

_Body = Generator[Request[Any], Any, Any]


class Stream(StreamLifecycle):
    """Reads and writes bytes on a connected socket; see the module docstring.

    Made by :func:`rocket.open_connection` and given to each
    :func:`rocket.serve_tcp` handler; wrap any connected stream socket with
    ``Stream(sock)``. ``with stream:`` closes it at the end of the block.
    """

    __slots__ = ("_buffer", "_closed", "_reader", "_writing", "sock")

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
        self.sock = sock
        self._buffer = bytearray()
        self._closed = False
        # Invariant: _reader names the read method a fiber is running, or is None.
        self._reader: str | None = None
        # Invariant: True while a fiber runs write(); a second writer is refused.
        self._writing = False

    # ------------------------------------------------------------- reading

    def read(self, n: int = _CHUNK) -> Composite[bytes]:
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
        return Composite("Stream.read", self._read(self._fd("read"), size))

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

    def _claim(self, op: str) -> None:
        """Become the stream's reader, or raise RuntimeError if another fiber is."""
        if self._reader is not None:
            raise RuntimeError(
                f"Stream.{op}(): another fiber is already reading {self!r} (in "
                f"Stream.{self._reader}()); read a stream from one fiber only, and hand "
                "what it reads to the others (e.g. through a rocket.Queue)"
            )
        self._reader = op

    def _read(self, fd: int, n: int) -> _Body:
        """``read`` in one frame: it is the hot path of every stream server."""
        if self._reader is not None:
            self._claim("read")  # raises
        buffer = self._buffer
        if buffer:
            data = bytes(buffer[:n])
            del buffer[:n]
            return data
        if n == 0:
            return b""
        self._reader = "read"
        try:  # (_recv, inlined: one frame fewer per read)
            return (yield Recv(fd, n))
        except OSError as exc:
            if self._closed and exc.errno == errno.EBADF:
                return b""  # close() stopped it: end of stream
            raise
        finally:
            self._reader = None

    def _recv(self, fd: int, n: int) -> _Body:
        """One receive; one that :meth:`close` stopped returns ``b""`` (end of stream)."""
        try:
            return (yield Recv(fd, n))
        except OSError as exc:
            if self._closed and exc.errno == errno.EBADF:
                return b""
            raise

    def read_exactly(self, n: int) -> Composite[bytes]:
        """Read exactly ``n`` bytes.

        If the read is interrupted (cancelled, timed out, or an error such as
        a connection reset), the bytes it received stay in the stream, and the
        next read returns them first.

        Raises:
            IncompleteReadError: the peer closed first; the message says how
                many bytes were missing, ``.partial`` holds those that came.
        """
        size = _checks.size(n, "Stream.read_exactly", "n")
        fd = self._fd("read_exactly")
        body = read_exactly(self._buffer, lambda n: self._recv(fd, n), size, 1 << 20)
        return Composite("Stream.read_exactly", self._reading("read_exactly", body))

    def read_until(self, delimiter: bytes = b"\n", limit: int = DEFAULT_LIMIT) -> Composite[bytes]:
        """Read up to and including ``delimiter``; the result is at most ``limit`` bytes.

        Raises:
            LimitOverrunError: no delimiter within ``limit`` bytes (the data
                stays buffered; :meth:`read` can still fetch it).
            IncompleteReadError: the peer closed before the delimiter came.
        """
        delimiter = _checks.data(delimiter, "Stream.read_until", "delimiter")
        if not delimiter:
            raise ValueError("Stream.read_until() argument 'delimiter' must not be empty")
        limit = _checks.size(limit, "Stream.read_until", "limit")
        fd = self._fd("read_until")
        body = read_until(
            self._buffer, lambda n: self._recv(fd, n), delimiter, limit, False, _CHUNK
        )
        return Composite("Stream.read_until", self._reading("read_until", body))

    def readline(self, limit: int = DEFAULT_LIMIT) -> Composite[bytes]:
        """Read one line, ``\\n`` included; at end of stream, what is left (maybe ``b""``).

        Raises:
            LimitOverrunError: the line is longer than ``limit`` bytes.
        """
        limit = _checks.size(limit, "Stream.readline", "limit")
        fd = self._fd("readline")
        body = read_until(self._buffer, lambda n: self._recv(fd, n), b"\n", limit, True, _CHUNK)
        return Composite("Stream.readline", self._reading("readline", body))

    # ------------------------------------------------------------- writing

    def write(self, data: Any) -> Composite[None]:
        """Send all of ``data``; returns once the kernel has taken every byte.

        Raises:
            RuntimeError: another fiber is writing this stream: two writes at
                once would mix their bytes on the wire after a partial send (one
                writer at a time, as for readers; hand messages to one writer
                fiber through a rocket.Queue).
        """
        return Composite(
            "Stream.write", self._write(SendAll(self._fd("write"), data, "Stream.write"))
        )

    def _write(self, send: SendAll) -> _Body:
        if self._writing:
            raise RuntimeError(
                f"Stream.write(): another fiber is already writing {self!r}; write a stream "
                "from one fiber only (e.g. a writer fiber fed by a rocket.Queue)"
            )
        self._writing = True
        try:
            yield send
        finally:
            self._writing = False

    def write_eof(self) -> Shutdown:
        """Close the sending direction: the peer reads end of stream, and can still reply.

        Raises:
            RuntimeError: a write is still in progress in another fiber.
        """
        if self._writing:
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
            try:
                engine = _context.running_executor("Stream.close").engine
            except RuntimeError:  # outside rocket.run: no request can be waiting
                pass
            else:
                notify = getattr(engine, "notify_closing", None)
                if notify is not None:
                    notify(fd)
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
