"""Every file and socket operation, on real files and loopback sockets, on every engine."""

from __future__ import annotations

import errno
import os
import resource
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import rocket


def _unused_fd() -> int:
    """An fd number that is not open now and that nothing here will open."""
    fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
    with pytest.raises(OSError):
        os.fstat(fd)
    return fd


def test_open_write_read_close(engine: str, tmp_path: Path) -> None:
    """A file written through rocket reads back the same bytes."""
    path = tmp_path / "data.bin"

    def main() -> Generator[Any, Any, bytes]:
        fd = yield rocket.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        written = yield rocket.write(fd, b"hello rocket")
        assert written == 12
        yield rocket.fsync(fd)
        yield rocket.close(fd)
        fd = yield rocket.open(path)
        data: bytes = yield rocket.read(fd, 100)
        rest = yield rocket.read(fd, 100)
        assert rest == b""  # end of file
        yield rocket.close(fd)
        return data

    assert rocket.run(main(), engine=engine) == b"hello rocket"
    assert path.stat().st_mode & 0o777 == 0o600


def test_read_offset_none_follows_file_position(engine: str, tmp_path: Path) -> None:
    """offset=None reads at and advances the file position, like os.read."""
    path = tmp_path / "f"
    path.write_bytes(b"abcdef")

    def main() -> Generator[Any, Any, tuple[bytes, bytes, bytes, int]]:
        fd = yield rocket.open(path)
        first = yield rocket.read(fd, 2)
        second = yield rocket.read(fd, 2)
        at_one = yield rocket.read(fd, 2, offset=1)
        position = os.lseek(fd, 0, os.SEEK_CUR)
        yield rocket.close(fd)
        return first, second, at_one, position

    assert rocket.run(main(), engine=engine) == (b"ab", b"cd", b"bc", 4)


def test_write_at_offset_and_readinto(engine: str, tmp_path: Path) -> None:
    """write(offset=) writes in place; readinto fills a bytearray or a memoryview."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")

    def main() -> Generator[Any, Any, tuple[int, bytes, int, bytes]]:
        fd = yield rocket.open(path, os.O_RDWR)
        yield rocket.write(fd, b"XY", offset=3)
        buf = bytearray(4)
        n = yield rocket.readinto(fd, buf, offset=2)
        target = bytearray(6)
        m = yield rocket.readinto(fd, memoryview(target)[1:4], offset=0)
        yield rocket.close(fd)
        return n, bytes(buf), m, bytes(target)

    assert rocket.run(main(), engine=engine) == (4, b"2XY5", 3, b"\x00012\x00\x00")


def test_stat(engine: str, tmp_path: Path) -> None:
    """stat gives size, mode and mtime matching os.stat."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1234)

    def main() -> Generator[Any, Any, rocket.StatResult]:
        return (yield from rocket.stat(path))

    result = rocket.run(main(), engine=engine)
    expected = os.stat(path)
    assert result.size == 1234
    assert result.mode == expected.st_mode
    assert abs(result.mtime - expected.st_mtime) < 1.0


def test_missing_file_raises_with_path_in_message(engine: str, tmp_path: Path) -> None:
    """A failed open raises FileNotFoundError naming the operation and the path."""
    missing = tmp_path / "nope"

    def main() -> Generator[Any, Any, None]:
        yield rocket.open(missing)

    with pytest.raises(FileNotFoundError) as info:
        rocket.run(main(), engine=engine)
    assert info.value.errno == errno.ENOENT
    assert f"open(path={str(missing)!r})" in str(info.value)


def test_bad_fd_error_is_catchable_and_fiber_goes_on(engine: str) -> None:
    """EBADF is thrown into the fiber with the fd in the message; the fiber continues."""
    r = _unused_fd()

    def main() -> Generator[Any, Any, str]:
        try:
            yield rocket.read(r)
        except OSError as exc:
            assert exc.errno == errno.EBADF
            message = str(exc)
        yield rocket.sleep(0)
        return message

    assert rocket.run(main(), engine=engine) == f"[Errno 9] Bad file descriptor: read(fd={r})"


def test_pipe_read_waits_for_writer(engine: str) -> None:
    """A read on an empty pipe blocks only its fiber until another fiber writes."""
    r, w = os.pipe()

    def writer() -> Generator[Any, Any, None]:
        yield rocket.sleep(0.01)
        yield rocket.write(w, b"ping")

    def main() -> Generator[Any, Any, bytes]:
        yield rocket.spawn(writer())
        data: bytes = yield rocket.read(r, 10)
        return data

    try:
        assert rocket.run(main(), engine=engine) == b"ping"
    finally:
        os.close(r)
        os.close(w)


def test_tcp_accept_connect_send_recv(engine: str, listener: socket.socket) -> None:
    """A loopback echo: accept gives (socket, address), recv returns b'' after close."""
    address = listener.getsockname()

    def server() -> Generator[Any, Any, tuple[Any, bytes]]:
        conn, peer = yield rocket.accept(listener)
        assert isinstance(conn, socket.socket)
        received = b""
        while True:
            chunk = yield rocket.recv(conn, 3)
            if not chunk:
                break
            received += chunk
            yield from rocket.sendall(conn, chunk.upper())
        conn.close()
        return peer, received

    def main() -> Generator[Any, Any, tuple[Any, bytes, bytes]]:
        handle = yield rocket.spawn(server())
        client = socket.socket()
        yield rocket.connect(client, address)
        yield from rocket.sendall(client, b"hello world")
        echoed = b""
        while len(echoed) < 11:
            echoed += yield rocket.recv(client)
        yield rocket.shutdown(client, socket.SHUT_WR)
        peer, received = yield rocket.join(handle)
        assert peer == client.getsockname()
        client.close()
        return peer, received, echoed

    _, received, echoed = rocket.run(main(), engine=engine)
    assert received == b"hello world"
    assert echoed == b"HELLO WORLD"


def test_socket_ops_take_fds_and_recv_into(engine: str, listener: socket.socket) -> None:
    """Socket operations accept plain fds; recv_into fills the buffer it is given."""

    def main() -> Generator[Any, Any, tuple[int, bytes]]:
        client = socket.socket()
        yield rocket.connect(client.fileno(), listener.getsockname())
        conn, _ = yield rocket.accept(listener.fileno())
        sent = yield rocket.send(client.fileno(), b"abc")
        assert sent == 3
        buf = bytearray(8)
        n = yield rocket.recv_into(conn.fileno(), buf)
        conn.close()
        client.close()
        return n, bytes(buf[:n])

    assert rocket.run(main(), engine=engine) == (3, b"abc")


def test_connect_refused(engine: str) -> None:
    """Connecting to a closed port raises ConnectionRefusedError."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    def main() -> Generator[Any, Any, None]:
        with socket.socket() as sock:
            yield rocket.connect(sock, ("127.0.0.1", port))

    with pytest.raises(ConnectionRefusedError, match=r"connect\(fd="):
        rocket.run(main(), engine=engine)


def test_recv_on_non_socket_fd(engine: str, tmp_path: Path) -> None:
    """recv on a regular file fails with ENOTSOCK, named in the message."""
    path = tmp_path / "f"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)

    def main() -> Generator[Any, Any, None]:
        yield rocket.recv(fd)

    try:
        with pytest.raises(OSError, match=r"recv\(fd=") as info:
            rocket.run(main(), engine=engine)
        assert info.value.errno == errno.ENOTSOCK
    finally:
        os.close(fd)


def test_async_def_fiber_gets_typed_results(engine: str, tmp_path: Path) -> None:
    """The same requests work with await in an async def fiber, sendall included."""
    path = tmp_path / "f"
    path.write_bytes(b"async!")
    left, right = socket.socketpair()

    async def main() -> tuple[bytes, bytes]:
        fd = await rocket.open(path)
        data = await rocket.read(fd)
        await rocket.close(fd)
        await rocket.sendall(left, b"via await")
        echoed = await rocket.recv(right)
        return data, echoed

    try:
        assert rocket.run(main(), engine=engine) == (b"async!", b"via await")
    finally:
        left.close()
        right.close()


def test_many_reads_in_flight(engine: str) -> None:
    """A thousand fibers each wait on their own pipe; all complete with their data."""
    pipes = [os.pipe() for _ in range(1000)]

    def reader(r: int) -> Generator[Any, Any, bytes]:
        data: bytes = yield rocket.read(r, 16)
        return data

    def main() -> Generator[Any, Any, list[bytes]]:
        handles = []
        for r, _ in pipes:
            handles.append((yield rocket.spawn(reader(r))))
        yield rocket.sleep(0.01)
        for i, (_, w) in enumerate(pipes):
            os.write(w, str(i).encode())
        results = []
        for handle in handles:
            results.append((yield rocket.join(handle)))
        return results

    try:
        assert rocket.run(main(), engine=engine) == [str(i).encode() for i in range(1000)]
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)
