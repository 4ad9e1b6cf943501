"""``TLSStream``: TLS over a :class:`~rocket.Stream`, with the stdlib's ``ssl.MemoryBIO``.

Rocket reads and writes sockets itself, so an ``ssl.SSLSocket`` (which does
its own system calls) cannot be used. Instead, as in trio's ``SSLStream``, an
``ssl.SSLObject`` does the cryptography on two in-memory buffers, and the
stream moves the ciphertext between those buffers and the socket::

    plaintext --SSLObject.write--> outgoing BIO --Stream.write--> socket
    plaintext <--SSLObject.read--- incoming BIO <--Stream.read--- socket

Every operation (``do_handshake``, ``read``, ``write``) is one loop: call the
``SSLObject``; send what it put in ``outgoing``; on ``SSLWantReadError``,
receive ciphertext into ``incoming`` and call it again. The handshake runs on
first use or through :meth:`TLSStream.do_handshake`.

Fibers: one reader and one writer at a time (``Stream``'s rule). Both may
need the socket (a read can produce bytes to send, a handshake must receive),
so sending runs under ``_send_lock`` (what leaves ``outgoing`` goes out whole
and in order) and receiving under ``_recv_lock``; a fiber that finds another
one received while it waited just calls the ``SSLObject`` again.

End of stream: after the peer's close_notify, ``read`` returns ``b""``; a
bare TCP close (a "ragged EOF", as a truncation attack looks) raises
``ssl.SSLEOFError`` as ``SSLObject.read`` does, unless the context has
``ssl.OP_IGNORE_UNEXPECTED_EOF`` set (then: ``b""``).

Invariant: ``_buffer`` holds decrypted plaintext not yet returned; reads take from it first.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Generator
from typing import Any

from rocket import _checks
from rocket.request import Composite, Request
from rocket.sync import Lock

from ._common import StreamLifecycle, read_exactly, read_until
from .stream import DEFAULT_LIMIT, Stream

__all__ = ["TLSStream"]

_CHUNK = 65536  # ciphertext received at once; plaintext encrypted at once (bounds memory)

_Body = Generator[Request[Any], Any, Any]


class TLSStream(StreamLifecycle):
    """A TLS connection over a :class:`~rocket.Stream`, with the same methods and rules.

    Made by ``open_connection(..., ssl=context)``, ``serve_tcp(..., ssl=context)``
    and :meth:`Stream.start_tls`, or directly: ``TLSStream(stream, context,
    server_hostname="example.org")`` (the handshake then runs on first use).

    Args:
        transport: the connected plain stream (or socket); the TLS stream owns
            it now (bytes it had buffered are taken as ciphertext).
        context: the ``ssl.SSLContext`` (certificates, verification, ALPN...).
        server_side: True for the server end of the connection.
        server_hostname: the name for SNI and the server certificate's check.
    """

    def __init__(
        self,
        transport: Stream | socket.socket,
        context: ssl.SSLContext,
        *,
        server_side: bool = False,
        server_hostname: str | None = None,
    ) -> None:
        if not isinstance(context, ssl.SSLContext):
            raise TypeError(
                f"TLSStream() argument 'context' must be an ssl.SSLContext (e.g. "
                f"ssl.create_default_context()), not {type(context).__name__}"
            )
        self.transport = transport if isinstance(transport, Stream) else Stream(transport)
        self._incoming = ssl.MemoryBIO()
        if self.transport._buffer:  # received past the last plain read: the peer's first records
            self._incoming.write(bytes(self.transport._buffer))
            self.transport._buffer.clear()
        self._outgoing = ssl.MemoryBIO()
        #: The ``ssl.SSLObject`` doing the TLS work (for anything not offered here).
        self.ssl_object = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._buffer = bytearray()
        self._closed = False
        self._handshaken = False
        # Invariant: None, or why the stream can no longer be used (a send cut short).
        self._broken: str | None = None
        self._reader: str | None = None  # the read method a fiber is running
        self._writing = False
        self._received = 0  # ciphertext arrivals so far: tells a waiter someone else received
        self._send_lock, self._recv_lock = Lock(), Lock()

    def _retry(self, fn: Any, *args: Any) -> _Body:
        """Call ``fn`` (an SSLObject method) until it needs no more ciphertext; its result."""
        while True:
            received = self._received
            try:
                result = fn(*args)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as exc:
                yield from self._flush()
                if isinstance(exc, ssl.SSLWantReadError):
                    yield from self._receive(received)
                continue
            except ssl.SSLError:
                if self._outgoing.pending and not self._send_lock.locked():
                    self._send_now()  # the alert tells the peer why (best effort)
                raise
            yield from self._flush()
            return result

    def _flush(self) -> _Body:
        """Send everything in ``outgoing``, in order, under the send lock."""
        if not self._outgoing.pending:
            return
        yield self._send_lock.acquire()
        try:
            if self._closed:  # as a write on a closed Stream: EBADF
                raise OSError(errno.EBADF, "TLSStream was closed (by TLSStream.close)")
            data = self._outgoing.read()
            if data:
                try:
                    yield from self.transport.write(data)
                except BaseException as exc:
                    self._broken = f"a send of TLS records was cut short ({exc!r})"
                    raise
        finally:
            self._send_lock.release()

    def _receive(self, received: int) -> _Body:
        """Receive ciphertext into ``incoming``, unless another fiber did since ``received``."""
        yield self._recv_lock.acquire()
        try:
            if self._received != received:
                return
            if self._closed or self._incoming.eof:  # (close() ended a wait: _recv gives b"")
                raise ssl.SSLEOFError("TLS: the connection was closed in mid-record")
            data = yield from self.transport.read(_CHUNK)
            self._incoming.write(data) if data else self._incoming.write_eof()
            self._received += 1
        finally:
            self._recv_lock.release()

    def _send_now(self) -> None:
        """Send ``outgoing`` without waiting, as much as the socket takes (best effort)."""
        try:
            self.transport.sock.send(self._outgoing.read(), socket.MSG_DONTWAIT)
        except OSError:
            pass

    def do_handshake(self) -> Composite[None]:
        """Do the TLS handshake now (otherwise the first read or write does it).

        Raises:
            ssl.SSLCertVerificationError: the peer's certificate is not trusted or
                not for ``server_hostname``; ssl.SSLError: other failures (the cause).
        """
        self._check("do_handshake")
        return Composite("TLSStream.do_handshake", self._handshake())

    def _handshake(self) -> _Body:
        # A reader and a writer may both run it: the receive lock orders them,
        # and do_handshake on a finished handshake does nothing.
        if not self._handshaken:
            yield from self._retry(self.ssl_object.do_handshake)
            self._handshaken = True

    def _check(self, op: str) -> None:
        if self._closed:
            raise ValueError(f"TLSStream.{op}() on a closed stream")
        if self._broken is not None:
            raise ssl.SSLError(f"TLSStream.{op}(): the stream is broken: {self._broken}")

    # ------------------------------------------------------------- reading

    def _reading(self, op: str, body: _Body) -> _Body:
        """Run a read's body as the only reader (see ``Stream``), after the handshake."""
        if self._reader is not None:
            raise RuntimeError(
                f"TLSStream.{op}(): another fiber is already reading {self!r} (in "
                f"TLSStream.{self._reader}()); read a stream from one fiber only"
            )
        self._reader = op
        try:
            yield from self._handshake()
            return (yield from body)
        finally:
            self._reader = None

    def _recv(self, n: int) -> _Body:
        """Up to ``n`` bytes of plaintext (``b""``: end of stream)."""
        try:
            return (yield from self._retry(self.ssl_object.read, n))
        except OSError as exc:  # ssl.SSLError included; close() stopping a read is EOF too
            if self._closed or isinstance(exc, ssl.SSLZeroReturnError):
                return b""
            raise

    def read(self, n: int = _CHUNK) -> Composite[bytes]:
        """Read up to ``n`` bytes (at least one, unless the peer closed: ``b""``).

        Raises:
            ssl.SSLEOFError: the peer closed without close_notify (see the module
                docstring: ``ssl.OP_IGNORE_UNEXPECTED_EOF`` makes that ``b""``).
            RuntimeError: another fiber is reading (one reader at a time).
        """
        size = _checks.size(n, "TLSStream.read", "n")
        self._check("read")
        return Composite("TLSStream.read", self._reading("read", self._read(size)))

    def _read(self, n: int) -> _Body:
        if self._buffer or n == 0:
            return self._take(n)
        return (yield from self._recv(n))

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def read_exactly(self, n: int) -> Composite[bytes]:
        """Read exactly ``n`` bytes; if interrupted, what came stays buffered.

        Raises:
            IncompleteReadError: the peer closed first (``.partial``: what came).
        """
        size = _checks.size(n, "TLSStream.read_exactly", "n")
        self._check("read_exactly")
        return Composite(
            "TLSStream.read_exactly",
            self._reading("read_exactly", read_exactly(self._buffer, self._recv, size, _CHUNK)),
        )

    def read_until(self, delimiter: bytes = b"\n", limit: int = DEFAULT_LIMIT) -> Composite[bytes]:
        """Read up to and including ``delimiter``, at most ``limit`` bytes (as ``Stream``'s).

        Raises:
            LimitOverrunError: no delimiter within ``limit`` bytes.
            IncompleteReadError: the peer closed before the delimiter came.
        """
        delimiter = _checks.data(delimiter, "TLSStream.read_until", "delimiter")
        if not delimiter:
            raise ValueError("TLSStream.read_until() argument 'delimiter' must not be empty")
        limit = _checks.size(limit, "TLSStream.read_until", "limit")
        self._check("read_until")
        body = read_until(self._buffer, self._recv, delimiter, limit, False, _CHUNK)
        return Composite("TLSStream.read_until", self._reading("read_until", body))

    def readline(self, limit: int = DEFAULT_LIMIT) -> Composite[bytes]:
        """Read one line, ``\\n`` included; at end of stream, what is left (maybe ``b""``)."""
        limit = _checks.size(limit, "TLSStream.readline", "limit")
        self._check("readline")
        body = read_until(self._buffer, self._recv, b"\n", limit, True, _CHUNK)
        return Composite("TLSStream.readline", self._reading("readline", body))

    # ------------------------------------------------------------- writing

    def write(self, data: Any) -> Composite[None]:
        """Encrypt and send all of ``data``; returns once the kernel has taken it.

        It is encrypted and sent 64 KiB at a time: memory stays bounded.

        Raises:
            RuntimeError: another fiber is writing (one writer at a time).
        """
        payload = _checks.data(data, "TLSStream.write")
        self._check("write")
        return Composite("TLSStream.write", self._write(payload))

    def _write(self, data: bytes) -> _Body:
        if self._writing:
            raise RuntimeError(
                f"TLSStream.write(): another fiber is already writing {self!r}; write a "
                "stream from one fiber only (e.g. a writer fiber fed by a rocket.Queue)"
            )
        self._writing = True
        try:
            yield from self._handshake()
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK):
                yield from self._retry(self.ssl_object.write, view[start : start + _CHUNK])
        finally:
            self._writing = False

    # ----------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Send close_notify if that needs no waiting (best effort), then close; idempotent.

        close_notify goes out in one non-blocking send, and only when no write
        is under way (it would land inside that write's record). Other fibers'
        requests end as for :meth:`Stream.close`.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._handshaken and self._broken is None and not self._send_lock.locked():
                try:
                    self.ssl_object.unwrap()  # puts close_notify in outgoing
                except ssl.SSLError:  # SSLWantReadError: the peer's reply is not awaited
                    pass
                if self._outgoing.pending:
                    self._send_now()
        finally:
            self.transport.close()

    def fileno(self) -> int:
        """The socket's fd (-1 once closed)."""
        return self.transport.fileno()

    @property
    def peer(self) -> Any:
        """The peer's address, e.g. ``('127.0.0.1', 51234)``."""
        return self.transport.peer

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN agreed on (``context.set_alpn_protocols``), or None."""
        return self.ssl_object.selected_alpn_protocol()

    def version(self) -> str | None:
        """The TLS version, e.g. ``'TLSv1.3'`` (None before the handshake)."""
        return self.ssl_object.version()

    def cipher(self) -> tuple[str, str, int] | None:
        """``(name, protocol, secret bits)`` of the cipher (None before the handshake)."""
        return self.ssl_object.cipher()

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's certificate, as ``ssl.SSLSocket.getpeercert`` gives it."""
        return self.ssl_object.getpeercert(binary_form)

    def __repr__(self) -> str:
        side = "server" if self.ssl_object.server_side else "client"
        state = "closed" if self._closed else f"fd={self.fileno()}"
        return f"<TLSStream {side} {self.version() or 'no handshake yet'} {state}>"
