"""trio's stream conformance checks (``trio/testing/_check_streams.py``), run against rocket.Stream.

``check_one_way_stream``, ``check_two_way_stream`` and
``check_half_closeable_stream`` are ported in meaning over a Unix socket
pair and over TCP (both ends: the connecting one sends, and the accepted
one). trio's names become rocket's: ``send_all`` is ``stream.write``,
``receive_some`` is ``stream.read``, ``aclose`` is ``stream.close()`` (not
a request: it closes at once), ``send_eof`` is ``stream.write_eof()``. A
"clogged" pair has the sender's socket buffer filled first, so a write
waits until the peer reads.

Rocket's errors differ from trio's by design (``docs/differences.md``): a
stream used after ``close()`` raises ``ValueError`` (trio:
``ClosedResourceError``), a broken connection raises the ``OSError`` of the
system call (trio: ``BrokenResourceError``), a second concurrent reader
gets ``RuntimeError`` (trio: ``BusyResourceError``), and a read that
``close()`` interrupted returns ``b""``.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]

TRANSPORTS = ["socketpair", "tcp", "tcp-accepted-sends"]


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    return client, accepted


def _make(transport: str) -> tuple[socket.socket, socket.socket]:
    """(sending socket, receiving socket) for the transport."""
    if transport == "socketpair":
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    client, accepted = _tcp_pair()
    return (accepted, client) if transport == "tcp-accepted-sends" else (client, accepted)


def _clog(sock: socket.socket) -> int:
    """Fill ``sock``'s send buffer (and its peer's receive buffer); return the bytes sent."""
    sock.setblocking(False)
    sent = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            sent += sock.send(b"\0" * 65536)
    sock.setblocking(True)
    return sent


@pytest.fixture(params=TRANSPORTS)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[rocket.Stream, rocket.Stream]]:
    """A connected (sender, receiver) pair of Streams; both are closed at the end."""
    s, r = _make(str(request.param))
    with rocket.Stream(s) as sender, rocket.Stream(r) as receiver:
        yield sender, receiver


@pytest.fixture(params=TRANSPORTS)
def clogged(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[rocket.Stream, rocket.Stream, int]]:
    """Like ``pair``, with the sender's buffers full: (sender, receiver, bytes already queued)."""
    s, r = _make(str(request.param))
    queued = _clog(s)
    with rocket.Stream(s) as sender, rocket.Stream(r) as receiver:
        yield sender, receiver, queued


def _write(stream: rocket.Stream, data: Any) -> Body:
    result = yield stream.write(data)
    assert result is None  # a write returns nothing
    return result


def _read(stream: rocket.Stream, n: int) -> Body:
    return (yield stream.read(n))


def _drain(stream: rocket.Stream, total: int) -> Body:
    """Read ``total`` bytes in chunks; return them."""
    got = bytearray()
    while len(got) < total:
        chunk = yield stream.read(min(65536, total - len(got)))
        assert chunk, f"end of stream after {len(got)} of {total} bytes"
        got += chunk
    return bytes(got)


def _run(engine: str, body: Body) -> Any:
    def bounded() -> Body:
        with rocket.fail_after(10):  # a hang fails the test instead of freezing it
            return (yield body)

    return rocket.run(bounded(), engine=engine)


# ---------------------------------------------------------- one-way stream


def test_send_and_receive_one_byte_concurrently(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """A write of b"x" and a read(1) in two fibers: the read gets b"x"."""
    # trio check_one_way_stream: simple sending/receiving
    s, r = pair

    def main() -> Body:
        return (yield rocket.gather(_write(s, b"x"), _read(r, 1)))

    assert _run(engine, main()) == [None, b"x"]


def test_an_empty_write_means_nothing(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """write(b"") then write(b"y"): the reader gets b"y", not an end of stream."""
    # trio check_one_way_stream: send_empty_then_y
    s, r = pair

    def send_empty_then_y() -> Body:
        yield from _write(s, b"")
        yield from _write(s, b"y")

    def main() -> Body:
        return (yield rocket.gather(_read(r, 1), send_empty_then_y()))

    assert _run(engine, main()) == [b"y", None]


def test_write_takes_bytearray_and_memoryview(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """write accepts bytearray and memoryview as well as bytes."""
    # trio check_one_way_stream: send_all accepts bytearray and memoryview
    s, r = pair

    def main() -> Body:
        first = yield rocket.gather(_write(s, bytearray(b"1")), _read(r, 1))
        second = yield rocket.gather(_write(s, memoryview(b"2")), _read(r, 1))
        return first[1], second[1]

    assert _run(engine, main()) == (b"1", b"2")


def test_read_size_is_checked_and_may_be_left_out(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """read(-1) raises ValueError and read(1.5) TypeError; read() reads what is there."""
    # trio check_one_way_stream: max_bytes must be a positive integer, or missing
    s, r = pair
    with pytest.raises(ValueError, match="'n'"):
        r.read(-1)
    with pytest.raises(TypeError, match="'n'"):
        r.read(1.5)  # type: ignore[arg-type]

    def main() -> Body:
        results = yield rocket.gather(_write(s, b"x"), r.read())
        return results[1]

    assert _run(engine, main()) == b"x"


def test_two_concurrent_reads_the_second_raises_runtimeerror(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """A second read while another fiber's read waits raises RuntimeError (trio: BusyResource)."""
    # trio check_one_way_stream: simultaneous receive_some -> BusyResourceError
    s, r = pair

    def main() -> Body:
        first = yield rocket.spawn(_read(r, 1))
        yield rocket.yield_now()
        with pytest.raises(RuntimeError, match="another fiber is already reading"):
            yield r.read(1)
        yield from _write(s, b"z")
        return (yield rocket.join(first))

    assert _run(engine, main()) == b"z"


def test_a_waiting_read_keeps_out_every_other_read_until_its_receive_completes(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """A read() waiting on the socket claims the stream: readline elsewhere gets RuntimeError.

    The claim is the waiting receive itself: once it completes, nothing else has
    to run before another fiber may read (here, at once in the same pass).
    """
    s, r = pair

    def main() -> Body:
        first = yield rocket.spawn(r.read(1))  # a request runs as a fiber
        yield rocket.yield_now()
        with pytest.raises(RuntimeError, match=r"already reading .*\(in Stream\.read\(\)\)"):
            yield r.readline()
        yield from _write(s, b"a")
        got = yield rocket.join(first)
        yield from _write(s, b"line\n")
        return got, (yield r.readline())

    assert _run(engine, main()) == (b"a", b"line\n")


def test_closing_the_receiver_breaks_the_sender_for_good(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """The receiver closes while the sender writes: writes fail with OSError, then keep failing."""
    # trio check_one_way_stream: closing the r side leads to BrokenResourceError on the s side
    s, r = pair

    def expect_broken() -> Body:
        with pytest.raises(OSError) as info:  # noqa: PT012 - it breaks after some writes
            while True:
                yield from _write(s, b"x" * 100)
        return info.value

    def close_receiver() -> Body:
        yield rocket.yield_now()
        r.close()

    def main() -> Body:
        first, _ = yield rocket.gather(expect_broken(), close_receiver())
        with pytest.raises(OSError):  # once detected, the stream stays broken
            yield from _write(s, b"x" * 100)
        return first

    error = _run(engine, main())
    assert isinstance(error, (BrokenPipeError, ConnectionResetError))


def test_a_closed_stream_refuses_every_use_and_closes_again_quietly(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """After close(): read and write (even of b"") raise ValueError; close() again is fine."""
    # trio check_one_way_stream: ClosedResourceError after aclose; repeated aclose is fine
    s, r = pair

    def main() -> Body:
        r.close()
        r.close()
        with pytest.raises(ValueError, match="closed stream"):
            yield r.read(4096)
        s.close()
        s.close()
        with pytest.raises(ValueError, match="closed stream"):
            yield s.write(b"x" * 100)
        with pytest.raises(ValueError, match="closed stream"):
            yield s.write(b"")
        with pytest.raises(ValueError, match="closed stream"):
            yield s.write_eof()

    _run(engine, main())


def test_data_sent_before_a_graceful_close_arrives_then_eof(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """The sender writes b"y" and closes before the receiver reads: it gets b"y", then b""."""
    # trio check_one_way_stream: send-then-graceful-close
    s, r = pair

    def send_then_close() -> Body:
        yield from _write(s, b"y")
        s.close()

    def receive() -> Body:
        for _ in range(3):  # let the sender get as far as it can first
            yield rocket.yield_now()
        return [(yield r.read(1)), (yield r.read(1))]

    def main() -> Body:
        results = yield rocket.gather(send_then_close(), receive())
        return results[1]

    assert _run(engine, main()) == [b"y", b""]


def test_receiver_closed_first_writes_break_and_reads_refuse(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """With the receiver closed before anything is sent, writes end in OSError, reads ValueError."""
    # trio check_one_way_stream: aclose_forcefully(r) first
    s, r = pair
    r.close()

    def main() -> Body:
        with pytest.raises(OSError):  # noqa: PT012
            while True:
                yield from _write(s, b"x" * 100)

    _run(engine, main())
    with pytest.raises(ValueError, match="closed stream"):
        r.read(4096)


def test_sender_closed_first_the_receiver_sees_eof_not_data(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """The sender closes before sending: its write raises ValueError; the reader gets b""."""
    # trio check_one_way_stream: aclose_forcefully(s) first
    s, r = pair
    s.close()
    with pytest.raises(ValueError, match="closed stream"):
        s.write(b"123")

    def main() -> Body:
        try:
            return (yield r.read(1))
        except ConnectionResetError:
            return b""  # also allowed; not allowed: data, or a hang

    assert _run(engine, main()) == b""


def test_cancelled_write_and_read_leave_the_stream_usable_and_closable(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """Cancelled fibers' write and read raise Cancelled and send nothing; the stream goes on."""
    # trio check_one_way_stream: operations cancelled, then graceful close still works
    s, r = pair

    def expect_cancelled(body: Body) -> Body:
        me = yield rocket.current()
        me.cancel()
        with pytest.raises(rocket.Cancelled):
            yield body
        return "cancelled"

    def main() -> Body:
        outcome = yield rocket.gather(
            expect_cancelled(_write(s, b"x")), expect_cancelled(_read(r, 1))
        )
        _, got = yield rocket.gather(_write(s, b"y"), _read(r, 1))
        s.close()
        r.close()
        return outcome, got

    assert _run(engine, main()) == (["cancelled", "cancelled"], b"y")


def test_closing_the_receiver_wakes_a_fiber_blocked_reading_it(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """close() of a stream another fiber waits to read wakes that fiber (with b"")."""
    # trio check_one_way_stream: a task blocked in receive_some, closing wakes it
    _, r = pair

    def main() -> Body:
        reader = yield rocket.spawn(_read(r, 10))
        for _ in range(3):
            yield rocket.yield_now()
        assert not reader.done()
        r.close()
        return (yield rocket.join(reader))

    assert _run(engine, main()) == b""


# ---------------------------------------------------------- clogged streams


def test_a_blocked_write_finishes_once_the_receiver_reads(
    engine: str, clogged: tuple[rocket.Stream, rocket.Stream, int]
) -> None:
    """A write into full buffers waits; it returns after the receiver starts reading."""
    # trio check_one_way_stream: wait_send_all_might_not_block wakes when the receiver reads
    s, r, queued = clogged
    record: list[str] = []
    payload = b"p" * 100_000

    def writer() -> Body:
        record.append("writer sleeping")
        yield from _write(s, payload)
        record.append("writer woke up")

    def receiver() -> Body:
        for _ in range(3):  # give the write a chance to block
            yield rocket.yield_now()
        record.append("receiver starting")
        return (yield from _drain(r, queued + len(payload)))

    def main() -> Body:
        _, data = yield rocket.gather(writer(), receiver())
        return data[queued:] == payload

    assert _run(engine, main()) is True
    assert record == ["writer sleeping", "receiver starting", "writer woke up"]


def test_closing_the_receiver_ends_a_blocked_write_with_an_error(
    engine: str, clogged: tuple[rocket.Stream, rocket.Stream, int]
) -> None:
    """A write blocked on full buffers raises OSError when the receiver closes; no hang."""
    # trio check_one_way_stream: closing the receiver makes the blocked sender return
    s, r, _ = clogged

    def sender() -> Body:
        with pytest.raises(OSError):
            yield from _write(s, b"x" * 100_000)

    def main() -> Body:
        task = yield rocket.spawn(sender())
        for _ in range(3):
            yield rocket.yield_now()
        r.close()
        yield rocket.join(task)

    _run(engine, main())


def test_closing_the_sender_wakes_its_own_blocked_write(
    engine: str, clogged: tuple[rocket.Stream, rocket.Stream, int]
) -> None:
    """close() of a stream whose write waits on full buffers ends that write with OSError."""
    # trio check_one_way_stream: a task blocked in send_all, closing the send stream wakes it
    s, _, _ = clogged

    def sender() -> Body:
        with pytest.raises(OSError):
            yield from _write(s, b"xyzzy" * 100_000)

    def main() -> Body:
        task = yield rocket.spawn(sender())
        for _ in range(3):
            yield rocket.yield_now()
        assert not task.done()
        s.close()
        yield rocket.join(task)

    _run(engine, main())


def test_two_concurrent_writes_the_second_raises_runtimeerror(
    engine: str, clogged: tuple[rocket.Stream, rocket.Stream, int]
) -> None:
    """A second write while another fiber's write waits raises RuntimeError; bytes never mix."""
    # trio check_one_way_stream: send_all and send_all blocked simultaneously -> BusyResourceError
    s, r, queued = clogged
    size = 1 << 20

    def writer(byte: bytes) -> Body:
        yield s.write(byte * size)
        return "sent"

    def main() -> Body:
        first = yield rocket.spawn(writer(b"a"))
        for _ in range(3):
            yield rocket.yield_now()  # the first write waits on the full buffer
        second = yield rocket.spawn(writer(b"b"))
        for _ in range(3):
            yield rocket.yield_now()
        refused = second.done() and isinstance(second.exception(), RuntimeError)
        data = yield from _drain(r, queued + size * (1 if refused else 2))
        yield rocket.join(first)
        if not refused:
            yield rocket.join(second)
        return refused, data[queued:]

    refused, data = _run(engine, main())
    mixed = data[:size] != b"a" * size
    assert refused, f"a second concurrent write was accepted (bytes interleaved: {mixed})"
    assert not mixed


def test_a_cancelled_write_keeps_the_stream_until_its_send_ends_then_frees_it(
    engine: str, clogged: tuple[rocket.Stream, rocket.Stream, int]
) -> None:
    """A write cancelled on a full socket ends with Cancelled; the next writer may then write.

    The writer claim lasts while the kernel may still send the cancelled write's
    bytes (until its completion), and not a moment longer: no release step is
    needed after it.
    """
    s, r, queued = clogged

    def main() -> Body:
        first = yield rocket.spawn(s.write(b"a" * (1 << 20)))  # a request runs as a fiber
        for _ in range(3):
            yield rocket.yield_now()  # it waits on the full buffer
        assert not first.done()
        first.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(first)
        yield rocket.sleep(0.01)
        drained = yield from _drain(r, queued)  # what was queued before, then room again
        second = yield rocket.spawn(s.write(b"b" * 10))
        result = yield rocket.join(second)
        return drained, result

    drained, result = _run(engine, main())
    assert len(drained) == queued
    assert result is None


def test_a_stream_written_in_one_run_is_free_in_the_next(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """The writer claim belongs to a run's fiber: a later rocket.run writes the same stream."""
    s, r = pair
    for payload in (b"first run", b"second run"):
        assert _run(engine, _write(s, payload)) is None
        assert _run(engine, _drain(r, len(payload))) == payload


# ---------------------------------------------------------- two-way stream


def test_a_mebibyte_each_way_at_once_in_random_chunks(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """1 MiB each way at the same time, random write and read sizes: both arrive intact."""
    # trio check_two_way_stream: duplex
    s1, s2 = pair
    size, chunk_max = 2**20, 2**14
    data = random.Random(0).getrandbits(8 * size).to_bytes(size, "little")

    def sender(stream: rocket.Stream, payload: bytes, seed: int) -> Body:
        rng = random.Random(seed)
        view = memoryview(payload)
        while view:
            n = rng.randint(1, chunk_max)
            yield stream.write(view[:n])
            view = view[n:]

    def receiver(stream: rocket.Stream, expected: bytes, seed: int) -> Body:
        rng = random.Random(seed)
        got = bytearray()
        while len(got) < len(expected):
            chunk = yield stream.read(rng.randint(1, chunk_max))
            assert chunk
            got += chunk
        return got == expected

    def main() -> Body:
        return (
            yield rocket.gather(
                sender(s1, data, 0),
                sender(s2, data[::-1], 1),
                receiver(s1, data[::-1], 2),
                receiver(s2, data, 3),
            )
        )

    assert _run(engine, main())[2:] == [True, True]


def test_closing_one_end_the_other_reads_eof(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """One end closes while the other waits to read: that read returns b""."""
    # trio check_two_way_stream: expect_receive_some_empty
    s1, s2 = pair

    def expect_empty() -> Body:
        data = yield s2.read(10)
        s2.close()
        return data

    def close_s1() -> Body:
        yield rocket.yield_now()
        s1.close()

    def main() -> Body:
        return (yield rocket.gather(expect_empty(), close_s1()))[0]

    assert _run(engine, main()) == b""


# ---------------------------------------------------- half-closeable stream


def test_write_eof_then_the_peer_reads_data_and_eof_and_can_reply(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """write(b"x"); write_eof(): the peer reads b"x" then b"", and can still send back."""
    # trio check_half_closeable_stream: send_x_then_eof, and the other way after
    s1, s2 = pair

    def send_x_then_eof(stream: rocket.Stream) -> Body:
        yield from _write(stream, b"x")
        yield stream.write_eof()

    def expect_x_then_eof(stream: rocket.Stream) -> Body:
        yield rocket.yield_now()
        return [(yield stream.read(10)), (yield stream.read(10))]

    def main() -> Body:
        forward = (yield rocket.gather(send_x_then_eof(s1), expect_x_then_eof(s2)))[1]
        with pytest.raises(BrokenPipeError):  # sending is over (trio: ClosedResourceError)
            yield from _write(s1, b"y")
        yield s1.write_eof()  # but write_eof again is fine
        back = (yield rocket.gather(send_x_then_eof(s2), expect_x_then_eof(s1)))[1]
        return forward, back

    assert _run(engine, main()) == ([b"x", b""], [b"x", b""])


def test_async_fibers_half_close_and_reply(
    engine: str, pair: tuple[rocket.Stream, rocket.Stream]
) -> None:
    """The half-close round trip in async def fibers: data, EOF, then the reply the other way."""
    # trio check_half_closeable_stream: send_x_then_eof / expect_x_then_eof (async style)
    s1, s2 = pair

    async def send_x_then_eof(stream: rocket.Stream) -> None:
        await stream.write(memoryview(b"x"))
        await stream.write_eof()

    async def expect_x_then_eof(stream: rocket.Stream) -> list[bytes]:
        await rocket.yield_now()
        return [await stream.read(10), await stream.read(10)]

    async def main() -> tuple[list[bytes], list[bytes]]:
        forward = (await rocket.gather(send_x_then_eof(s1), expect_x_then_eof(s2)))[1]
        back = (await rocket.gather(send_x_then_eof(s2), expect_x_then_eof(s1)))[1]
        return forward, back

    assert rocket.run(main(), engine=engine) == ([b"x", b""], [b"x", b""])
