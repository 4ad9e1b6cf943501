"""Checked by mypy --strict, never run: the public API's inferred types."""

# mypy: disable-error-code="func-returns-value"

from __future__ import annotations

import socket
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


async def child() -> int:
    return 1


def generator_fiber() -> Generator[rocket.Request[Any], Any, str]:
    handle = yield from rocket.spawn(child())
    assert_type(handle, rocket.Fiber[int])
    assert_type((yield from rocket.join(handle)), int)
    assert_type((yield from rocket.read(0)), bytes)
    yield from rocket.sendall(1, b"data")
    return "done"
