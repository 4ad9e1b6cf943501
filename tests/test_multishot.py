"""Stream receives: one multishot receive per socket on io_uring, recv on the readiness engine.

Every test runs on both engines with the same meaning; on io_uring the engine is
made with ``multishot=True``, and the checks that only make sense there (bytes
kept by the engine, ENOBUFS, the armed multishots) look at ``engine.streams``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import rocket
from rocket.engines import Engine, _uring_multishot, create_engine
from rocket.testing import VirtualEngine

_Body = Generator[Any, Any, Any]


def _engine(name: str) -> Engine:
    if name == "io_uring":
        from rocket.engines.uring import UringEngine

        return UringEngine(multishot=True)
    return create_engine(name)


def _streams(engine: Engine) -> Any:
    """The io_uring engine's stream receives, or None on the readiness engine."""
    streams = getattr(engine, "streams", None)
    assert streams is None or streams.on
    return streams


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair of stream sockets: (ours, the peer's)."""
    ours, peer = socket.socketpair()
    yield ours, peer
    ours.close()
    peer.close()


def _bounded(body: _Body) -> _Body:
    """``body`` under a time limit: a broken receive fails the test instead of hanging it."""
    with rocket.fail_after(30):
        return (yield from body)


def _kept(engine: Engine, fd: int, n: int) -> _Body:
    """Step the loop until the engine keeps ``n`` bytes for ``fd`` (io_uring only)."""
    streams = _streams(engine)
    if streams is None:
        return
    with rocket.fail_after(5):
        while streams.queued(fd) < n:
            yield rocket.sleep(0)


def test_data_arriving_with_no_reader_is_kept_in_order(
    engine: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    """Bytes that arrive while no fiber reads are kept, in order, for the next reads."""
    ours, peer = pair
    eng = _engine(engine)
    messages = [f"message {i:03d};".encode() for i in range(100)]

    def main() -> _Body:
        stream = rocket.Stream(ours)
        peer.sendall(b"first")
        assert (yield stream.read()) == b"first"  # arms the multishot
        for message in messages:
            peer.send(message)
        yield from _kept(eng, ours.fileno(), sum(map(len, messages)))
        got = yield stream.read_exactly(sum(map(len, messages)))
        stream.close()
        return got

    assert rocket.run(_bounded(main()), engine=eng) == b"".join(messages)


def test_cancelled_reader_loses_nothing(
    engine: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    """A read cancelled while it waits loses nothing: the next read gets every byte."""
    ours, peer = pair
    eng = _engine(engine)

    def main() -> _Body:
        stream = rocket.Stream(ours)
        with rocket.move_on_after(0.01) as scope:
            yield stream.read()
        assert scope.timed_out
        reader = yield rocket.spawn(stream.read())
        yield rocket.sleep(0)  # it waits now
        reader.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(reader)
        peer.sendall(b"after the cancels")
        yield from _kept(eng, ours.fileno(), 17)
        got = yield stream.read_exactly(17)
        stream.close()
        return got

    assert rocket.run(_bounded(main()), engine=eng) == b"after the cancels"


def test_close_with_buffers_out_returns_them_and_the_fd(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing a stream with bytes kept and a multishot armed frees its buffers and its socket.

    The peer sees end of stream (the kernel let go of the socket), no byte of the
    closed stream reaches a new stream that gets its fd number, and the buffers
    are all back: a new stream can receive more than the whole group holds.
    """
    monkeypatch.setattr(_uring_multishot, "BUFFERS", 4)
    monkeypatch.setattr(_uring_multishot, "BUFFER_SIZE", 4096)
    eng = _engine(engine)
    old, old_peer = socket.socketpair()
    fresh = b"fresh stream data " * 4000  # 72 kB: more than the 4 x 4 KiB group

    def main() -> _Body:
        stream = rocket.Stream(old)
        old_peer.sendall(b"x" * 10000)
        assert (yield stream.read(1)) == b"x"
        yield from _kept(eng, old.fileno(), 9999)
        number = old.fileno()
        stream.close()
        old_peer.settimeout(5)
        try:  # closed for real (no multishot holds the socket): end of stream, or a reset
            assert old_peer.recv(10) == b""  # (the readiness engine left bytes unread)
        except ConnectionResetError:
            pass
        new, new_peer = socket.socketpair()
        with new_peer:
            assert number in (new.fileno(), new_peer.fileno())  # the number was reused
            if new.fileno() != number:
                new, new_peer = new_peer, new
            with rocket.Stream(new) as again:
                new_peer.sendall(fresh[:100])
                first = yield again.read()
                writer = yield rocket.spawn(rocket.Stream(new_peer).write(fresh[100:]))
                rest = yield again.read_exactly(len(fresh) - len(first))
                yield rocket.join(writer)
        return first + rest

    try:
        assert rocket.run(_bounded(main()), engine=eng) == fresh
    finally:
        old_peer.close()
    streams = _streams(eng)
    if streams is not None:
        assert not streams.armed
        assert not streams.by_fd


def test_fast_peer_slow_reader_every_byte_in_order_memory_bounded(
    engine: str, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer sends 10 MB to a slow reader: every byte comes in order, the kept bytes stay bounded.

    The bound: the high-water mark plus what the kernel can deliver in one pass
    before the multishot's cancel (the buffer group: 64 x 16 KiB here).
    """
    monkeypatch.setattr(_uring_multishot, "BUFFERS", 64)
    eng = _engine(engine)
    data = os.urandom(10 * 1024 * 1024)
    most = [0]

    def main() -> _Body:
        client = yield from _connected(listener)
        server, _ = listener.accept()
        server.setblocking(False)
        sender = rocket.Stream(server)
        writer = yield rocket.spawn(sender.write(data))  # a big write: many partial sends
        digest = hashlib.sha256()
        received = 0
        streams = _streams(eng)
        with rocket.Stream(client) as stream:
            while received < len(data):
                chunk = yield stream.read(1000)  # slow: 1000 bytes a step
                assert chunk
                digest.update(chunk)
                received += len(chunk)
                if streams is not None:
                    most[0] = max(most[0], streams.queued(client.fileno()))
        yield rocket.join(writer)
        sender.close()
        return digest.digest()

    assert rocket.run(_bounded(main()), engine=eng) == hashlib.sha256(data).digest()
    if _streams(eng) is not None:
        group = _uring_multishot.BUFFERS * _uring_multishot.BUFFER_SIZE
        assert _uring_multishot.HIGH_WATER < most[0] <= _uring_multishot.HIGH_WATER + group


def _connected(listener: socket.socket) -> _Body:
    client = socket.socket()
    client.setblocking(False)
    yield rocket.connect(client, listener.getsockname())
    return client


def test_enobufs_rearms(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the kernel runs out of buffers (ENOBUFS) every receive goes on: all bytes, in order.

    Stream A's 60 kB take the whole group (2 x 4 KiB) while stream B waits, so
    B's receive ends with ENOBUFS before it got a byte: it must be re-armed by
    the engine, since no read of B comes to do it.
    """
    monkeypatch.setattr(_uring_multishot, "BUFFERS", 2)
    monkeypatch.setattr(_uring_multishot, "BUFFER_SIZE", 4096)
    eng = _engine(engine)
    (a, a_peer), (b, b_peer) = socket.socketpair(), socket.socketpair()
    data = os.urandom(100_000)

    def main() -> _Body:
        with rocket.Stream(a) as first, rocket.Stream(b) as second:
            a_peer.sendall(b"a")
            b_peer.sendall(b"b")
            assert (yield first.read()) == b"a"
            assert (yield second.read()) == b"b"  # both multishots armed
            reader = yield rocket.spawn(second.read_exactly(5))
            yield rocket.sleep(0)  # B waits
            a_peer.sendall(data[:60_000])  # first: A's receive takes the buffers
            b_peer.sendall(b"hello")
            got = yield first.read_exactly(60_000)
            assert (yield rocket.join(reader)) == b"hello"
            writer = yield rocket.spawn(rocket.Stream(a_peer).write(data[60_000:]))
            got += yield first.read_exactly(40_000)
            yield rocket.join(writer)
        return got

    try:
        assert rocket.run(_bounded(main()), engine=eng) == data
    finally:
        a_peer.close()
        b_peer.close()
    streams = _streams(eng)
    if streams is not None:
        assert streams.enobufs > 0


def test_partial_sends_to_slow_reader_arrive_whole(
    engine: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    """Stream.write of 8 MB to a reader taking 4 KiB at a time returns once all of it is sent."""
    ours, peer = pair
    eng = _engine(engine)
    data = os.urandom(8 * 1024 * 1024)

    def reader(stream: rocket.Stream) -> _Body:
        got = bytearray()
        while len(got) < len(data):
            got += yield stream.read(4096)
        return bytes(got)

    def main() -> _Body:
        with rocket.Stream(ours) as writer_end, rocket.Stream(peer) as reader_end:
            fiber = yield rocket.spawn(reader(reader_end))
            yield writer_end.write(data)
            return (yield rocket.join(fiber))

    assert rocket.run(_bounded(main()), engine=eng) == data


def test_time_limit_on_stream_recv(engine: str, pair: tuple[socket.socket, socket.socket]) -> None:
    """rocket.timeout on a stream_recv raises TimeoutError if nothing comes; later bytes arrive."""
    ours, peer = pair
    eng = _engine(engine)

    def main() -> _Body:
        with pytest.raises(TimeoutError, match=r"did not complete within 0\.02 s"):
            yield rocket.timeout(0.02, rocket.ops.stream_recv(ours))
        peer.sendall(b"late")
        got = yield rocket.timeout(5, rocket.ops.stream_recv(ours))
        return got

    assert rocket.run(_bounded(main()), engine=eng) == b"late"


def test_recv_after_stream_reads_takes_kept_bytes_first(
    engine: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    """A plain recv (time-limited or not) on a socket a stream reads gets the kept bytes first."""
    ours, peer = pair
    eng = _engine(engine)

    def main() -> _Body:
        stream = rocket.Stream(ours)
        peer.sendall(b"one")
        assert (yield stream.read()) == b"one"
        with pytest.raises(TimeoutError):  # nothing kept, nothing comes
            yield rocket.timeout(0.02, rocket.recv(ours, 3))
        peer.sendall(b"two")
        yield from _kept(eng, ours.fileno(), 3)
        peer.sendall(b"three")
        got = yield rocket.timeout(5, rocket.recv(ours, 3))  # under a time limit too
        while len(got) < 8:
            got += yield rocket.recv(ours, 100)
        stream.close()
        return got

    assert rocket.run(_bounded(main()), engine=eng) == b"twothree"


def test_virtual_engine_scripts_stream_reads_as_recv() -> None:
    """VirtualEngine answers a Stream's reads from its "recv" scripts."""
    ours, peer = socket.socketpair()
    engine = VirtualEngine()
    engine.script("recv", ours, b"scripted", b"", delay=1.0)

    def main() -> _Body:
        with rocket.Stream(ours) as stream:
            return (yield stream.read()), (yield stream.read())

    try:
        assert rocket.run(main(), engine=engine) == (b"scripted", b"")
    finally:
        peer.close()
    assert engine.now == 2.0


# ------------------------------------------------------------ multishot accept


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_connections_arriving_with_no_acceptor_are_kept(
    engine: str, listener: socket.socket
) -> None:
    """Connections made while nobody accepts are accepted later; a cancelled accept loses none."""
    eng = _engine(engine)
    address = listener.getsockname()

    def main() -> _Body:
        first = socket.create_connection(address)
        conn, _ = yield rocket.accept(listener)  # arms the multishot
        conn.close()
        clients = [socket.create_connection(address) for _ in range(5)]
        for i, client in enumerate(clients):
            client.sendall(bytes([i]))
        streams = _streams(eng)
        if streams is not None:
            with rocket.fail_after(5):
                while len(streams.accepts.by_fd[listener.fileno()].kept) < 5:
                    yield rocket.sleep(0)
        acceptor = yield rocket.spawn(_accept_one(listener))
        acceptor.cancel()  # before it ran, or while it waits: no connection lost
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(acceptor)
        got = []
        for _ in clients:
            conn, _ = yield rocket.timeout(5, rocket.accept(listener))
            with conn:
                conn.setblocking(True)
                got.append(conn.recv(1))
        for client in [first, *clients]:
            client.close()
        return sorted(got)

    assert rocket.run(_bounded(main()), engine=eng) == [bytes([i]) for i in range(5)]


def _accept_one(listener: socket.socket) -> _Body:
    conn, _ = yield rocket.accept(listener)
    conn.close()


def test_closing_a_listener_closes_kept_connections(engine: str) -> None:
    """A server closed with connections kept and its multishot armed leaks no fd; clients see it."""
    eng = _engine(engine)
    before = _open_fds()

    def handler(stream: rocket.Stream) -> _Body:
        data = yield stream.read()
        yield stream.write(data)

    def main() -> _Body:
        server = yield rocket.serve_tcp(handler, "127.0.0.1", 0, max_connections=1)
        busy = yield rocket.open_connection("127.0.0.1", server.port)  # takes the one slot
        yield busy.write(b"hi")
        assert (yield busy.read()) == b"hi"
        waiting = []  # kept by the engine, or in the kernel's backlog
        for _ in range(3):
            waiting.append((yield rocket.open_connection("127.0.0.1", server.port)))
        yield rocket.sleep(0.05)
        server.close()
        yield server.serve_forever()
        for client in [busy, *waiting]:
            try:
                assert (yield client.read()) == b""
            except ConnectionResetError:
                pass
            client.close()

    rocket.run(_bounded(main()), engine=eng)
    streams = _streams(eng)
    if streams is not None:
        assert not streams.accepts.armed
    assert _open_fds() <= before


def test_several_acceptors_and_time_limits(engine: str, listener: socket.socket) -> None:
    """Fibers accepting at once get one connection each; a timed accept times out, then works."""
    eng = _engine(engine)
    address = listener.getsockname()

    def main() -> _Body:
        acceptors = []
        for _ in range(3):
            acceptors.append((yield rocket.spawn(_accept_one(listener))))
        yield rocket.sleep(0)  # all three wait
        clients = [socket.create_connection(address) for _ in range(3)]
        for acceptor in acceptors:
            yield rocket.join(acceptor)
        with pytest.raises(TimeoutError):
            yield rocket.timeout(0.02, rocket.accept(listener))
        clients.append(socket.create_connection(address))
        conn, _ = yield rocket.timeout(5, rocket.accept(listener))
        conn.close()
        for client in clients:
            client.close()

    rocket.run(_bounded(main()), engine=eng)
