"""Engine faults from issue 10, each checked on every engine.

Short file writes and the file position, non-contiguous buffers, zero-byte
reads, non-UTF-8 paths, reads whose cost must follow the bytes that arrive,
closing an fd (or a Stream) under a waiting request, and FIFO opens.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import signal
import socket
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import rocket
from rocket import ops
from rocket.fiber import Fiber
from rocket.timeouts import Timeout

Body = Generator[Any, Any, Any]

MiB = 1 << 20


def _open_fds() -> set[str]:
    return {fd for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Every test here must close every fd it (or rocket) opened."""
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    for _ in range(100):  # a worker thread may still be closing a late result
        if not leaked:
            break
        time.sleep(0.01)
        leaked = _open_fds() - before
    assert not leaked, f"leaked fds: {sorted(leaked)}"


def _until_blocked(handle: Fiber[Any], kind: type) -> Body:
    """Yield until ``handle`` waits on the engine with a request of ``kind``."""
    for _ in range(1000):
        if handle.state == "blocked" and type(handle.request) is kind:
            return
        yield rocket.sleep(0)
    raise AssertionError(f"{handle!r} never blocked on {kind.__name__}")


# ----------------------------------------------------- 1: short writes


@pytest.fixture
def fsize_limit() -> Iterator[int]:
    """RLIMIT_FSIZE at 1 MiB (SIGXFSZ ignored), restored afterwards."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, old_limit[1]))
    try:
        yield MiB
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


@pytest.mark.parametrize("append", [False, True], ids=["plain", "O_APPEND"])
def test_short_write_moves_the_file_position(
    engine: str, tmp_path: Path, fsize_limit: int, append: bool
) -> None:
    """A short write at the current position advances it by what was written, like os.write."""
    path = tmp_path / "f"

    def main() -> Body:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_APPEND if append else 0)
        fd = yield rocket.open(path, flags, 0o600)
        try:
            written = yield rocket.write(fd, b"x" * (3 * MiB))
            position = os.lseek(fd, 0, os.SEEK_CUR)
            resource.setrlimit(resource.RLIMIT_FSIZE, (2 * MiB, resource.RLIM_INFINITY))
            more = yield rocket.write(fd, b"0123456789")
        finally:
            yield rocket.close(fd)
        return written, position, more

    assert rocket.run(main(), engine=engine) == (fsize_limit, fsize_limit, 10)
    data = path.read_bytes()
    assert len(data) == fsize_limit + 10
    assert data[:fsize_limit] == b"x" * fsize_limit  # nothing overwritten
    assert data[fsize_limit:] == b"0123456789"


def test_full_writes_at_the_current_position_follow_each_other(engine: str, tmp_path: Path) -> None:
    """Full writes at the current position (file, then pipe) keep their order and position."""
    path = tmp_path / "f"
    r, w = os.pipe()

    def main() -> Body:
        fd = yield rocket.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            assert (yield rocket.write(fd, b"abc")) == 3
            assert (yield rocket.write(fd, b"defg")) == 4
            position = os.lseek(fd, 0, os.SEEK_CUR)
        finally:
            yield rocket.close(fd)
        assert (yield rocket.write(w, b"pipe")) == 4
        return position

    try:
        assert rocket.run(main(), engine=engine) == 7
        assert path.read_bytes() == b"abcdefg"
        assert os.read(r, 10) == b"pipe"
    finally:
        os.close(r)
        os.close(w)


# ------------------------------------------ 3: non-contiguous buffers


def test_non_contiguous_buffer_is_refused_before_anything_is_read(engine: str) -> None:
    """readinto/recv_into refuse a strided memoryview with TypeError, and no data is consumed."""
    r, w = os.pipe()
    ours, theirs = socket.socketpair()
    os.write(w, b"abcdef")
    theirs.send(b"ghijkl")

    def main() -> Body:
        errors = []
        for make in (
            lambda: rocket.readinto(r, memoryview(bytearray(10))[::2]),
            lambda: rocket.recv_into(ours, memoryview(bytearray(10))[::2]),
        ):
            with pytest.raises(TypeError, match="contiguous") as info:
                yield make()
            errors.append(str(info.value))
        return errors, (yield rocket.read(r, 10)), (yield rocket.recv(ours, 10))

    try:
        errors, from_pipe, from_socket = rocket.run(main(), engine=engine)
        assert from_pipe == b"abcdef"
        assert from_socket == b"ghijkl"
        assert "bytearray" in errors[0]  # says what to pass instead
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


# ----------------------------------------------- 14: zero-byte reads


def test_zero_byte_reads_return_at_once(engine: str) -> None:
    """recv(sock, 0), recv_into(sock, b''), read(pipe, 0) return at once, like socket.recv(0)."""
    r, w = os.pipe()
    ours, theirs = socket.socketpair()

    def main() -> Body:
        with rocket.fail_after(5):
            return (
                (yield rocket.recv(ours, 0)),
                (yield rocket.recv_into(ours, bytearray())),
                (yield rocket.read(r, 0)),
                (yield rocket.readinto(r, bytearray())),
            )

    try:
        assert rocket.run(main(), engine=engine) == (b"", 0, b"", 0)
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


# ------------------------------------------------ 20: non-UTF-8 paths


def test_non_utf8_bytes_path(engine: str, tmp_path: Path) -> None:
    """A bytes path that is not UTF-8 is opened, stat'ed and read as os.open would."""
    path = os.fsencode(tmp_path) + b"/caf\xe9-\xff"

    def main() -> Body:
        fd = yield rocket.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        yield rocket.write(fd, b"latin-1 name")
        yield rocket.close(fd)
        size = (yield rocket.stat(path)).size
        fd = yield rocket.open(path)
        data = yield rocket.read(fd, 100)
        yield rocket.close(fd)
        return size, data

    assert rocket.run(main(), engine=engine) == (12, b"latin-1 name")
    assert os.listdir(os.fsencode(tmp_path)) == [b"caf\xe9-\xff"]


# -------------------------------------- 10: cost follows what arrives


def _peak_rss_since_reset() -> int:
    """Bytes of peak resident memory since the last reset (VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def test_huge_read_of_a_pipe_costs_what_arrives(engine: str) -> None:
    """read(pipe, 512 MiB) and recv(sock, 512 MiB) with 5 bytes waiting use little memory."""
    r, w = os.pipe()
    ours, theirs = socket.socketpair()
    os.write(w, b"hello")
    theirs.send(b"world")

    def main() -> Body:
        return (yield rocket.read(r, 512 * MiB)), (yield rocket.recv(ours, 512 * MiB))

    try:
        rocket.run(main(), engine=engine)  # warm up: the engine's own start-up costs
        os.write(w, b"hello")
        theirs.send(b"world")
        _reset_peak_rss()
        base = _peak_rss_since_reset()
        assert rocket.run(main(), engine=engine) == (b"hello", b"world")
        assert _peak_rss_since_reset() - base < 64 * MiB
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


def test_big_reads_of_a_regular_file_return_all_that_was_asked(engine: str, tmp_path: Path) -> None:
    """A 16 MiB read of a 16 MiB file returns 16 MiB, at an offset and at the position."""
    path = tmp_path / "big"
    content = os.urandom(16 * MiB)
    path.write_bytes(content)

    def main() -> Body:
        fd = yield rocket.open(path)
        try:
            whole = yield rocket.read(fd, 16 * MiB, offset=0)
            tail = yield rocket.read(fd, 16 * MiB, offset=MiB)
            first = yield rocket.read(fd, 16 * MiB)
            rest = yield rocket.read(fd, 16 * MiB)
            buffer = bytearray(16 * MiB)
            into = yield rocket.readinto(fd, buffer, 0)
        finally:
            yield rocket.close(fd)
        return whole, tail, first, rest, into, buffer

    whole, tail, first, rest, into, buffer = rocket.run(main(), engine=engine)
    assert whole == content
    assert tail == content[MiB:]
    assert first == content
    assert rest == b""
    assert into == 16 * MiB
    assert buffer == content


def test_big_recv_returns_what_arrived(engine: str) -> None:
    """recv(sock, 1 MiB) returns the 100-byte message that came, and big streams arrive whole."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    payload = os.urandom(4 * MiB)

    def main() -> Body:
        theirs.send(b"m" * 100)
        first = yield rocket.recv(ours, MiB)

        def sender() -> Body:
            yield from rocket.sendall(theirs, payload)
            theirs.shutdown(socket.SHUT_WR)

        yield rocket.spawn(sender())
        chunks = []
        while chunk := (yield rocket.recv(ours, 16 * MiB)):
            chunks.append(chunk)
        return first, b"".join(chunks)

    try:
        first, received = rocket.run(main(), engine=engine)
        assert first == b"m" * 100
        assert received == payload
    finally:
        ours.close()
        theirs.close()


# ----------------------------------------- 11, 12: closing under waiters


def test_close_wakes_a_recv_waiting_on_that_fd(engine: str) -> None:
    """rocket.close(fd) under a waiting recv (and send) wakes them with EBADF at once."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fd = ours.detach()  # rocket.close closes it

    def main() -> Body:
        def reader() -> Body:
            return (yield rocket.recv(fd, 10))

        def writer() -> Body:
            while True:
                yield rocket.send(fd, b"w" * 65536)

        def limited_reader() -> Body:
            return (yield rocket.timeout(30, rocket.recv(fd, 10)))

        with rocket.fail_after(5):
            handles = []
            for body, kind in ((reader, ops.Recv), (writer, ops.Send), (limited_reader, Timeout)):
                handles.append((yield rocket.spawn(body())))
                yield from _until_blocked(handles[-1], kind)
            assert not select.select([], [fd], [], 0)[1]  # the writer waits for room
            yield rocket.close(fd)
            errors = []
            for handle in handles:
                with pytest.raises(OSError) as info:
                    yield rocket.join(handle)
                errors.append(info.value)
        return errors

    try:
        started = time.monotonic()
        errors = rocket.run(main(), engine=engine)
        assert time.monotonic() - started < 2
        assert [type(e) for e in errors] == [OSError] * 3
        assert [e.errno for e in errors] == [errno.EBADF] * 3
        assert "recv(fd=" in str(errors[0])
        assert "send(fd=" in str(errors[1])
    finally:
        theirs.close()


def test_stream_close_wakes_a_writer_blocked_on_a_peer_that_does_not_read(engine: str) -> None:
    """Stream.close() ends a Stream.write blocked on a full socket with EBADF, on every engine."""
    ours, theirs = socket.socketpair()

    def main() -> Body:
        stream = rocket.Stream(ours)

        def writer() -> Body:
            yield from stream.write(b"w" * (64 * MiB))

        with rocket.fail_after(5):
            handle = yield rocket.spawn(writer())
            full = 0  # passes in a row with the writer waiting on a full socket buffer
            while full < 3:
                yield from _until_blocked(handle, ops.SendAll)
                full = 0 if select.select([], [ours], [], 0)[1] else full + 1
                yield rocket.sleep(0)
            stream.close()
            with pytest.raises(OSError) as info:
                yield rocket.join(handle)
        return info.value

    try:
        error = rocket.run(main(), engine=engine)
        assert type(error) is OSError
        assert error.errno == errno.EBADF
        assert ours.fileno() == -1
    finally:
        theirs.close()


def test_stream_close_still_ends_a_read_with_end_of_stream(engine: str) -> None:
    """Stream.close() under a Stream.read in another fiber: the read gets b'', the fd closes."""
    ours, theirs = socket.socketpair()

    def main() -> Body:
        stream = rocket.Stream(ours)

        def reader() -> Body:
            return (yield from stream.read(10))

        with rocket.fail_after(5):
            handle = yield rocket.spawn(reader())
            yield from _until_blocked(handle, ops.StreamRecv)
            stream.close()
            assert ours.fileno() == -1  # closed at once, not by the reader
            return (yield rocket.join(handle))

    try:
        assert rocket.run(main(), engine=engine) == b""
    finally:
        theirs.close()


# ------------------------------------------------------- 13: FIFO opens


def test_fifo_open_waits_for_a_writer(engine: str, tmp_path: Path) -> None:
    """open(fifo, O_RDONLY) waits until a writer opens it, as os.open does; then reads its data."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def main() -> Body:
        def reader() -> Body:
            fd = yield rocket.open(fifo)
            try:
                return (yield rocket.read(fd, 10))
            finally:
                yield rocket.close(fd)

        with rocket.fail_after(5):
            handle = yield rocket.spawn(reader())
            yield from _until_blocked(handle, ops.Open)
            yield rocket.sleep(0.1)
            assert type(handle.request) is ops.Open  # still waiting for a writer
            fd = yield rocket.to_thread(os.open, fifo, os.O_WRONLY)
            os.write(fd, b"through")
            os.close(fd)
            return (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) == b"through"


@pytest.mark.parametrize("how", ["timeout", "fail_after"])
def test_fifo_open_with_a_time_limit_gives_up_on_time(
    engine: str, tmp_path: Path, how: str
) -> None:
    """A time limit around open(fifo) with no writer releases the fiber on time; no fd leaks."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def main() -> Body:
        with rocket.fail_after(5):
            started = time.monotonic()
            if how == "timeout":
                with pytest.raises(TimeoutError):
                    yield rocket.timeout(0.2, rocket.open(fifo))
            else:
                with pytest.raises(TimeoutError), rocket.fail_after(0.2):
                    yield rocket.open(fifo)
            return time.monotonic() - started

    assert rocket.run(main(), engine=engine) < 1.5
    # An open left blocked in a worker thread returns once a writer comes; its fd is closed.
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:  # nobody waits in open any more (io_uring cancelled it)
        assert exc.errno == errno.ENXIO
    else:
        os.close(fd)


def test_fifo_open_for_writing_waits_for_a_reader(engine: str, tmp_path: Path) -> None:
    """open(fifo, O_WRONLY) waits for a reader (no ENXIO), as os.open does."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def main() -> Body:
        def writer() -> Body:
            fd = yield rocket.open(fifo, os.O_WRONLY)
            try:
                return (yield rocket.write(fd, b"out"))
            finally:
                yield rocket.close(fd)

        with rocket.fail_after(5):
            handle = yield rocket.spawn(writer())
            yield from _until_blocked(handle, ops.Open)
            fd = yield rocket.to_thread(os.open, fifo, os.O_RDONLY)
            try:
                assert (yield rocket.join(handle)) == 3
                return os.read(fd, 10)
            finally:
                os.close(fd)

    assert rocket.run(main(), engine=engine) == b"out"


def test_a_short_big_read_hands_out_only_the_bytes_the_kernel_wrote() -> None:
    """A big read's unfilled buffer is never seen: a short result is copied out at its length."""
    from rocket.engines._fresh import unfilled_bytes
    from rocket.engines._uring_finish import fresh_bytes

    buf = unfilled_bytes(4 * MiB)
    assert type(buf) is bytes
    assert len(buf) == 4 * MiB
    assert fresh_bytes(len(buf), (buf, None)) is buf  # a full read: no copy
    short = fresh_bytes(3, (buf, None))
    assert type(short) is bytes
    assert short == buf[:3]


def test_a_partial_send_reaped_after_notify_closing_is_not_resumed_on_the_closed_fd() -> None:
    """io_uring: a sendall whose partial CQE is reaped after notify_closing fails with EBADF.

    The rest of the data must not be sent on the fd number, which the caller
    closes right after notify_closing and the next socket may reuse.
    """
    try:
        from rocket.engines.uring import UringEngine

        engine = UringEngine(entries=64)
    except (ImportError, rocket.EngineUnavailable):
        pytest.skip("io_uring is not available here")
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    theirs.setblocking(False)
    try:
        engine.submit(1, rocket.ops.SendAll(ours, b"x" * (4 * MiB)))
        assert engine.wait(0) == []  # a first partial send; the rest waits in the kernel
        theirs.recv(1 << 20)  # room again: the kernel sends a little more ...
        engine._ring.submit()  # ... and posts that partial CQE, not yet reaped
        engine.notify_closing(ours.fileno())
        done = engine.wait(0.5)
    finally:
        ours.close()
        theirs.close()
        engine.close()
    assert len(done) == 1
    token, value, error = done[0]
    assert value is None
    assert token == 1
    assert isinstance(error, OSError)
    assert error.errno == errno.EBADF
    assert not engine._inflight


def test_the_receive_buffer_pool_stays_bounded_after_a_burst() -> None:
    """io_uring: after 600 receives at once, the engine keeps at most 512 buffers of 64 KiB.

    Each receive takes a pooled buffer and gives it back once its CQE is reaped;
    a burst of many connections must not leave memory behind for good, and a
    pass of 500 clients (500 buffers back at once) must find them all again.
    """
    try:
        from rocket.engines.uring import UringEngine

        engine = UringEngine(entries=1024)
    except (ImportError, rocket.EngineUnavailable):
        pytest.skip("io_uring is not available here")
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limit[1] != resource.RLIM_INFINITY and limit[1] < 1300:
        engine.close()
        pytest.skip("needs 1,300 file descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit[0], 1300), limit[1]))
    pairs: list[tuple[socket.socket, socket.socket]] = []
    try:
        pairs += [socket.socketpair() for _ in range(600)]
        for token, (ours, theirs) in enumerate(pairs, start=1):
            theirs.send(b"x")
            engine.submit(token, rocket.recv(ours, 65536))
        done: list[Any] = []
        while len(done) < len(pairs):
            done += engine.wait(1.0)
        assert sorted(value for _, value, _ in done) == [b"x"] * 600
        kept = engine._pool.kept()
        assert 500 <= len(kept) <= 512
        assert all(len(buf) == 65536 for buf in kept)
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
        engine.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)


def test_a_stream_recv_stopped_by_notify_closing_is_end_of_stream(engine: str) -> None:
    """Every engine: a stream_recv waiting on an fd that notify_closing stops ends with b"".

    The stream is being closed under its reader: that is the stream's end, as
    Stream.close() promises its readers; a plain recv gets EBADF.
    """
    from rocket.engines import create_engine

    eng = create_engine(engine)
    pairs = [socket.socketpair() for _ in range(2)]
    stream, plain = pairs[0][0], pairs[1][0]
    try:
        eng.submit(1, ops.stream_recv(stream, 100))
        eng.submit(2, rocket.recv(plain, 100))
        assert eng.wait(0) == []
        eng.notify_closing(stream.fileno())
        eng.notify_closing(plain.fileno())
        done: list[Any] = []
        for _ in range(20):
            done += eng.wait(0.05)
            if len(done) == 2:
                break
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
        eng.close()
    by_token = {token: (value, error) for token, value, error in done}
    assert by_token[1] == (b"", None)
    value, error = by_token[2]
    assert value is None
    assert isinstance(error, OSError)
    assert error.errno == errno.EBADF
