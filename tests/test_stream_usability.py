"""What users of asyncio streams reach for first: async with, async for, quiet
client disconnects, a clear refusal of TLS sockets, the system's listen backlog."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Generator
from typing import Any

import pytest

import rocket
from rocket.net.connect import default_backlog

Body = Generator[Any, Any, Any]


def test_async_with_and_async_for_over_a_stream(engine: str) -> None:
    """``async with stream`` closes it; ``async for line in stream`` reads lines to EOF."""

    async def main() -> list[bytes]:
        a, b = socket.socketpair()
        with a:
            async with rocket.Stream(b) as stream:
                await rocket.sendall(a, b"one\ntwo\nlast")
                a.shutdown(socket.SHUT_WR)
                lines = [line async for line in stream]
            assert stream.closed
        return lines

    assert rocket.run(main(), engine=engine) == [b"one\n", b"two\n", b"last"]


def test_async_with_a_server_closes_it(engine: str) -> None:
    """``async with server`` closes the server at the end of the block."""

    async def handler(stream: rocket.Stream) -> None:
        await stream.write(await stream.readline())

    async def main() -> bytes:
        async with await rocket.serve_tcp(handler, "127.0.0.1", 0) as server:
            await rocket.spawn(server.serve_forever())
            async with await rocket.open_connection("127.0.0.1", server.port) as client:
                await client.write(b"hi\n")
                line: bytes = await client.readline()
        assert server.closed
        return line

    assert rocket.run(main(), engine=engine) == b"hi\n"


def test_client_resets_are_logged_at_debug_not_error(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that resets its connection is a DEBUG line; a handler's own bug stays an ERROR."""

    def handler(stream: rocket.Stream) -> Body:
        line = yield stream.readline()
        if line == b"bug\n":
            raise ValueError("a real bug")
        yield stream.read_exactly(100)  # the client resets first

    def main() -> Body:
        server = yield rocket.serve_tcp(handler, "127.0.0.1", 0)
        yield rocket.spawn(server.serve_forever())
        for payload in (b"reset\n", b"bug\n"):
            client = socket.create_connection(("127.0.0.1", server.port))
            client.sendall(payload)
            yield rocket.sleep(0.05)
            client.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            client.close()  # linger 0: an RST
            yield rocket.sleep(0.05)
        server.close()

    with caplog.at_level(logging.DEBUG, logger="rocket.net"):
        rocket.run(main(), engine=engine)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "a real bug" in str(errors[0].exc_info[1])  # type: ignore[index]
    assert any(r.levelno == logging.DEBUG and "went away" in r.getMessage() for r in caplog.records)


def test_a_tls_socket_is_refused_with_what_to_do() -> None:
    """Stream(ssl_socket) raises TypeError: it would send plaintext past the TLS layer."""
    context = ssl.create_default_context()
    with (
        socket.socket() as raw,
        context.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False) as tls,
        pytest.raises(TypeError, match=r"ssl\.SSLSocket"),
    ):
        rocket.Stream(tls)


def test_the_default_backlog_is_the_systems() -> None:
    """serve_tcp's default backlog is the kernel's somaxconn (where it can be read)."""
    try:
        with open("/proc/sys/net/core/somaxconn") as file:
            expected = int(file.read())
    except OSError:
        expected = socket.SOMAXCONN
    assert default_backlog() == expected


def test_a_burst_of_500_connects_loses_none(engine: str) -> None:
    """500 clients connecting at once (threads, blocking sockets) are all accepted and echoed."""
    import threading

    results: list[bytes] = []
    lock = threading.Lock()

    def client(port: int, n: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(b"%d\n" % n)
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(64)
                if not chunk:
                    break
                data += chunk
        with lock:
            results.append(data)

    async def echo(stream: rocket.Stream) -> None:
        await stream.write(await stream.readline())

    async def main() -> None:
        server = await rocket.serve_tcp(echo, "127.0.0.1", 0)
        serving = await rocket.spawn(server.serve_forever())
        threads = [
            threading.Thread(target=client, args=(server.port, n), daemon=True) for n in range(500)
        ]
        for thread in threads:
            thread.start()
        with rocket.fail_after(30):
            while True:
                with lock:
                    if len(results) == 500:
                        break
                await rocket.sleep(0.01)
        server.close()
        await rocket.join(serving)

    rocket.run(main(), engine=engine)
    assert sorted(results) == sorted(b"%d\n" % n for n in range(500))
