"""Checked by mypy --strict, never run: the public API's inferred types."""

# mypy: disable-error-code="func-returns-value"

from __future__ import annotations

import socket
import ssl
from collections.abc import Generator
from typing import Any, assert_type

import rocket


async def coroutine_fiber(sock: socket.socket) -> None:
    assert_type(await rocket.read(3), bytes)
    assert_type(await rocket.readinto(3, bytearray(4)), int)
    assert_type(await rocket.write(3, b"x"), int)
    assert_type(await rocket.open("/tmp/x"), int)
    assert_type(await rocket.close(3), None)
    assert_type(await rocket.fsync(3), None)
    assert_type(await rocket.stat("/tmp/x"), rocket.StatResult)
    assert_type(await rocket.accept(sock), tuple[socket.socket, Any])
    assert_type(await rocket.connect(sock, ("127.0.0.1", 80)), None)
    assert_type(await rocket.recv(sock), bytes)
    assert_type(await rocket.recv_into(sock, bytearray(4)), int)
    assert_type(await rocket.send(sock, b"x"), int)
    assert_type(await rocket.sendall(sock, b"x"), None)
    assert_type(await rocket.shutdown(sock, socket.SHUT_WR), None)
    assert_type(await rocket.sleep(0.1), None)
    assert_type(await rocket.yield_now(), None)
    assert_type(await rocket.current(), rocket.Fiber[Any])
    assert_type(await rocket.timeout(1, rocket.recv(sock)), bytes)
    assert_type(await rocket.to_thread(len, "abc"), int)
    assert_type(await rocket.gather(child(), child()), list[Any])
    assert_type(await rocket.race(rocket.sleep(1), rocket.recv(sock)), tuple[int, Any])
    assert_type(await rocket.signal(15), int)
    assert_type(await rocket.snapshot(), list[rocket.FiberInfo])
    queue: rocket.Queue[str] = rocket.Queue()
    assert_type(await queue.get(), str)
    assert_type(await queue.put("x"), None)
    assert_type(await rocket.Event().wait(), None)
    assert_type(await rocket.Lock().acquire(), rocket.Lock)
    with rocket.fail_after(1) as scope:
        assert_type(scope, rocket.TimeoutScope)
    async with rocket.TaskGroup() as tg:
        assert_type(tg.spawn(child()), rocket.Fiber[int])
        assert_type(tg.spawn(add, 1, 2), rocket.Fiber[int])
        assert_type(await tg.start(add, 1), Any)
        assert_type(await tg.next_done(), rocket.Fiber[Any] | None)
    assert_type(await rocket.spawn(add, 1, 2), rocket.Fiber[int])
    with rocket.CancelScope(deadline=rocket.current_time() + 1, shield=True) as cancel_scope:
        assert_type(cancel_scope, rocket.CancelScope)
        assert_type(cancel_scope.cancelled_caught, bool)
        assert_type(rocket.current_effective_deadline(), float)


async def add(a: int, b: int) -> int:
    return a + b


async def child() -> int:
    return 1


def generator_fiber() -> Generator[rocket.Request[Any], Any, str]:
    handle = yield from rocket.spawn(child())
    assert_type(handle, rocket.Fiber[int])
    assert_type((yield from rocket.join(handle)), int)
    assert_type((yield from rocket.read(0)), bytes)
    yield from rocket.sendall(1, b"data")
    return "done"


async def network_fiber(sock: socket.socket) -> None:
    stream = await rocket.open_connection("127.0.0.1", 80)
    assert_type(stream, rocket.Stream)
    assert_type(await stream.read(), bytes)
    assert_type(await stream.read_exactly(4), bytes)
    assert_type(await stream.readline(), bytes)
    assert_type(await stream.read_until(b"\r\n"), bytes)
    assert_type(await stream.write(b"x"), None)
    assert_type(await rocket.open_unix_connection("/tmp/sock"), rocket.Stream)
    assert_type(await rocket.sendto(sock, b"x", ("127.0.0.1", 53)), int)
    assert_type(await rocket.recvfrom(sock), tuple[bytes, Any])

    async def handler(stream: rocket.Stream) -> None:
        await stream.write(b"hi")

    server = await rocket.serve_tcp(handler, "127.0.0.1", 0)
    assert_type(server, rocket.Server)
    assert_type(server.port, int)
    assert_type(await server.serve_forever(), None)


def network_generator(stream: rocket.Stream) -> Generator[rocket.Request[Any], Any, bytes]:
    line = yield from stream.readline()
    assert_type(line, bytes)
    return line


def plain_yield_fiber(stream: rocket.Stream) -> Generator[Any, Any, None]:
    """The yield rule: plain ``yield`` of a request, a Composite or a generator.

    The value of a plain ``yield`` has the fiber's send type (``Any`` here): mypy
    cannot know which request was yielded. ``yield from`` and ``await`` keep the
    precise type, so typed code uses them.
    """
    assert_type((yield stream.readline()), Any)
    assert_type((yield rocket.open_connection("localhost", 80)), Any)
    assert_type((yield generator_fiber()), Any)
    assert_type((yield from stream.readline()), bytes)
    assert_type((yield from stream.write(b"x")), None)
    assert_type((yield from rocket.serve_tcp(echo_handler)), rocket.Server)
    assert_type(rocket.spawn(stream.readline()), rocket.sched.Spawn[bytes])


async def awaiting_composites(stream: rocket.Stream) -> None:
    assert_type(await stream.readline(), bytes)
    assert_type(await stream.read_exactly(4), bytes)
    assert_type(await stream.write(b"x"), None)
    assert_type(await rocket.open_connection("localhost", 80), rocket.Stream)


def echo_handler(stream: rocket.Stream) -> Generator[Any, Any, None]:
    data = yield stream.read()
    yield stream.write(data)


async def tls_types(context: ssl.SSLContext) -> None:
    """open_connection returns a Stream, or a TLSStream when given ssl=."""
    assert_type(await rocket.open_connection("localhost", 80), rocket.Stream)
    assert_type(await rocket.open_connection("localhost", 443, ssl=True), rocket.TLSStream)
    tls = await rocket.open_connection("localhost", 443, ssl=context, server_hostname="x")
    assert_type(tls, rocket.TLSStream)
    assert_type(await tls.readline(), bytes)
    assert_type(await tls.write(b"x"), None)
