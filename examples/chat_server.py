"""A chat server: many clients, one Queue per client, broadcast, clean disconnects.

Each connection gets two fibers: a *reader* that turns the client's lines into
broadcasts, and a *writer* that drains the client's own :class:`rocket.Queue`
onto its socket. Broadcasting is just ``put_nowait`` into every queue -- no
socket I/O happens in the broadcaster, so one slow client cannot stall the
others (its queue is bounded: a client that falls too far behind is dropped).
When a client leaves, its reader ends, cancels its writer, and the room says
goodbye; ``finally`` blocks make sure nothing is left behind.

Run it: ``python examples/chat_server.py --port 8001`` and chat with
``nc 127.0.0.1 8001`` from several terminals; with ``--demo`` it runs three
scripted clients against itself and prints what each one saw.
"""

from __future__ import annotations

import argparse
import queue as stdlib_queue
from collections.abc import Generator
from typing import Any

import rocket

#: Lines a client may fall behind before it is disconnected.
BACKLOG = 100


class Room:
    """Everyone connected, each with the queue of lines waiting for them."""

    def __init__(self) -> None:
        self.members: dict[str, rocket.Queue[bytes]] = {}

    def broadcast(self, line: str) -> None:
        for name, queue in list(self.members.items()):
            try:
                queue.put_nowait(line.encode() + b"\n")
            except stdlib_queue.Full:  # that client is too slow: drop it
                del self.members[name]


def writer(stream: rocket.Stream, queue: rocket.Queue[bytes]) -> Generator[Any, Any, None]:
    """Send the client every line put in its queue."""
    while True:
        line: bytes = yield queue.get()
        yield stream.write(line)


def handle(room: Room) -> Any:
    """The per-connection handler for serve_tcp: first line is the name."""

    def session(stream: rocket.Stream) -> Generator[Any, Any, None]:
        name = (yield stream.readline()).decode().strip() or "anonymous"
        queue: rocket.Queue[bytes] = rocket.Queue(BACKLOG)
        room.members[name] = queue
        sender = yield rocket.spawn(writer(stream, queue), name=f"writer-{name}")
        room.broadcast(f"* {name} joined")
        try:
            while True:
                line = yield stream.readline()
                if not line:  # the client disconnected
                    break
                room.broadcast(f"{name}: {line.decode().strip()}")
        finally:
            room.members.pop(name, None)
            sender.cancel()
            room.broadcast(f"* {name} left")

    return session


def scripted_client(name: str, port: int, says: list[str], hears: int) -> Any:
    """A demo client: join, say each line, collect ``hears`` lines, leave."""

    def body() -> Generator[Any, Any, list[str]]:
        stream = yield rocket.open_connection("127.0.0.1", port)
        heard: list[str] = []
        with stream:
            yield stream.write(f"{name}\n".encode())
            yield rocket.sleep(0.05)  # let everyone join first
            for line in says:
                yield stream.write(f"{line}\n".encode())
            while len(heard) < hears:
                heard.append((yield stream.readline()).decode().strip())
        return heard

    return body()


def demo() -> Generator[Any, Any, None]:
    room = Room()
    server = yield rocket.serve_tcp(handle(room), "127.0.0.1", 0)
    with server:
        alice = yield rocket.spawn(scripted_client("alice", server.port, ["hi all"], 4))
        yield rocket.sleep(0.01)
        bob = yield rocket.spawn(scripted_client("bob", server.port, [], 2))
        for who, handle_ in (("alice", alice), ("bob", bob)):
            heard = yield rocket.join(handle_)
            print(f"{who} heard: {' | '.join(heard)}")
        yield rocket.sleep(0.05)
        print(f"members left in the room: {sorted(room.members)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--demo", action="store_true", help="run scripted clients and exit")
    args = parser.parse_args()
    if args.demo:
        rocket.run(demo())
        return

    def serve() -> Generator[Any, Any, None]:
        server = yield rocket.serve_tcp(handle(Room()), args.host, args.port)
        print(f"chat server on {args.host}:{server.port}", flush=True)
        yield server.serve_forever()

    try:
        rocket.run(serve())
    except KeyboardInterrupt:
        print("bye")


if __name__ == "__main__":
    main()
