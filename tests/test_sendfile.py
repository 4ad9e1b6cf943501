"""rocket.sendfile: files to streams (splice on io_uring, os.sendfile on the readiness engine)."""

from __future__ import annotations

import errno
import io
import os
import select
import socket
import ssl
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

import rocket
from rocket.ops import SendFile
from rocket.testing import VirtualEngine

Body = Generator[Any, Any, Any]


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, bytes]:
    """A 3 MiB + 123 bytes file of random bytes (not a multiple of any page or pipe size)."""
    data = os.urandom((3 << 20) + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


def _pair(sndbuf: int | None = None) -> tuple[rocket.Stream, socket.socket]:
    """A connected Stream and the socket at its other end."""
    a, b = socket.socketpair()
    if sndbuf is not None:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    return rocket.Stream(a), b


def _read_all(sock: socket.socket, chunk: int = 1 << 16) -> Body:
    """Read ``sock`` until end of stream (a fiber)."""
    got = bytearray()
    while data := (yield rocket.recv(sock, chunk)):
        got += data
    return bytes(got)


def test_a_whole_file_goes_to_the_stream(engine: str, big_file: tuple[Path, bytes]) -> None:
    """sendfile(stream, File) sends every byte of a 3 MiB file, returns the count, leaks no fd."""
    path, data = big_file

    def main() -> Body:
        stream, peer = _pair()
        reader = yield rocket.spawn(_read_all(peer))
        f = yield rocket.open_file(path)
        before = _open_fds()
        sent = yield rocket.sendfile(stream, f)
        after = _open_fds()
        yield f.close()
        stream.close()
        got = yield rocket.join(reader)
        peer.close()
        return sent, got, before == after

    sent, got, same_fds = rocket.run(main(), engine=engine)
    assert sent == len(data)
    assert got == data
    assert same_fds


def test_offset_and_count_send_that_range_and_leave_the_position(
    engine: str, big_file: tuple[Path, bytes]
) -> None:
    """A range of an fd: exactly count bytes; fewer only at the end; the file position stays 0."""
    path, data = big_file
    fd = os.open(path, os.O_RDONLY)

    def main() -> Body:
        stream, peer = _pair()
        reader = yield rocket.spawn(_read_all(peer))
        results = [
            (yield rocket.sendfile(stream, fd, 1000, 70_000)),
            (yield rocket.sendfile(stream, fd, len(data) - 10, 500)),  # past the end: 10
            (yield rocket.sendfile(stream, fd, len(data) + 5)),  # at/after the end: 0
            (yield rocket.sendfile(stream, fd, 0, 0)),
        ]
        stream.close()
        got = yield rocket.join(reader)
        peer.close()
        return results, got

    try:
        results, got = rocket.run(main(), engine=engine)
        assert results == [70_000, 10, 0, 0]
        assert got == data[1000:71_000] + data[-10:]
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)


def test_a_python_file_object_from_an_async_fiber(
    engine: str, big_file: tuple[Path, bytes]
) -> None:
    """A built-in file object (it has fileno()) works, awaited from an async def fiber."""
    path, data = big_file

    async def main() -> tuple[int, bytes]:
        stream, peer = _pair()
        reader = await rocket.spawn(_read_all(peer))
        with open(path, "rb") as f:
            sent = await rocket.sendfile(stream, f, offset=5)
        stream.close()
        got: bytes = await rocket.join(reader)
        peer.close()
        return sent, got

    assert rocket.run(main(), engine=engine) == (len(data) - 5, data[5:])


def test_a_slow_reader_gets_every_byte(engine: str, big_file: tuple[Path, bytes]) -> None:
    """With 4 KiB socket buffers and a reader of 1000 bytes at a time, partial sends resume."""
    path, data = big_file
    size = 1 << 20

    def main() -> Body:
        stream, peer = _pair(sndbuf=4096)
        reader = yield rocket.spawn(_read_all(peer, 1000))
        with open(path, "rb") as f:
            sent = yield rocket.sendfile(stream, f.fileno(), 7, size)
        stream.close()
        got = yield rocket.join(reader)
        peer.close()
        return sent, got

    sent, got = rocket.run(main(), engine=engine)
    assert sent == size
    assert got == data[7 : 7 + size]


def test_cancelling_leaves_a_prefix_and_the_next_write_follows_it(
    engine: str, tmp_path: Path
) -> None:
    """Cancelled mid-file: the peer got a prefix of the file, then the next write; no fd leaks."""
    data = os.urandom(16 << 20)
    path = tmp_path / "sixteen.bin"
    path.write_bytes(data)

    def main() -> Body:
        stream, peer = _pair(sndbuf=65536)
        f = yield rocket.open_file(path)
        before = _open_fds()
        with rocket.move_on_after(0.2) as scope:  # the peer reads nothing: sendfile waits
            yield rocket.sendfile(stream, f)
        after = _open_fds()
        reader = yield rocket.spawn(_read_all(peer))
        yield stream.write(b"TAIL")
        stream.close()
        got = yield rocket.join(reader)
        yield f.close()
        peer.close()
        return scope.timed_out, before == after, got

    timed_out, same_fds, got = rocket.run(main(), engine=engine)
    assert timed_out
    assert same_fds
    assert got.endswith(b"TAIL")
    prefix = got[:-4]
    assert 0 < len(prefix) < len(data)
    assert prefix == data[: len(prefix)]


def test_a_peer_that_left_fails_it_and_no_fd_leaks(engine: str, tmp_path: Path) -> None:
    """The peer closed: sendfile raises an OSError (EPIPE or ECONNRESET) and closes its pipe."""
    path = tmp_path / "eight.bin"
    path.write_bytes(os.urandom(8 << 20))

    def main() -> Body:
        stream, peer = _pair()
        peer.close()
        f = yield rocket.open_file(path)
        before = _open_fds()
        with pytest.raises((BrokenPipeError, ConnectionResetError)) as info:
            yield rocket.sendfile(stream, f)
        after = _open_fds()
        yield f.close()
        stream.close()
        return str(info.value), before == after

    message, same_fds = rocket.run(main(), engine=engine)
    assert "sendfile(fd=" in message
    assert same_fds


def test_closing_the_stream_stops_a_waiting_sendfile(engine: str, tmp_path: Path) -> None:
    """Stream.close() from another fiber ends a sendfile waiting on a full socket with EBADF."""
    path = tmp_path / "eight.bin"
    path.write_bytes(os.urandom(8 << 20))

    def sender(stream: rocket.Stream, f: rocket.File[bytes]) -> Body:
        try:
            yield rocket.sendfile(stream, f)
        except OSError as exc:
            return exc.errno
        return None

    def main() -> Body:
        stream, peer = _pair(sndbuf=65536)
        f = yield rocket.open_file(path)
        before = _open_fds()
        handle = yield rocket.spawn(sender(stream, f))
        yield rocket.yield_now()  # the sender runs first: its sendfile is under way
        stream.close()
        err = yield rocket.join(handle)
        after = _open_fds()
        yield f.close()
        peer.close()
        return err, before - after

    err, gone = rocket.run(main(), engine=engine)
    assert err == 9  # EBADF
    assert len(gone) == 1  # only the stream's own socket


def test_a_pipe_stream_gets_the_file_through_read_and_write(
    engine: str, big_file: tuple[Path, bytes]
) -> None:
    """A PipeStream is not a socket: the file goes through read + write, every byte in order."""
    path, data = big_file

    def drain(pipe: rocket.PipeStream) -> Body:
        got = bytearray()
        while chunk := (yield pipe.read(1 << 16)):
            got += chunk
        return bytes(got)

    def main() -> Body:
        r, w = os.pipe()
        source, sink = rocket.PipeStream(r), rocket.PipeStream(w)
        reader = yield rocket.spawn(drain(source))
        f = yield rocket.open_file(path)
        sent = yield rocket.sendfile(sink, f, 100)
        yield f.close()
        sink.close()
        got = yield rocket.join(reader)
        source.close()
        return sent, got

    assert rocket.run(main(), engine=engine) == (len(data) - 100, data[100:])


def test_a_tls_stream_gets_the_file_encrypted(
    engine: str, big_file: tuple[Path, bytes], certificate: tuple[Path, Path]
) -> None:
    """Over TLS the file is read and written in chunks (encrypted); the client decrypts it all."""
    path, data = big_file
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def handler(tls: rocket.TLSStream) -> None:
        f = await rocket.open_file(path)
        async with f:
            assert await rocket.sendfile(tls, f) == len(data)

    async def main() -> bytes:
        server = await rocket.serve_tcp(handler, "127.0.0.1", 0, ssl=server_context)
        await rocket.spawn(server.serve_forever())
        with server:
            client = ssl.create_default_context(cafile=cert)
            tls = await rocket.open_connection(
                "127.0.0.1", server.port, ssl=client, server_hostname="localhost"
            )
            with tls:
                return await tls.read_exactly(len(data))

    assert rocket.run(main(), engine=engine) == data


def test_wrong_arguments_say_what_to_pass(engine: str, tmp_path: Path) -> None:
    """Sockets, closed or write-only files, pipes and bad numbers get errors that say what to do."""
    path = tmp_path / "small.bin"
    path.write_bytes(b"x" * 100)

    def main() -> Body:
        stream, peer = _pair()
        errors: list[BaseException] = []
        readable = yield rocket.open_file(path)
        writable = yield rocket.open_file(tmp_path / "out.bin", "wb")
        r, w = os.pipe()
        calls: list[Callable[[], object]] = [
            lambda: rocket.sendfile(peer, readable),
            lambda: rocket.sendfile(stream, writable),
            lambda: rocket.sendfile(stream, readable, -1),
            lambda: rocket.sendfile(stream, readable, 0, "10"),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises((TypeError, ValueError, io.UnsupportedOperation)) as info:
                call()
            errors.append(info.value)
        with pytest.raises(ValueError) as not_regular:
            yield rocket.sendfile(stream, r)
        errors.append(not_regular.value)
        yield readable.close()
        with pytest.raises(ValueError) as closed:
            rocket.sendfile(stream, readable)
        errors.append(closed.value)
        yield writable.close()
        stream.close()
        with pytest.raises(ValueError) as closed_stream:
            rocket.sendfile(stream, r)
        errors.append(closed_stream.value)
        peer.close()
        os.close(r)
        os.close(w)
        return errors

    errors = rocket.run(main(), engine=engine)
    messages = [str(e) for e in errors]
    assert [type(e) for e in errors[:4]] == [
        TypeError, io.UnsupportedOperation, ValueError, TypeError
    ]  # fmt: skip
    assert "rocket.Stream(sock)" in messages[0]
    assert "'rb'" in messages[1]
    assert "offset" in messages[2]
    assert "count" in messages[3]
    assert "regular file" in messages[4]
    assert "Stream.write" in messages[4]
    assert "closed" in messages[5]
    assert "closed stream" in messages[6]


def _send(stream: rocket.Stream, f: rocket.File[bytes]) -> Body:
    return (yield rocket.sendfile(stream, f))


def test_a_second_writer_is_refused_while_it_sends(engine: str, tmp_path: Path) -> None:
    """sendfile is the stream's one write: another fiber's write meanwhile gets RuntimeError."""
    path = tmp_path / "eight.bin"
    path.write_bytes(os.urandom(8 << 20))

    def writer(stream: rocket.Stream) -> Body:
        with pytest.raises(RuntimeError, match="already writing"):
            yield stream.write(b"interleaved")
        return True

    def main() -> Body:
        stream, peer = _pair(sndbuf=65536)
        reader = yield rocket.spawn(_read_all(peer))
        f = yield rocket.open_file(path)
        sending = yield rocket.spawn(_send(stream, f))
        yield rocket.yield_now()  # the sender now holds the stream's write side
        refused = yield rocket.join((yield rocket.spawn(writer(stream))))
        sent = yield rocket.join(sending)
        stream.close()
        got = yield rocket.join(reader)
        yield f.close()
        peer.close()
        return refused, sent, len(got)

    assert rocket.run(main(), engine=engine) == (True, 8 << 20, 8 << 20)


def test_the_virtual_engine_takes_a_scripted_sendfile() -> None:
    """rocket.testing.VirtualEngine completes a sendfile with what the test scripted for it."""
    a, b = socket.socketpair()
    engine = VirtualEngine()
    engine.script("sendfile", a, 1234, delay=2.0)

    def main() -> Body:
        return (yield rocket.sendfile(rocket.Stream(a), 99, 0, 5000))

    try:
        assert rocket.run(main(), engine=engine) == 1234
        assert engine.now == 2.0
    finally:
        a.close()
        b.close()


def test_a_socket_in_non_blocking_mode_gets_every_byte(
    engine: str, big_file: tuple[Path, bytes]
) -> None:
    """A socket its owner made non-blocking (setblocking(False)) is sent the whole file too."""
    path, data = big_file

    def main() -> Body:
        stream, peer = _pair(sndbuf=65536)
        stream.sock.setblocking(False)
        reader = yield rocket.spawn(_read_all(peer, 4096))
        f = yield rocket.open_file(path)
        sent = yield rocket.sendfile(stream, f)
        yield f.close()
        still_non_blocking = not stream.sock.getblocking()
        stream.close()
        got = yield rocket.join(reader)
        peer.close()
        return sent, got == data, still_non_blocking

    assert rocket.run(main(), engine=engine) == (len(data), True, True)


def test_the_liburing_adapter_splices_a_file_range_through_a_pipe(tmp_path: Path) -> None:
    """prep_splice: file at an offset -> pipe (position kept) -> socket, 0 at EOF; prep_poll_out."""
    try:
        from rocket.engines import _liburing

        ring = _liburing.Ring(8)
    except (ImportError, OSError) as exc:
        pytest.skip(f"io_uring is not available here: {exc}")
    data = os.urandom(10_000)
    path = tmp_path / "ten.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    r, w = os.pipe()
    a, b = socket.socketpair()

    def one(*args: int) -> tuple[int, int]:
        ring.prep_splice(7, *args)
        ring.submit()
        while not (done := ring.reap()):
            ring.wait(1.0)
        assert len(done) == 1
        return done[0]

    try:
        assert one(fd, 1000, w, 5000) == (7, 5000)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert one(r, -1, a.fileno(), 5000) == (7, 5000)
        assert b.recv(10_000) == data[1000:6000]
        ring.prep_poll_out(8, a.fileno())
        ring.submit()
        while not (polled := ring.reap()):
            ring.wait(1.0)
        assert polled == [(8, select.POLLOUT)]
        assert one(fd, len(data), w, 100) == (7, 0)
        assert one(fd, len(data) - 3, w, 100) == (7, 3)
        assert os.read(r, 100) == data[-3:]
        os.close(fd)
        assert one(fd, 0, w, 100) == (7, -errno.EBADF)
    finally:
        for each in (r, w):
            os.close(each)
        a.close()
        b.close()
        ring.close()


def test_a_time_limit_is_a_cancel_scope_not_rocket_timeout(engine: str, tmp_path: Path) -> None:
    """fail_after limits a sendfile (TimeoutError, no fd leaks); rocket.timeout() refuses it."""
    path = tmp_path / "eight.bin"
    path.write_bytes(os.urandom(8 << 20))

    def main() -> Body:
        stream, peer = _pair(sndbuf=65536)
        fd = yield rocket.open(path)
        with pytest.raises(TypeError, match=r"rocket\.fail_after\(seconds\)"):
            rocket.timeout(0.2, SendFile(stream.sock, fd, 0, 8 << 20))
        before = _open_fds()
        with pytest.raises(TimeoutError), rocket.fail_after(0.2):
            yield rocket.sendfile(stream, fd)
        after = _open_fds()
        yield rocket.close(fd)
        stream.close()
        peer.close()
        return before == after

    assert rocket.run(main(), engine=engine)
