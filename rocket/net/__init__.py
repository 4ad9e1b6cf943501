"""Networking: streams, TCP and Unix servers and clients, UDP datagrams.

Everything here is written in terms of rocket's requests (``connect``,
``accept``, ``recv``, ``send``...), so it works on every engine and in both
fiber styles::

    def handler(stream):                       # one fiber per connection
        while line := (yield from stream.readline()):
            yield from stream.write(line)

    def main():
        server = yield from rocket.serve_tcp(handler, "127.0.0.1", 8000)
        yield from server.serve_forever()

Modules: :mod:`~rocket.net.stream` (``Stream``), :mod:`~rocket.net.connect`
(``open_connection``, ``serve_tcp``...), :mod:`~rocket.net.server`
(``Server``), :mod:`~rocket.net.pipes` (``PipeStream``, ``stdin``, ``stdout``),
:mod:`~rocket.net.udp` (``sendto``, ``recvfrom``),
:mod:`~rocket.net.resolve` (names to addresses without blocking),
:mod:`~rocket.net.tls` (``TLSStream``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .connect import open_connection, open_unix_connection, serve_tcp, serve_unix
from .pipes import PipeStream, stdin, stdout
from .server import Handler, Server, TLSHandler
from .stream import DEFAULT_LIMIT, IncompleteReadError, LimitOverrunError, Stream
from .udp import RecvFrom, SendTo, recvfrom, sendto

if TYPE_CHECKING:
    from .tls import TLSStream

__all__ = [
    "DEFAULT_LIMIT",
    "Handler",
    "IncompleteReadError",
    "LimitOverrunError",
    "PipeStream",
    "RecvFrom",
    "SendTo",
    "Server",
    "Stream",
    "TLSHandler",
    "TLSStream",
    "open_connection",
    "open_unix_connection",
    "recvfrom",
    "sendto",
    "serve_tcp",
    "serve_unix",
    "stdin",
    "stdout",
]


def __getattr__(name: str) -> Any:
    """``TLSStream`` on first use: only programs that use TLS pay for importing ``ssl``."""
    if name == "TLSStream":
        from .tls import TLSStream

        return TLSStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
