"""Opening connections and starting servers: TCP (IPv4 and IPv6) and Unix sockets.

Each function returns a :class:`~rocket.Composite`, for ``yield from`` or
``await``::

    stream = yield from rocket.open_connection("127.0.0.1", 8000)
    server = yield from rocket.serve_tcp(handler, "127.0.0.1", 8000)
    yield from server.serve_forever()

Sockets are created here with ``SOCK_CLOEXEC`` (Python's default) and set up
with plain system calls (``bind``, ``listen``, ``setsockopt`` never wait);
everything that can wait -- name resolution, connect, accept, recv, send --
goes through requests, so other fibers run meanwhile.
"""

from __future__ import annotations

import errno
import math
import os
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Literal, overload

from rocket import _checks
from rocket.ops import Connect
from rocket.request import Composite, Request

from .resolve import Address, check_host, check_port, resolve, wildcard
from .server import Handler, Server, TLSHandler, _inode
from .stream import Stream

if TYPE_CHECKING:
    import ssl as _ssl

    from .tls import TLSStream

__all__ = [
    "default_backlog",
    "open_connection",
    "open_unix_connection",
    "serve_tcp",
    "serve_unix",
]

_Body = Generator[Request[Any], Any, Any]


@overload
def open_connection(
    host: str,
    port: int,
    ssl: Literal[False] | None = None,
    server_hostname: None = None,
    ssl_handshake_timeout: float | None = ...,
) -> Composite[Stream]: ...
@overload
def open_connection(
    host: str,
    port: int,
    ssl: _ssl.SSLContext | Literal[True],
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = ...,
) -> Composite[TLSStream]: ...
def open_connection(
    host: str,
    port: int,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = 60.0,
) -> Composite[Stream] | Composite[TLSStream]:
    """Connect to ``host:port`` over TCP; the result is a :class:`~rocket.Stream`.

    The host may be a name, an IPv4 or an IPv6 address. Every address it
    resolves to is tried in turn until one accepts.

    With ``ssl``, the result is a :class:`~rocket.TLSStream` whose handshake
    is done: ``ssl=True`` uses ``ssl.create_default_context()`` (the system's
    CAs, certificate and host name checked), or pass your own ``SSLContext``.

    Args:
        host: the name or address to connect to.
        port: the TCP port.
        ssl: None (plain TCP), True, or an ``ssl.SSLContext``.
        server_hostname: the name for SNI and the certificate check (default:
            ``host``); only with ``ssl``.
        ssl_handshake_timeout: seconds the TLS handshake may take (None: no limit).

    Raises:
        OSError: no address accepted; the message lists each attempt
            (``ConnectionRefusedError`` when all of them refused).
        socket.gaierror: the name does not resolve.
        ssl.SSLCertVerificationError: the server's certificate is not trusted
            or not for ``server_hostname``.
        TimeoutError: the handshake took longer than ``ssl_handshake_timeout``.
    """
    port = check_port(port, "open_connection")
    host = check_host(host, "open_connection")
    if ssl is None or ssl is False:
        if server_hostname is not None:
            raise ValueError("open_connection(): server_hostname is only meaningful with ssl")
        return Composite("open_connection", _open_connection(host, port))
    import ssl as stdlib_ssl  # only programs that use TLS pay for importing ssl

    if ssl is True:
        ssl = stdlib_ssl.create_default_context()
    elif not isinstance(ssl, stdlib_ssl.SSLContext):
        raise TypeError(
            "open_connection() argument 'ssl' must be None, True or an ssl.SSLContext, "
            f"not {type(ssl).__name__}"
        )
    timeout = _handshake_timeout(ssl_handshake_timeout, "open_connection")
    name = host if server_hostname is None else server_hostname
    return Composite("open_connection", _open_tls(host, port, ssl, name, timeout))


def _handshake_timeout(value: Any, op: str) -> float:
    """The TLS handshake's time limit: seconds > 0 (the usual duration check), None for none."""
    if value is None:
        return math.inf
    seconds = _checks.seconds(value, op, "ssl_handshake_timeout", infinite_ok=True)
    if seconds == 0:
        raise ValueError(f"{op}() argument 'ssl_handshake_timeout' must be > 0 or None, not 0")
    return seconds


def _open_tls(
    host: str, port: int, context: _ssl.SSLContext, server_hostname: str, timeout: float
) -> _Body:
    from rocket.timeouts import fail_after

    from .tls import TLSStream

    stream = yield from _open_connection(host, port)
    tls = TLSStream(stream, context, server_hostname=server_hostname)
    try:
        with fail_after(timeout):
            yield from tls.do_handshake()
    except TimeoutError:
        tls.close()
        raise TimeoutError(
            f"open_connection(): the TLS handshake with {host} port {port} did not finish "
            f"within {timeout:g} s (ssl_handshake_timeout); is it a TLS server?"
        ) from None
    except BaseException:
        tls.close()
        raise
    return tls


def _open_connection(host: str, port: int) -> _Body:
    addresses = yield from resolve(host, port, "open_connection")
    failures: list[tuple[Any, OSError]] = []
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            yield Connect(sock, sockaddr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            sock.close()
            failures.append((sockaddr, exc))
            continue
        except BaseException:
            sock.close()
            raise
        return Stream(sock)
    raise _connect_error(host, port, failures)


def _connect_error(host: str, port: int, failures: list[tuple[Any, OSError]]) -> OSError:
    if len(failures) == 1:
        return failures[0][1]
    codes = {exc.errno for _, exc in failures}
    code = codes.pop() if len(codes) == 1 else None
    tried = "; ".join(f"{_show(address)}: {exc.strerror or exc}" for address, exc in failures)
    message = f"could not connect to {host} port {port} ({tried})"
    return OSError(code, message) if code is not None else OSError(message)


def _show(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_unix_connection(path: str | bytes | os.PathLike[str]) -> Composite[Stream]:
    """Connect to the Unix domain stream socket at ``path``; the result is a Stream."""
    where = _checks.unix_path(path, "open_unix_connection")
    return Composite("open_unix_connection", _open_unix_connection(where))


def _open_unix_connection(path: str) -> _Body:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        yield Connect(sock, path)
    except BaseException:
        sock.close()
        raise
    return Stream(sock)


def default_backlog() -> int:
    """The system's largest listen backlog (``net.core.somaxconn``), what ``listen`` gets.

    A burst of connects larger than the backlog is refused or retried by the
    kernel; the system's own limit is what a server should ask for.
    """
    try:
        with open("/proc/sys/net/core/somaxconn") as file:
            return int(file.read())
    except (OSError, ValueError):  # not Linux, or no /proc
        return socket.SOMAXCONN


def _check_server_args(handler: Any, backlog: Any, max_connections: Any, op: str) -> int:
    """Check a server's arguments; returns the backlog to listen with."""
    if not callable(handler):
        raise TypeError(
            f"{op}() argument 'handler' must be a function that takes a Stream "
            f"(def with yield, or async def), not {type(handler).__name__}"
        )
    if _checks.size(max_connections, op, "max_connections") < 1:
        raise ValueError(f"{op}() argument 'max_connections' must be >= 1, got {max_connections}")
    return default_backlog() if backlog is None else _checks.size(backlog, op, "backlog")


def serve_tcp(
    handler: Handler | TLSHandler,
    host: str | None = None,
    port: int = 0,
    *,
    backlog: int | None = None,
    max_connections: int = 1024,
    ssl: _ssl.SSLContext | None = None,
    ssl_handshake_timeout: float | None = 60.0,
    reuse_port: bool = False,
) -> Composite[Server]:
    """Listen on ``host:port`` and run ``handler(stream)`` in a new fiber per connection.

    ``host=None`` (or ``""``) listens on every interface, IPv4 and IPv6;
    ``"localhost"`` on both loopback addresses; a name or address on what it
    resolves to. ``port=0`` lets the kernel pick a free port (see
    :attr:`Server.port`); all listeners share it. The result is the running
    :class:`Server`; the connection is closed when the handler ends, and a
    handler's exception is logged without stopping the server.

    Args:
        handler: called with each connection's :class:`~rocket.Stream` (a
            :class:`~rocket.TLSStream` with ``ssl``); returns a generator or coroutine.
        host: where to listen (see above).
        port: the TCP port, 0 for any free one.
        backlog: connections the kernel queues before rocket accepts them
            (default: the system's ``net.core.somaxconn``, see :func:`default_backlog`).
        max_connections: connections served at once; more wait in the backlog.
        ssl: an ``ssl.SSLContext`` with the server's certificate
            (``context.load_cert_chain(...)``): every handler then gets a TLS
            stream whose handshake is done. A client whose handshake fails or
            takes longer than ``ssl_handshake_timeout`` is logged at DEBUG and
            dropped; the handler is not called.
        ssl_handshake_timeout: seconds a client's TLS handshake may take (None: no limit).
        reuse_port: set ``SO_REUSEPORT``, so that several processes (the workers of
            :func:`rocket.run_workers`) listen on the same port and the kernel
            spreads new connections among them. Give an explicit ``port``: with
            ``port=0`` each process would get a port of its own.

    Raises:
        OSError: a socket could not be bound (e.g. ``EADDRINUSE``).
    """
    port = check_port(port, "serve_tcp")
    backlog = _check_server_args(handler, backlog, max_connections, "serve_tcp")
    if host is not None and not isinstance(host, str):
        raise TypeError(f"serve_tcp() argument 'host' must be a str or None, not {host!r}")
    timeout = _handshake_timeout(ssl_handshake_timeout, "serve_tcp")
    if not isinstance(reuse_port, bool):
        raise TypeError(
            f"serve_tcp() argument 'reuse_port' must be True or False, not {reuse_port!r}"
        )
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise OSError(errno.ENOPROTOOPT, "serve_tcp(reuse_port=True): no SO_REUSEPORT here")
    if ssl is not None:
        import ssl as stdlib_ssl

        if not isinstance(ssl, stdlib_ssl.SSLContext):
            raise TypeError(
                "serve_tcp() argument 'ssl' must be None or an ssl.SSLContext with the "
                f"server's certificate, not {type(ssl).__name__}"
            )
    tls = None if ssl is None else (ssl, timeout)
    body = _serve_tcp(handler, host, port, backlog, max_connections, tls, reuse_port)
    return Composite("serve_tcp", body)


def _serve_tcp(
    handler: Handler | TLSHandler,
    host: str | None,
    port: int,
    backlog: int,
    max_connections: int,
    tls: tuple[_ssl.SSLContext, float] | None,
    reuse_port: bool,
) -> _Body:
    if host:
        addresses = yield from resolve(host, port, "serve_tcp")
    else:
        addresses = wildcard(port)
    listeners = _listen_tcp(addresses, backlog, reuse_port)
    server = Server(handler, listeners, max_connections, tls=tls)
    yield from server.start()
    return server


def _listen_tcp(addresses: list[Address], backlog: int, reuse_port: bool) -> list[socket.socket]:
    """Bind and listen on each address; port 0 binds them all to the first's port."""
    listeners: list[socket.socket] = []
    try:
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # the IPv4 listener takes IPv4 clients
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sockaddr[1] == 0 and len(listeners) > 1:
                sockaddr = (sockaddr[0], listeners[0].getsockname()[1], *sockaddr[2:])
            sock.bind(sockaddr)
            sock.listen(backlog)
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def serve_unix(
    handler: Handler,
    path: str | bytes | os.PathLike[str],
    *,
    backlog: int | None = None,
    max_connections: int = 1024,
) -> Composite[Server]:
    """Like :func:`serve_tcp`, on a Unix domain stream socket at ``path``.

    A stale socket file at ``path`` (left by a server that died) is replaced;
    any other file there raises ``FileExistsError``. The server removes its
    socket file when it closes.
    """
    where = _checks.unix_path(path, "serve_unix")
    backlog = _check_server_args(handler, backlog, max_connections, "serve_unix")
    return Composite("serve_unix", _serve_unix(handler, where, backlog, max_connections))


def _serve_unix(handler: Handler, path: str, backlog: int, max_connections: int) -> _Body:
    if not path.startswith("\0") and os.path.lexists(path):
        if _inode(path) is None:
            raise FileExistsError(errno.EEXIST, f"{os.strerror(errno.EEXIST)}: {path!r}")
        os.unlink(path)  # a socket file nobody removed: the usual leftover
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    server = Server(handler, [sock], max_connections, unix_path=path)
    yield from server.start()
    return server
