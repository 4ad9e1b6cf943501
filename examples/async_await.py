"""The echo server again, written with ``async def`` and ``await``.

A rocket fiber can be a coroutine instead of a generator: ``await rocket.recv(...)``
does exactly what ``yield rocket.recv(...)`` does. A request's ``__await__``
yields the request itself to the executor and returns what the executor sends
back, so the executor cannot tell the two styles apart, and both can be mixed
in one program. Composites such as ``Stream.readline`` are awaited too (a
generator fiber yields them, as it yields any request).

This demo starts the server with :func:`rocket.serve_tcp` (one fiber per
connection), runs three clients concurrently against it, and stops.

Run it: ``python examples/async_await.py``
"""

from __future__ import annotations

import rocket


async def echo(stream: rocket.Stream) -> None:
    """One connection: send back every chunk until the peer closes."""
    while True:
        data = await stream.read()
        if not data:
            return
        await stream.write(data)


async def client(number: int, port: int) -> str:
    """Connect, send a line, read the echoed line back."""
    stream = await rocket.open_connection("127.0.0.1", port)
    with stream:
        await stream.write(f"hello from client {number}\n".encode())
        line = await stream.readline()
    return line.decode().strip()


async def main() -> list[str]:
    server = await rocket.serve_tcp(echo, "127.0.0.1", 0)
    with server:
        handles = [await rocket.spawn(client(n, server.port)) for n in range(3)]
        return [await rocket.join(handle) for handle in handles]


if __name__ == "__main__":
    for line in rocket.run(main()):
        print(line)
