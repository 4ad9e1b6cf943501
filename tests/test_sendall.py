"""sendall and Stream.write: one request, however many partial sends it takes.

The engine sends the rest of a partial send itself, so a large write to a slow
reader costs linear time and memory (issue 10, case 9), and a time limit or a
cancel covers the whole of it. Every test runs on every engine.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tracemalloc
from collections.abc import Generator
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]


def _slow_reader(sock: socket.socket, total: int) -> Body:
    """Read ``total`` bytes in small pieces, one per pass: the writer sends many partial sends."""
    digest = hashlib.sha256()
    got = 0
    while got < total:
        chunk = yield rocket.recv(sock, 65536)
        if not chunk:
            break
        digest.update(chunk)
        got += len(chunk)
        yield rocket.sleep(0)
    return got, digest.hexdigest()


def test_large_sendall_arrives_whole_and_in_order(engine: str) -> None:
    """20 MiB through a socket pair arrives byte for byte, after many partial sends."""
    payload = os.urandom(20 * 1024 * 1024)

    def main() -> Body:
        a, b = socket.socketpair()
        with a, b:
            reader = yield rocket.spawn(_slow_reader(b, len(payload)))
            yield rocket.sendall(a, payload)
            return (yield rocket.join(reader))

    got, digest = rocket.run(main(), engine=engine)
    assert got == len(payload)
    assert digest == hashlib.sha256(payload).hexdigest()


def test_large_write_does_not_copy_the_rest_again_and_again(engine: str) -> None:
    """Stream.write of 32 MiB to a slow reader allocates far less than the payload again."""
    payload = bytes(32 * 1024 * 1024)

    def main() -> Body:
        a, b = socket.socketpair()
        with b:
            stream = rocket.Stream(a)
            reader = yield rocket.spawn(_slow_reader(b, len(payload)))
            tracemalloc.start()
            try:
                yield stream.write(payload)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            stream.close()
            yield rocket.join(reader)
            return peak

    peak = rocket.run(main(), engine=engine)
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes traced during one write"


def test_sendall_takes_a_memoryview_and_a_bytearray(engine: str) -> None:
    """sendall accepts any bytes-like object, as socket.sendall does."""

    def main() -> Body:
        a, b = socket.socketpair()
        with a, b:
            yield rocket.sendall(a, memoryview(b"0123456789")[2:5])
            yield rocket.sendall(a, bytearray(b"ab"))
            return (yield rocket.recv(b, 100))

    assert rocket.run(main(), engine=engine) == b"234ab"


def test_timeout_bounds_the_whole_sendall(engine: str) -> None:
    """timeout(0.2, sendall(...)) to a peer that stops reading raises TimeoutError on time."""
    payload = bytes(64 * 1024 * 1024)

    def main() -> Body:
        a, b = socket.socketpair()
        with a, b:
            with pytest.raises(TimeoutError):
                yield rocket.timeout(0.2, rocket.sendall(a, payload))
            return True

    assert rocket.run(main(), engine=engine)


def test_cancelled_sendall_stops_and_the_fiber_gets_cancelled(engine: str) -> None:
    """Cancelling a fiber blocked in a big sendall ends it with Cancelled; nothing hangs."""

    def writer(sock: socket.socket) -> Body:
        yield rocket.sendall(sock, bytes(64 * 1024 * 1024))

    def main() -> Body:
        a, b = socket.socketpair()
        with a, b:
            handle = yield rocket.spawn(writer(a))
            yield rocket.sleep(0.05)
            handle.cancel()
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
            return True

    assert rocket.run(main(), engine=engine)


def test_sendall_to_a_closed_peer_raises_broken_pipe(engine: str) -> None:
    """sendall to a peer that has gone raises BrokenPipeError (no SIGPIPE)."""

    def main() -> Body:
        a, b = socket.socketpair()
        b.close()
        with a, pytest.raises(BrokenPipeError):
            yield rocket.sendall(a, b"x" * 100000)
        return True

    assert rocket.run(main(), engine=engine)
