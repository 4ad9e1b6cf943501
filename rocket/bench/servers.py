"""Echo servers for the benchmark: rocket and what a Python user would pick instead.

Run one as ``python -m rocket.bench.servers NAME`` (:func:`command` gives the
exact command line): it listens on 127.0.0.1 (a free port), prints ``ready PORT``
and serves until killed. The rocket servers are written with the public API, the
way a user would write them; ``rocket-io_uring`` and ``rocket-selector`` are the
logic of ``examples/echo_server.py`` (copied, since the examples do not ship in the
wheel). ``trampoline`` is the bare io_uring loop of :mod:`rocket.bench.trampoline`,
started as a plain script so that not even the rocket package is imported.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import sys
import threading
from collections.abc import Callable, Generator
from typing import Any, cast

import rocket

__all__ = ["SERVERS", "available", "command"]

_BACKLOG = 4096


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(_BACKLOG)
    return sock


def _ready(port: int) -> None:
    print(f"ready {port}", flush=True)


# ------------------------------------------------------------------ rocket


def _rocket_echo(conn: socket.socket) -> Generator[Any, Any, None]:
    with conn:
        while True:
            try:
                data = yield rocket.recv(conn, 65536)
            except ConnectionResetError:  # the load generator went away
                return
            if not data:
                return
            yield rocket.sendall(conn, data)


def _rocket_serve(listener: socket.socket) -> Generator[Any, Any, None]:
    _ready(listener.getsockname()[1])
    while True:
        conn, _ = yield rocket.accept(listener)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield rocket.spawn(_rocket_echo(conn))


def rocket_server(engine: str) -> Callable[[], None]:
    def serve() -> None:
        rocket.run(_rocket_serve(_listener()), engine=engine)

    return serve


def _stream_echo(stream: rocket.Stream) -> Generator[Any, Any, None]:
    while True:
        try:
            data = yield from stream.read(65536)
        except ConnectionResetError:  # the load generator went away
            return
        if not data:
            return
        yield stream.write(data)  # a request: plain yield is the fastest form


def rocket_streams(engine: str) -> Callable[[], None]:
    def main() -> Generator[Any, Any, None]:
        server = yield from rocket.serve_tcp(_stream_echo, "127.0.0.1", 0, backlog=_BACKLOG)
        _ready(server.port)
        yield from server.serve_forever()

    return lambda: rocket.run(main(), engine=engine)


# ----------------------------------------------------------------- threads


def threads() -> None:
    """One thread per connection with blocking sockets (the C project's baseline)."""
    listener = _listener()
    _ready(listener.getsockname()[1])

    def echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:  # the load generator went away
                pass

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


# ----------------------------------------------------------------- asyncio


async def _streams_main() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, sock=_listener())
    _ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


class _EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _protocol_main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, sock=_listener())
    _ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def _uvloop_run(main: Callable[[], Any]) -> Callable[[], None]:
    def serve() -> None:
        import uvloop

        uvloop.run(main())

    return serve


# ------------------------------------------------------------- the ceiling


def _trampoline_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "trampoline.py")


def trampoline() -> None:
    """The bare io_uring trampoline (run by :func:`command` as a script instead)."""
    from rocket.bench.trampoline import main

    main()


def _trampoline_unavailable() -> str | None:
    try:
        import liburing
    except ImportError:
        return "the liburing package is not installed (pip install liburing)"
    ring = liburing.Ring()
    try:
        liburing.io_uring_queue_init(8, ring)
    except OSError as exc:
        return f"io_uring is not available here ({exc})"
    liburing.io_uring_queue_exit(ring)
    return None


# ------------------------------------------------------------- trio, gevent


def trio_server() -> None:
    import trio

    async def echo(stream: Any) -> None:
        async for data in stream:
            await stream.send_all(data)

    async def main() -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(_listener()))
        _ready(listener.socket.getsockname()[1])
        await trio.serve_listeners(echo, [listener])

    trio.run(main)


def gevent_server() -> None:
    from gevent.server import StreamServer

    def echo(conn: Any, _: Any) -> None:
        while data := conn.recv(65536):
            conn.sendall(data)

    server = StreamServer(_listener(), echo)
    server.start()
    _ready(server.server_port)
    server.serve_forever()


#: name -> (module it needs, or None; how to serve)
SERVERS: dict[str, tuple[str | None, Callable[[], None]]] = {
    "trampoline": ("liburing", trampoline),
    "rocket-io_uring": (None, rocket_server("io_uring")),
    "rocket-selector": (None, rocket_server("selector")),
    "rocket-streams": (None, rocket_streams("auto")),
    "threads": (None, threads),
    "asyncio-streams": (None, lambda: asyncio.run(_streams_main())),
    "asyncio-protocol": (None, lambda: asyncio.run(_protocol_main())),
    "uvloop-streams": ("uvloop", _uvloop_run(_streams_main)),
    "uvloop-protocol": ("uvloop", _uvloop_run(_protocol_main)),
    "trio": ("trio", trio_server),
    "gevent": ("gevent", gevent_server),
}


def available(name: str) -> str | None:
    """None if server ``name`` can run here, else why not."""
    if name == "trampoline":
        return _trampoline_unavailable()
    needs = SERVERS[name][0]
    if needs is not None and importlib.util.find_spec(needs) is None:
        return f"{needs} is not installed (pip install 'rocket[bench]')"
    if name in ("rocket-io_uring", "rocket-selector"):
        from rocket.engines import create_engine

        try:
            create_engine(name.split("-")[1]).close()
        except (rocket.EngineUnavailable, OSError) as exc:
            return str(exc)
    return None


def command(name: str) -> list[str]:
    """The command line that starts server ``name`` (it prints ``ready PORT``)."""
    if name == "trampoline":
        return [sys.executable, _trampoline_path()]
    return [sys.executable, "-m", "rocket.bench.servers", name]


if __name__ == "__main__":
    SERVERS[sys.argv[1]][1]()
