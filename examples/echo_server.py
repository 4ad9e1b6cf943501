"""An echo server: one fiber accepts, one fiber per connection echoes.

Each connection's fiber reads as if it were blocking code (``yield
rocket.recv``), but while it waits, the executor runs the other fibers. With
the io_uring engine each ``recv`` and ``send`` becomes one submission queue
entry, and all the fibers' requests from one pass go to the kernel in a single
system call.

Run it: ``python examples/echo_server.py --port 8000`` and talk to it with
``nc 127.0.0.1 8000`` (or ``python examples/echo_client.py``). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Generator
from typing import Any

import rocket


def echo(conn: socket.socket) -> Generator[Any, Any, None]:
    """Send back everything the peer sends, until it closes."""
    with conn:
        while True:
            data = yield rocket.recv(conn, 65536)
            if not data:  # the peer closed its side
                return
            yield rocket.sendall(conn, data)


def serve(host: str, port: int, ready: Any = None) -> Generator[Any, Any, None]:
    """Accept forever; spawn one echo fiber per connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(1024)
    if ready is not None:
        ready(listener.getsockname())
    with listener:
        while True:
            conn, _ = yield rocket.accept(listener)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            yield rocket.spawn(echo(conn))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--engine", default="auto", choices=["auto", "io_uring", "selector"])
    args = parser.parse_args(argv)

    def ready(address: Any) -> None:
        print(f"echo server on {address[0]}:{address[1]} ({args.engine} engine)", flush=True)

    try:
        rocket.run(serve(args.host, args.port, ready), engine=args.engine)
    except KeyboardInterrupt:
        print("bye")


if __name__ == "__main__":
    main()
