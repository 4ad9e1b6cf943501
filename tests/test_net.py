"""Streams, TCP and Unix servers and clients, UDP: rocket.net on every engine."""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Every test here must close every fd it (or rocket) opened."""
    before = _open_fds()
    yield
    leaked = _open_fds() - before
    # listdir's own fd may appear in one listing and not the other
    leaked = {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, f"leaked fds: {sorted(leaked)}"


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


# ------------------------------------------------------------------ Stream


def test_stream_reads_lines_exact_counts_and_chunks(engine: str) -> None:
    """readline, read_exactly, read_until and read take bytes in order from one buffer."""
    ours, theirs = _pair()
    theirs.sendall(b"first line\nsecond\r\n\r\nABCDEFGHIJrest")
    theirs.close()

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            line = yield from stream.readline()
            block = yield from stream.read_until(b"\r\n\r\n")
            exact = yield from stream.read_exactly(10)
            rest = yield from stream.read(100)
            end = yield from stream.read(100)
            last = yield from stream.readline()
        return line, block, exact, rest, end, last

    assert rocket.run(main(), engine=engine) == (
        b"first line\n",
        b"second\r\n\r\n",
        b"ABCDEFGHIJ",
        b"rest",
        b"",
        b"",
    )


def test_read_exactly_at_eof_says_how_many_bytes_are_missing(engine: str) -> None:
    """read_exactly raises IncompleteReadError naming the missing byte count."""
    ours, theirs = _pair()
    theirs.sendall(b"abc")
    theirs.close()

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            yield from stream.read_exactly(10)

    with pytest.raises(rocket.IncompleteReadError, match="3 of 10 bytes: 7 bytes missing") as info:
        rocket.run(main(), engine=engine)
    assert info.value.partial == b"abc"
    assert info.value.expected == 10
    assert info.value.missing == 7
    assert isinstance(info.value, EOFError)


def test_read_until_at_eof_raises_and_readline_returns_the_rest(engine: str) -> None:
    """At EOF without a delimiter, read_until raises; readline returns the partial line."""
    ours, theirs = _pair()
    theirs.sendall(b"no newline")
    theirs.close()
    ours2, theirs2 = _pair()
    theirs2.sendall(b"no newline")
    theirs2.close()

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            try:
                yield from stream.read_until(b"\n")
            except rocket.IncompleteReadError as exc:
                error = exc
        with rocket.Stream(ours2) as stream2:
            partial = yield from stream2.readline()
        return error, partial

    error, partial = rocket.run(main(), engine=engine)
    assert error.partial == b"no newline"
    assert error.missing is None
    assert "before the delimiter" in str(error)
    assert partial == b"no newline"


def test_line_limit_bounds_the_buffer_and_keeps_the_data(engine: str) -> None:
    """A line longer than limit raises LimitOverrunError; the buffer never exceeds limit."""
    ours, theirs = _pair()
    theirs.sendall(b"x" * 3000 + b"\n" + b"y" * 99 + b"\n")
    theirs.close()

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            try:
                yield from stream.readline(limit=1000)
            except rocket.LimitOverrunError as exc:
                error = exc
            kept = yield from stream.read(5000)
            rest = yield from stream.read_exactly(3000 - len(kept) + 1)
            exact = yield from stream.readline(limit=100)  # exactly 100 bytes with \n
        return error, kept, rest, exact

    error, kept, rest, exact = rocket.run(main(), engine=engine)
    assert error.limit == 1000
    assert error.consumed == 1000
    assert kept == b"x" * 1000  # the buffered bytes were not lost
    assert rest == b"x" * 2000 + b"\n"
    assert exact == b"y" * 99 + b"\n"


def test_multibyte_delimiter_split_across_receives(engine: str) -> None:
    """read_until finds a delimiter that arrives in two pieces."""
    ours, theirs = _pair()

    def writer() -> Body:
        with theirs:
            for piece in (b"head", b"er\r", b"\n", b"\r\nbody"):
                yield from rocket.sendall(theirs, piece)
                yield rocket.sleep(0.01)

    def main() -> Body:
        yield rocket.spawn(writer())
        with rocket.Stream(ours) as stream:
            header = yield from stream.read_until(b"\r\n\r\n")
            body = yield from stream.read_exactly(4)
        return header, body

    assert rocket.run(main(), engine=engine) == (b"header\r\n\r\n", b"body")


def test_write_sends_everything_in_async_def_fibers(engine: str) -> None:
    """Stream.write delivers all of a large payload; await works like yield from."""
    ours, theirs = _pair()
    payload = os.urandom(4 << 20)

    async def reader() -> bytes:
        with rocket.Stream(theirs) as stream:
            return await stream.read_exactly(len(payload))

    async def main() -> bytes:
        handle = await rocket.spawn(reader())
        with rocket.Stream(ours) as stream:
            await stream.write(payload)
        return await rocket.join(handle)

    assert rocket.run(main(), engine=engine) == payload


def test_write_eof_lets_the_peer_finish_and_reply(engine: str) -> None:
    """write_eof half-closes: the peer reads EOF and can still answer."""
    ours, theirs = _pair()

    def peer() -> Body:
        with rocket.Stream(theirs) as stream:
            data = yield from stream.read(100)
            eof = yield from stream.read(100)
            yield from stream.write(b"got " + data)
        return eof

    def main() -> Body:
        handle = yield rocket.spawn(peer())
        with rocket.Stream(ours) as stream:
            yield from stream.write(b"question")
            yield stream.write_eof()
            answer = yield from stream.read_exactly(12)
        eof = yield rocket.join(handle)
        return answer, eof

    assert rocket.run(main(), engine=engine) == (b"got question", b"")


def test_stream_bad_arguments_raise_clear_errors() -> None:
    """Bad arguments raise TypeError/ValueError naming the argument, at the call."""
    ours, theirs = _pair()
    with ours, theirs:
        stream = rocket.Stream(ours)
        with pytest.raises(ValueError, match="'n' must be between 0"):
            stream.read(-1)
        with pytest.raises(TypeError, match="'data' must be bytes-like, not str"):
            stream.write("text")
        with pytest.raises(ValueError, match="'delimiter' must not be empty"):
            stream.read_until(b"")
        with pytest.raises(TypeError, match="'limit' must be an int"):
            stream.readline(limit="10")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"expects a socket\.socket"):
            rocket.Stream(3)  # type: ignore[arg-type]
        stream.close()
        stream.close()  # idempotent
        assert stream.closed
        with pytest.raises(ValueError, match=r"Stream.read\(\) on a closed stream"):
            stream.read()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        pytest.raises(ValueError, match="SOCK_STREAM"),
    ):
        rocket.Stream(udp)


def test_close_ends_a_read_in_flight_in_another_fiber(engine: str) -> None:
    """Closing a stream wakes a fiber blocked reading it, which sees end of stream."""
    ours, theirs = _pair()

    def main() -> Body:
        stream = rocket.Stream(ours)

        def reader() -> Body:
            return (yield from stream.read(10))

        handle = yield rocket.spawn(reader())
        yield rocket.sleep(0.05)
        stream.close()
        data = yield rocket.join(handle)
        theirs.close()
        return data

    assert rocket.run(main(), engine=engine) == b""


# ----------------------------------------------------- clients and servers


def _echo(stream: rocket.Stream) -> Body:
    while True:
        data = yield from stream.read(65536)
        if not data:
            return
        yield from stream.write(data)


def _talk(host: str, port: int, message: bytes) -> Body:
    stream = yield from rocket.open_connection(host, port)
    with stream:
        yield from stream.write(message)
        yield stream.write_eof()
        reply = yield from stream.read_exactly(len(message))
        assert (yield from stream.read()) == b""
    return reply


def test_echo_server_serves_many_clients_over_ipv4_and_ipv6(engine: str) -> None:
    """serve_tcp with host=None listens on IPv4 and IPv6 and serves clients concurrently."""

    def main() -> Body:
        server = yield from rocket.serve_tcp(_echo, None, 0)
        with server:
            families = {sock.family for sock in server.sockets}
            clients = []
            for i in range(20):
                host = "::1" if i % 2 else "127.0.0.1"
                clients.append((yield rocket.spawn(_talk(host, server.port, b"%d" % i * 1000))))
            replies = []
            for client in clients:
                replies.append((yield rocket.join(client)))
        yield from server.serve_forever()
        return families, replies

    families, replies = rocket.run(main(), engine=engine)
    assert families == {socket.AF_INET, socket.AF_INET6}
    assert replies == [b"%d" % i * 1000 for i in range(20)]


def test_localhost_server_listens_on_both_loopbacks(engine: str) -> None:
    """serve_tcp('localhost') binds 127.0.0.1 and ::1 on one port."""

    def main() -> Body:
        server = yield from rocket.serve_tcp(_echo, "localhost", 0)
        with server:
            hosts = sorted(address[0] for address in server.addresses)
            ports = {address[1] for address in server.addresses}
            reply = yield from _talk("localhost", server.port, b"hi")
        return hosts, ports, reply

    hosts, ports, reply = rocket.run(main(), engine=engine)
    assert hosts == ["127.0.0.1", "::1"]
    assert len(ports) == 1
    assert reply == b"hi"


def test_open_connection_tries_each_address(engine: str) -> None:
    """localhost resolves to 127.0.0.1 then ::1; a server on ::1 only is still reached."""

    def main() -> Body:
        server = yield from rocket.serve_tcp(_echo, "::1", 0)
        with server:
            return (yield from _talk("localhost", server.port, b"second address"))

    assert rocket.run(main(), engine=engine) == b"second address"


def test_open_connection_refused_everywhere_lists_each_attempt(engine: str) -> None:
    """When every address refuses, the error has ECONNREFUSED and names each address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed

    def one() -> Body:
        yield from rocket.open_connection("127.0.0.1", port)

    def both() -> Body:
        yield from rocket.open_connection("localhost", port)

    with pytest.raises(ConnectionRefusedError):
        rocket.run(one(), engine=engine)
    with pytest.raises(ConnectionRefusedError, match=rf"127\.0\.0\.1:{port}.*\[::1\]:{port}"):
        rocket.run(both(), engine=engine)


def test_open_connection_bad_input() -> None:
    """Bad host or port: TypeError/ValueError at the call; unknown names: gaierror."""
    with pytest.raises(ValueError, match="'port' must be between 0 and 65535"):
        rocket.open_connection("127.0.0.1", 70000)
    with pytest.raises(TypeError, match="'port' must be an int"):
        rocket.open_connection("127.0.0.1", "80")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="'host' must be a non-empty str"):
        rocket.open_connection(b"127.0.0.1", 80)  # type: ignore[call-overload]

    def main() -> Body:
        yield from rocket.open_connection("no-such-host.invalid", 80)

    with pytest.raises(socket.gaierror):
        rocket.run(main())


def test_failing_handler_is_logged_connection_closed_server_goes_on(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler's exception is logged, its connection closed, and the next client served."""

    def handler(stream: rocket.Stream) -> Body:
        line = yield from stream.readline()
        if line == b"boom\n":
            raise RuntimeError("handler exploded")
        yield from stream.write(b"fine\n")

    def client(port: int, line: bytes) -> Body:
        stream = yield from rocket.open_connection("127.0.0.1", port)
        with stream:
            yield from stream.write(line)
            return (yield from stream.read(100))

    def main() -> Body:
        server = yield from rocket.serve_tcp(handler, "127.0.0.1", 0)
        with server:
            first = yield from client(server.port, b"boom\n")
            second = yield from client(server.port, b"hello\n")
        return first, second

    with caplog.at_level(logging.ERROR, logger="rocket.net"):
        assert rocket.run(main(), engine=engine) == (b"", b"fine\n")
    failures = [r for r in caplog.records if "<locals>.handler failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "handler exploded" in str(failures[0].exc_info[1])


def test_handler_that_is_not_a_generator_is_reported(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler returning something other than a generator or coroutine is logged clearly."""

    def main() -> Body:
        server = yield from rocket.serve_tcp(lambda stream: None, "127.0.0.1", 0)  # type: ignore[arg-type]
        with server:
            stream = yield from rocket.open_connection("127.0.0.1", server.port)
            with stream:
                return (yield from stream.read())

    with caplog.at_level(logging.ERROR, logger="rocket.net"):
        assert rocket.run(main(), engine=engine) == b""
    assert any(
        "must return a generator or coroutine" in str(r.exc_info[1])
        for r in caplog.records
        if r.exc_info
    )
    with pytest.raises(TypeError, match="'handler' must be a function"):
        rocket.serve_tcp(42, "127.0.0.1", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'max_connections' must be >= 1"):
        rocket.serve_tcp(_echo, "127.0.0.1", 0, max_connections=0)


def test_close_cancels_handlers_and_stops_listening(engine: str) -> None:
    """close() cancels connection fibers (their finally runs); new connects are refused."""
    cleaned = []

    def handler(stream: rocket.Stream) -> Body:
        try:
            yield from stream.read()  # the client never sends
        finally:
            cleaned.append(True)

    def main() -> Body:
        server = yield from rocket.serve_tcp(handler, "127.0.0.1", 0)
        stream = yield from rocket.open_connection("127.0.0.1", server.port)
        while server.connections < 1:
            yield rocket.sleep(0.01)
        server.close()
        yield from server.serve_forever()  # returns once everything has finished
        assert (yield from stream.read()) == b""  # the server closed our connection
        stream.close()
        try:
            yield from rocket.open_connection("127.0.0.1", server.port)
        except ConnectionRefusedError:
            return "refused"
        return "accepted"

    assert rocket.run(main(), engine=engine) == "refused"
    assert cleaned == [True]


def test_cancelling_serve_forever_closes_the_server(engine: str) -> None:
    """A fiber cancelled in serve_forever closes its server."""

    def serve(holder: list[rocket.Server]) -> Body:
        server = yield from rocket.serve_tcp(_echo, "127.0.0.1", 0)
        holder.append(server)
        yield from server.serve_forever()

    def main() -> Body:
        holder: list[rocket.Server] = []
        handle = yield rocket.spawn(serve(holder))
        while not holder:
            yield rocket.sleep(0.01)
        reply = yield from _talk("127.0.0.1", holder[0].port, b"ping")
        handle.cancel()
        try:
            yield rocket.join(handle)
        except rocket.Cancelled:
            pass
        return reply, holder[0].closed

    assert rocket.run(main(), engine=engine) == (b"ping", True)


def test_max_connections_makes_new_clients_wait(engine: str) -> None:
    """With max_connections=2, a third client is served only when one leaves."""
    started: list[int] = []

    def handler(stream: rocket.Stream) -> Body:
        started.append(1)
        yield from _echo(stream)

    def main() -> Body:
        server = yield from rocket.serve_tcp(handler, "127.0.0.1", 0, max_connections=2)
        with server:
            streams = []
            for _ in range(3):
                streams.append((yield from rocket.open_connection("127.0.0.1", server.port)))
            yield rocket.sleep(0.1)
            waiting = (len(started), server.connections)
            streams[0].close()
            yield from streams[2].write(b"third")
            reply = yield from streams[2].read_exactly(5)
            for stream in streams:
                stream.close()
        return waiting, reply, len(started)

    assert rocket.run(main(), engine=engine) == ((2, 2), b"third", 3)


def test_peer_that_never_reads_blocks_the_writer_not_memory(engine: str) -> None:
    """Backpressure: writes to a peer that never reads stop at the socket buffers."""
    written = [0]

    def flood(stream: rocket.Stream) -> Body:
        first = yield from stream.readline()
        if first != b"flood\n":
            yield from stream.write(first)
            return (yield from _echo(stream))
        chunk = b"x" * (1 << 20)
        while True:
            yield from stream.write(chunk)
            written[0] += len(chunk)

    def main() -> Body:
        server = yield from rocket.serve_tcp(flood, "127.0.0.1", 0)
        with server, socket.create_connection(("127.0.0.1", server.port)) as silent:
            silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            silent.sendall(b"flood\n")  # and never read
            yield rocket.sleep(0.3)
            first = written[0]
            yield rocket.sleep(0.3)
            second = written[0]
            # the server still serves others while that writer is stuck
            reply = yield from _talk("127.0.0.1", server.port, b"still alive")
        return first, second, reply

    first, second, reply = rocket.run(main(), engine=engine)
    assert first == second  # the writer is waiting, not buffering
    assert second < 64 << 20  # bounded by kernel socket buffers
    assert reply == b"still alive"


def test_bind_failure_raises_and_leaks_nothing(engine: str) -> None:
    """serve_tcp on a port in use raises OSError(EADDRINUSE) and closes what it opened."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        def main() -> Body:
            yield from rocket.serve_tcp(_echo, "127.0.0.1", port)

        with pytest.raises(OSError) as info:
            rocket.run(main(), engine=engine)
        assert info.value.errno == errno.EADDRINUSE


def test_accept_out_of_fds_backs_off_and_recovers(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE on accept: the server logs, waits, and serves the clients once fds are free."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def main() -> Body:
        server = yield from rocket.serve_tcp(_echo, "127.0.0.1", 0)
        with server:
            clients = [socket.socket() for _ in range(3)]
            highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
            fillers = []  # take every free fd number below the limit
            while (fd := os.open(os.devnull, os.O_RDONLY)) < highest:
                fillers.append(fd)
            fillers.append(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd + 1, hard))
            try:
                for client in clients:  # no new fd needed on this side
                    client.connect(("127.0.0.1", server.port))
                yield rocket.sleep(0.3)
                starved = server.connections
            finally:
                resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
                for fd in fillers:
                    os.close(fd)
            replies = []
            for client in clients:  # through rocket: blocking here would stall the server
                with client:
                    yield from rocket.sendall(client, b"after")
                    replies.append((yield rocket.recv(client, 10)))
        return starved, replies

    with caplog.at_level(logging.WARNING, logger="rocket.net"):
        starved, replies = rocket.run(main(), engine=engine)
    assert starved == 0
    assert replies == [b"after"] * 3
    assert any("Too many open files" in r.getMessage() for r in caplog.records)


def test_unix_socket_server_and_client(engine: str, tmp_path: Path) -> None:
    """serve_unix and open_unix_connection talk; the socket file goes away on close."""
    path = tmp_path / "echo.sock"

    async def handler(stream: rocket.Stream) -> None:
        while line := await stream.readline():
            await stream.write(line.upper())

    async def main() -> bytes:
        server = await rocket.serve_unix(handler, path)
        with server:
            stream = await rocket.open_unix_connection(path)
            with stream:
                await stream.write(b"over unix\n")
                reply = await stream.readline()
        await server.serve_forever()
        return reply

    assert rocket.run(main(), engine=engine) == b"OVER UNIX\n"
    assert not path.exists()


def test_unix_server_replaces_a_stale_socket_but_not_a_file(engine: str, tmp_path: Path) -> None:
    """A leftover socket file is replaced; a regular file at the path is an error."""
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as old:
        old.bind(str(stale))  # closed without unlinking: a stale socket file
    regular = tmp_path / "regular"
    regular.write_text("keep me")

    def main() -> Body:
        server = yield from rocket.serve_unix(_echo, stale)
        with server:
            stream = yield from rocket.open_unix_connection(stale)
            with stream:
                yield from stream.write(b"x")
                reply = yield from stream.read_exactly(1)
        try:
            yield from rocket.serve_unix(_echo, regular)
        except FileExistsError:
            return reply, "refused"
        return reply, "replaced"

    assert rocket.run(main(), engine=engine) == (b"x", "refused")
    assert regular.read_text() == "keep me"


# --------------------------------------------------------------------- UDP


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "unix"])
def test_udp_sendto_recvfrom(engine: str, family: str, tmp_path: Path) -> None:
    """A datagram sent with sendto arrives whole with its sender's address."""
    if family == "unix":
        a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.bind(str(tmp_path / "a"))
        b.bind(str(tmp_path / "b"))
    else:
        kind, host = (socket.AF_INET, "127.0.0.1") if family == "ipv4" else (socket.AF_INET6, "::1")
        a, b = socket.socket(kind, socket.SOCK_DGRAM), socket.socket(kind, socket.SOCK_DGRAM)
        a.bind((host, 0))
        b.bind((host, 0))

    def main() -> Body:
        sent = yield rocket.sendto(a, b"ping", b.getsockname())
        data, sender = yield rocket.recvfrom(b, 100)
        yield rocket.sendto(b.fileno(), data.upper(), sender)  # fds work too
        reply = yield rocket.recvfrom(a.fileno())
        return sent, data, sender, reply

    with a, b:
        sent, data, sender, reply = rocket.run(main(), engine=engine)
        assert (sent, data) == (4, b"ping")
        assert sender == a.getsockname()
        assert reply == (b"PING", b.getsockname())


def test_recvfrom_waits_truncates_and_shares_a_socket(engine: str) -> None:
    """recvfrom waits for a datagram, truncates to size; two waiters each get one."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))

    def receiver() -> Body:
        data, _ = yield rocket.recvfrom(b, 4)
        return data

    def main() -> Body:
        first = yield rocket.spawn(receiver())
        second = yield rocket.spawn(receiver())
        yield rocket.sleep(0.05)  # both wait now
        yield rocket.sendto(a, b"datagram one", b.getsockname())
        yield rocket.sleep(0.05)
        yield rocket.sendto(a, b"DATAGRAM TWO", b.getsockname())
        got = [(yield rocket.join(first)), (yield rocket.join(second))]
        return sorted(got)

    with a, b:
        assert rocket.run(main(), engine=engine) == [b"DATA", b"data"]


def test_cancelled_recvfrom_leaves_the_socket_usable(engine: str) -> None:
    """Cancelling a waiting recvfrom raises Cancelled; the next datagram still arrives."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))

    def main() -> Body:
        handle = yield rocket.spawn(_recv_one(b))
        yield rocket.sleep(0.05)
        handle.cancel()
        try:
            yield rocket.join(handle)
        except rocket.Cancelled:
            cancelled = True
        yield rocket.sendto(a, b"after", b.getsockname())
        data, _ = yield rocket.recvfrom(b)
        return cancelled, data

    with a, b:
        assert rocket.run(main(), engine=engine) == (True, b"after")


def _recv_one(sock: socket.socket) -> Body:
    return (yield rocket.recvfrom(sock))


def test_udp_bad_arguments() -> None:
    """sendto wants a numeric (host, port) or a path; recvfrom a size >= 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ValueError, match="needs a numeric address"):
            rocket.sendto(sock, b"x", ("localhost", 53))
        with pytest.raises(TypeError, match=r"'address' must be a \(host, port\) tuple"):
            rocket.sendto(sock, b"x", "127.0.0.1:53")
        with pytest.raises(ValueError, match="port must be between"):
            rocket.sendto(sock, b"x", ("127.0.0.1", 65536))
        with pytest.raises(TypeError, match="'data' must be bytes-like"):
            rocket.sendto(sock, "x", ("127.0.0.1", 53))
        with pytest.raises(ValueError, match="'size' must be between"):
            rocket.recvfrom(sock, -1)


# ------------------------------------------- interrupted and concurrent reads


def _interrupted_read(stream: rocket.Stream, method: str) -> Any:
    """A read that wants more than the 4 bytes sent: 10 exact bytes or a whole line."""
    if method == "read_exactly":
        return stream.read_exactly(10)
    if method == "read_until":
        return stream.read_until(b"\n")
    return stream.readline()


@pytest.mark.parametrize("method", ["read_exactly", "read_until", "readline"])
def test_timed_out_read_keeps_the_bytes_it_received(engine: str, method: str) -> None:
    """A read cut short by move_on_after leaves its bytes buffered: the next read gets them."""
    ours, theirs = _pair()
    theirs.sendall(b"abcd")

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            with rocket.move_on_after(0.05) as scope:
                yield from _interrupted_read(stream, method)
            assert scope.timed_out
            theirs.sendall(b"efghij\n")
            with rocket.fail_after(2):  # unfixed: the 4 bytes are gone, it would wait
                return (yield from stream.read_exactly(11))

    try:
        assert rocket.run(main(), engine=engine) == b"abcdefghij\n"
    finally:
        theirs.close()


@pytest.mark.parametrize("method", ["read_exactly", "read_until", "readline"])
def test_cancelled_read_keeps_the_bytes_it_received(engine: str, method: str) -> None:
    """A read in a fiber that is cancelled leaves its bytes for the stream's next reader."""
    ours, theirs = _pair()
    theirs.sendall(b"abcd")

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            reading = rocket.Event()

            def reader() -> Body:
                reading.set()
                yield from _interrupted_read(stream, method)

            handle = yield rocket.spawn(reader())
            yield reading.wait()
            with rocket.fail_after(2):  # until it took the 4 bytes and waits for more
                while len(stream._buffer) < 4:
                    yield rocket.yield_now()
            handle.cancel()
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
            theirs.sendall(b"efghij\n")
            with rocket.fail_after(2):  # unfixed: the 4 bytes are gone, it would wait
                return (yield from stream.read_exactly(11))

    try:
        assert rocket.run(main(), engine=engine) == b"abcdefghij\n"
    finally:
        theirs.close()


@pytest.mark.parametrize("method", ["read_exactly", "read_until", "readline"])
def test_read_ended_by_an_error_keeps_the_bytes_it_received(engine: str, method: str) -> None:
    """Bytes that came before a connection reset stay buffered; read() returns them."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        theirs = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
    theirs.sendall(b"abcd")
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    theirs.close()  # linger 0: the peer sends RST after the 4 bytes

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            with pytest.raises(ConnectionResetError):
                yield from _interrupted_read(stream, method)
            with rocket.fail_after(2):
                return (yield from stream.read(100))

    assert rocket.run(main(), engine=engine) == b"abcd"


def _readline(stream: rocket.Stream) -> Body:
    return (yield from stream.readline())


@pytest.mark.parametrize("method", ["read", "read_exactly", "read_until", "readline"])
def test_second_concurrent_reader_gets_runtimeerror(engine: str, method: str) -> None:
    """While one fiber reads a stream, another fiber's read raises RuntimeError naming it."""
    ours, theirs = _pair()

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            first = yield rocket.spawn(_readline(stream))
            yield rocket.yield_now()  # the first reader waits in its receive
            readers: dict[str, Callable[[], Any]] = {
                "read": stream.read,
                "read_exactly": lambda: stream.read_exactly(1),
                "read_until": stream.read_until,
                "readline": stream.readline,
            }
            second = readers[method]()
            with (
                rocket.fail_after(1),  # unfixed: it would wait for data
                pytest.raises(RuntimeError, match=r"another fiber is already reading <Stream"),
            ):
                yield from second
            theirs.sendall(b"one line\n")
            line = yield rocket.join(first)
            theirs.sendall(b"next\n")
            return line, (yield from stream.readline())

    try:
        assert rocket.run(main(), engine=engine) == (b"one line\n", b"next\n")
    finally:
        theirs.close()


def test_a_read_that_was_interrupted_lets_the_next_reader_in(engine: str) -> None:
    """After a cancelled or failed read, the same or another fiber can read again."""
    ours, theirs = _pair()

    def main() -> Body:
        with rocket.Stream(ours) as stream:
            with rocket.move_on_after(0.01):
                yield from stream.readline()
            with pytest.raises(ValueError, match="delimiter"):
                yield from stream.read_until(b"")
            theirs.sendall(b"x\n")
            return (yield rocket.gather(stream.readline()))

    assert rocket.run(main(), engine=engine) == [b"x\n"]
    theirs.close()
