"""``Server``: listening sockets, one accepting fiber each, one fiber per connection.

:func:`rocket.serve_tcp` and :func:`rocket.serve_unix` build a :class:`Server`.
Its fibers:

* one *accepting* fiber per listening socket: it accepts, wraps each new
  connection in a :class:`~rocket.Stream` and spawns a *connection* fiber;
* one *connection* fiber per client: it runs ``handler(stream)`` and closes
  the stream when the handler returns, raises or is cancelled. A handler's
  exception is logged (logger ``rocket.net``) and the server goes on; a client
  that resets or hangs up mid-message is logged at DEBUG, without a traceback.

Accept errors: running out of file descriptors or memory (``EMFILE``,
``ENFILE``, ``ENOBUFS``, ``ENOMEM``) makes the accepting fiber log a warning
and sleep, doubling the pause up to one second, then try again: a server at
its fd limit recovers as soon as connections close. Errors that concern only
the connection being accepted (``ECONNABORTED``, ``EPROTO``...) are skipped.

Backpressure: at most ``max_connections`` connection fibers run at once. When
the server is full, the accepting fibers wait for a connection to end, and new
clients queue in the kernel's listen backlog instead of in rocket's memory.

Invariant: ``_fibers`` holds every accepting and connection fiber that has not
finished (keyed by a number the fiber is given at spawn and removes itself
under, in a ``finally`` that covers its whole body). The server is *done*
when it is closed (or stopped accepting) and ``_fibers`` is empty; then every
``serve_forever`` waiter is woken.
"""

from __future__ import annotations

import errno
import inspect
import itertools
import logging
import os
import socket
import stat
import sys
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Union

from rocket import _context, _worker_state
from rocket.errors import Cancelled
from rocket.fiber import Fiber
from rocket.ops import Accept, Sleep
from rocket.request import Composite, FiberBody, Request
from rocket.sched import Park, Spawn

from .stream import Stream

if TYPE_CHECKING:
    import ssl

    from .tls import TLSStream

__all__ = ["Handler", "Server", "TLSHandler"]

log = logging.getLogger("rocket.net")

#: What a handler raises when its client resets, aborts or hangs up mid-message.
_CLIENT_WENT_AWAY = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError)

#: A connection handler: called with each new :class:`~rocket.Stream`, it
#: returns a generator or coroutine (``def`` with ``yield``, or ``async def``).
Handler = Callable[[Stream], FiberBody[Any]]
#: A handler of a TLS server (``serve_tcp(..., ssl=context)``): it gets a TLSStream.
TLSHandler = Callable[["TLSStream"], FiberBody[Any]]

#: Out of fds or memory: wait and retry (the shortage passes when clients leave).
_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Errors of the one connection being accepted: skip it (see accept(2), Linux notes).
_SKIP = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "EAGAIN",
        "EINTR",
    )
    if hasattr(errno, name)
)
_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 1.0

_Body = Generator[Request[Any], Any, Any]


class Server:
    """A running server; see the module docstring.

    Use ``yield from server.serve_forever()`` (or ``await``) to wait until it
    is closed, ``server.close()`` to stop it, or ``with server:``.
    """

    def __init__(
        self,
        handler: Union[Handler, TLSHandler],  # noqa: UP007 - a runtime alias with a string
        listeners: list[socket.socket],
        max_connections: int,
        unix_path: str | None = None,
        tls: tuple[ssl.SSLContext, float] | None = None,
    ) -> None:
        self.handler: Callable[[Any], FiberBody[Any]] = handler
        # Invariant: None, or (context, handshake timeout) for a TLS server.
        self._tls = tls
        self.sockets = listeners
        self.max_connections = max_connections
        self.addresses: list[Any] = [sock.getsockname() for sock in listeners]
        self._name = getattr(handler, "__qualname__", None) or repr(handler)
        self._unix_path = unix_path
        self._unix_inode = _inode(unix_path) if unix_path else None
        self._listening = len(listeners)
        self._fibers: dict[int, Fiber[Any]] = {}
        self._keys = itertools.count()
        self._connections = 0
        self._slot_waiters: deque[Fiber[Any]] = deque()
        self._done_waiters: deque[Fiber[Any]] = deque()
        self._closed = False
        self._accepting: set[int] = set()  # keys of the accepting fibers
        self._draining = False  # stop_accepting() was called
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the kernel's pick for port 0)."""
        for address in self.addresses:
            if isinstance(address, tuple):
                return int(address[1])
        raise AttributeError("a Unix socket server has no port; see .addresses")

    @property
    def connections(self) -> int:
        """How many connection fibers are running now."""
        return self._connections

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the listeners failed)."""
        return self._closed

    def start(self) -> _Body:
        """Spawn the accepting fibers (``serve_tcp``/``serve_unix`` do this)."""
        for sock in self.sockets:
            key = next(self._keys)
            fiber = yield Spawn(self._accept_loop(sock, key), f"accept {_describe(sock)}")
            self._fibers[key] = fiber
            self._accepting.add(key)
        _worker_state.server_started(self)

    def serve_forever(self) -> Composite[None]:
        """Wait until the server is closed and all its fibers have finished.

        If the waiting fiber is cancelled, the server is closed. If a
        listening socket failed, that error is raised here.
        """
        return Composite("Server.serve_forever", self._serve_forever())

    def _serve_forever(self) -> _Body:
        _worker_state.serving()  # the worker is ready (see rocket.worker_ready)
        try:
            if self._done():
                pass
            else:
                yield Park(self._done_waiters, f"serve_forever({self._name})")
        except BaseException:
            self.close()
            raise
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop accepting and cancel every connection fiber; idempotent.

        Returns at once: each fiber stops at its next wait and runs its
        ``finally`` blocks. ``serve_forever`` returns when all are done.
        """
        if self._closed:
            return
        self._closed = True
        for fiber in list(self._fibers.values()):
            fiber.cancel()
        self._maybe_done()

    def stop_accepting(self) -> None:
        """Close the listeners and let every connection run on until it ends.

        The first step of a graceful shutdown (what ``run_workers`` does on
        SIGTERM): new clients go to other servers, clients being served are
        served to the end. ``serve_forever`` returns once the last connection
        has ended; :meth:`close` still cancels the ones left.
        """
        self._draining = True
        for key in list(self._accepting):
            fiber = self._fibers.get(key)
            if fiber is not None:
                fiber.cancel()
        self._maybe_done()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = ", ".join(str(address) for address in self.addresses)
        state = "closed" if self._closed else f"{self._connections} connections"
        return f"<Server {self._name} on {where}: {state}>"

    # ---------------------------------------------------------- the fibers

    def _accept_loop(self, listener: socket.socket, key: int) -> _Body:
        pause = 0.0
        try:
            while True:
                while self._connections >= self.max_connections:
                    yield Park(self._slot_waiters, "a free connection slot")
                try:
                    sock, peer = yield Accept(listener)
                except OSError as exc:
                    if exc.errno in _SHORTAGE:
                        pause = min(max(pause * 2, _FIRST_PAUSE), _LONGEST_PAUSE)
                        log.warning(
                            "accept on %s failed (%s); retrying in %.2f s",
                            _describe(listener),
                            exc.strerror,
                            pause,
                        )
                        yield Sleep(pause)
                    elif exc.errno not in _SKIP:
                        raise
                    continue
                pause = 0.0
                yield from self._spawn_connection(sock, peer)
        except Cancelled:
            raise
        except Exception as exc:  # the listener itself failed: the server stops
            log.error("accepting on %s failed; server closed", _describe(listener), exc_info=True)
            self._error = exc
            self.close()
        finally:
            if listener.fileno() >= 0:  # a multishot accept holds it until cancelled
                _context.notify_closing(listener.fileno())
            listener.close()
            self._listening -= 1
            if self._listening == 0:
                self._remove_unix_path()
            self._finished(key)

    def _spawn_connection(self, sock: socket.socket, peer: Any) -> _Body:
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = Stream(sock)
            name = f"{self._name} {peer or 'unix'}"
            key = next(self._keys)
            fiber = yield Spawn(self._connection(stream, peer, key), name)
        except BaseException:
            sock.close()
            raise
        self._fibers[key] = fiber
        self._connections += 1

    def _connection(self, stream: Stream | TLSStream, peer: Any, key: int) -> _Body:
        try:
            if self._tls is not None:
                stream = yield from self._start_tls(stream, peer)
                if stream.closed:
                    return
            body = self.handler(stream)
            if inspect.iscoroutine(body):
                yield from body.__await__()
            elif inspect.isgenerator(body):
                yield from body
            else:
                raise TypeError(
                    f"the handler {self._name} must return a generator or coroutine "
                    f"(a def with yield, or an async def), but it returned {body!r:.60}"
                )
        except Cancelled:
            raise
        except _CLIENT_WENT_AWAY as exc:  # the client's doing, not a bug: no traceback
            log.debug("client %s went away during %s: %r", peer, self._name, exc)
        except Exception as exc:
            if _tls_hang_up(exc):
                log.debug("client %s went away during %s: %r", peer, self._name, exc)
                return
            log.error("connection handler %s failed (peer %s)", self._name, peer, exc_info=True)
        finally:
            stream.close()
            self._connections -= 1
            if self._slot_waiters:
                waiter = self._slot_waiters.popleft()
                waiter.executor.wake(waiter, None)
            self._finished(key)

    def _start_tls(self, stream: Any, peer: Any) -> _Body:
        """The connection as a TLSStream, handshake done; closed if the handshake failed."""
        from rocket.timeouts import fail_after

        from .tls import TLSStream

        assert self._tls is not None
        context, timeout = self._tls
        tls = TLSStream(stream, context, server_side=True)
        try:
            with fail_after(timeout):
                yield from tls.do_handshake()
        except (OSError, EOFError) as exc:  # ssl.SSLError, TimeoutError, resets: the client's doing
            log.debug("TLS handshake with client %s of %s failed: %r", peer, self._name, exc)
            tls.close()
        return tls

    def _finished(self, key: int) -> None:
        self._fibers.pop(key, None)
        self._accepting.discard(key)
        self._maybe_done()

    def _done(self) -> bool:
        return (self._closed or self._draining) and not self._fibers

    def _maybe_done(self) -> None:
        if self._done():
            waiters = self._done_waiters
            while waiters:
                waiter = waiters.popleft()
                waiter.executor.wake(waiter, None)

    def _remove_unix_path(self) -> None:
        path = self._unix_path
        if path and self._unix_inode is not None and _inode(path) == self._unix_inode:
            try:
                os.unlink(path)
            except OSError:
                pass


def _tls_hang_up(exc: BaseException) -> bool:
    """True for a TLS peer that closed the connection without close_notify."""
    tls = sys.modules.get("ssl")  # (no SSLEOFError can be raised unless ssl was imported)
    return tls is not None and isinstance(exc, tls.SSLEOFError)


def _inode(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of a socket file, or None (missing, abstract, not a socket)."""
    if path.startswith("\0"):
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISSOCK(info.st_mode) else None


def _describe(sock: socket.socket) -> str:
    try:
        address = sock.getsockname()
    except OSError:
        return "a closed socket"
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address) or "an unnamed socket"
