"""An echo client: several connections at once, each one a fiber, in one thread.

Each client fiber connects with ``rocket.open_connection`` and talks through a
``rocket.Stream``. Some of those calls are *composites*: small pieces of fiber
made of several requests (``open_connection`` may try several addresses;
``readline`` may need several receives). A fiber yields them like any request:
the executor runs a composite as a nested call of the same fiber and sends back
its result (an ``async def`` fiber uses ``await``; ``yield from`` works too and
skips that trip through the executor).

``main`` spawns all the clients first and only then joins them, so their
connects, sends and receives overlap: while one fiber waits for its echo, the
others run. Joining in order gives the results in order.

Run it: start ``python examples/echo_server.py --port 8000``, then
``python examples/echo_client.py --port 8000 --clients 3 --messages 2``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Generator
from typing import Any

import rocket


def client(number: int, host: str, port: int, messages: int) -> Generator[Any, Any, list[str]]:
    """Connect, send each message, read its echo back; return what came back."""
    stream = yield rocket.open_connection(host, port)
    echoes = []
    with stream:  # closes the connection at the end of the block
        for i in range(messages):
            line = f"client {number} message {i}\n".encode()
            yield stream.write(line)
            echo = yield stream.readline()
            echoes.append(echo.decode().strip())
    return echoes


def main(host: str, port: int, clients: int, messages: int) -> Generator[Any, Any, None]:
    handles = []
    for number in range(clients):  # start them all: they run concurrently
        handles.append((yield rocket.spawn(client(number, host, port, messages))))
    for number, handle in enumerate(handles):
        echoes = yield rocket.join(handle)  # the result, or the client's exception
        print(f"client {number} got back: {', '.join(echoes)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2)
    args = parser.parse_args()
    try:
        rocket.run(main(args.host, args.port, args.clients, args.messages))
    except OSError as exc:
        sys.exit(f"echo_client: {exc} (is examples/echo_server.py running?)")
