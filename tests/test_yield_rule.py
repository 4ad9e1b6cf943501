"""The yield rule: a fiber may ``yield`` anything rocket gives it.

Primitive requests, Composites (``stream.readline()``), generator objects and
coroutine objects all work with a plain ``yield``: the last three run as nested
calls of the same fiber (pyos8's call stack), so their requests are the fiber's,
their return value is the value of the ``yield`` and their exception is raised
there. Every test runs on every engine.
"""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable, Generator
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]


def _helper(x: int) -> Body:
    yield rocket.sleep(0)
    return x * 2


async def _async_helper(x: int) -> int:
    await rocket.sleep(0)
    return x + 1


def test_yield_a_generator_returns_its_value(engine: str) -> None:
    """``value = yield helper()`` runs the helper in the fiber and gets its return value."""

    def main() -> Body:
        a = yield _helper(3)
        b = yield _async_helper(a)  # a generator fiber calls an async def helper
        return a, b

    assert rocket.run(main(), engine=engine) == (6, 7)


def test_nested_calls_nest_deeply(engine: str) -> None:
    """Nested calls can call nested calls; 200 levels deep and back."""

    def down(n: int) -> Body:
        if n == 0:
            yield rocket.sleep(0)
            return 0
        below = yield down(n - 1)
        return below + 1

    assert rocket.run(down(200), engine=engine) == 200


def test_nested_error_is_raised_at_the_yield_with_every_frame(engine: str) -> None:
    """A nested call's error is raised at the caller's yield; the traceback shows both frames."""

    def failing() -> Body:
        yield rocket.sleep(0)
        raise ValueError("deep")

    def main() -> Body:
        try:
            yield failing()
        except ValueError as exc:
            names = [frame.name for frame in traceback.extract_tb(exc.__traceback__)]
            return names
        return None

    names = rocket.run(main(), engine=engine)
    assert names[:2] == ["main", "failing"]
    assert "_step" not in names


def test_uncaught_nested_error_fails_run_with_the_whole_stack(engine: str) -> None:
    """run() raises a nested call's error; its traceback names the fiber and the helper."""

    def failing() -> Body:
        yield rocket.sleep(0)
        raise KeyError("inner")

    def main() -> Body:
        yield failing()

    with pytest.raises(KeyError) as info:
        rocket.run(main(), engine=engine)
    names = [entry.name for entry in info.traceback]
    assert names.index("main") < names.index("failing")


def test_cancel_reaches_the_innermost_call_and_finally_runs_in_order(engine: str) -> None:
    """Cancelling a fiber inside nested calls unwinds them innermost first."""
    order: list[str] = []

    def inner() -> Body:
        try:
            yield rocket.sleep(10)
        finally:
            order.append("inner")

    def middle() -> Body:
        try:
            yield inner()
        finally:
            order.append("middle")

    def worker() -> Body:
        try:
            yield middle()
        finally:
            order.append("worker")

    def main() -> Body:
        handle = yield rocket.spawn(worker())
        yield rocket.sleep(0.01)
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return order

    assert rocket.run(main(), engine=engine) == ["inner", "middle", "worker"]


def test_fail_after_around_a_nested_call(engine: str) -> None:
    """fail_after bounds a nested call: TimeoutError at the caller's yield, on time."""

    def slow() -> Body:
        yield rocket.sleep(5)
        return "late"

    def main() -> Body:
        with pytest.raises(TimeoutError), rocket.fail_after(0.05):
            yield slow()
        with rocket.move_on_after(0.05):
            result = yield slow()
            return result
        return "moved on"

    assert rocket.run(main(), engine=engine) == "moved on"


def test_async_fiber_awaits_composites(engine: str) -> None:
    """An async def fiber awaits Composites and primitives alike."""

    async def main() -> Any:
        a, b = socket.socketpair()
        with a, b:
            await rocket.sendall(a, b"line\n")
            stream = rocket.Stream(b)
            line = await stream.readline()
            stream.close()
            return line

    assert rocket.run(main(), engine=engine) == b"line\n"


def test_every_stream_and_server_helper_works_with_plain_yield(engine: str) -> None:
    """serve_tcp, open_connection, write, read, readline, read_until, read_exactly, sendall."""

    def handler(stream: rocket.Stream) -> Body:
        line = yield stream.readline()
        yield stream.write(line.upper())
        word = yield stream.read_until(b";")
        yield stream.write(word[::-1])
        exact = yield stream.read_exactly(3)
        yield rocket.sendall(stream.sock, exact * 2)

    def main() -> Body:
        server = yield rocket.serve_tcp(handler, "127.0.0.1", 0)
        serving = yield rocket.spawn(server.serve_forever())  # spawn takes a Composite
        client = yield rocket.open_connection("127.0.0.1", server.port)
        yield client.write(b"hello\n")
        first = yield client.readline()
        yield client.write(b"abc;xyz")
        second = yield client.read_exactly(4)
        third = yield client.read(64)
        client.close()
        server.close()
        yield rocket.join(serving)
        return first, second, third

    assert rocket.run(main(), engine=engine) == (b"HELLO\n", b";cba", b"xyzxyz")


def test_unix_helpers_work_with_plain_yield(engine: str, tmp_path: Any) -> None:
    """serve_unix and open_unix_connection work with plain yield."""
    path = str(tmp_path / "s")

    def handler(stream: rocket.Stream) -> Body:
        data = yield stream.read(10)
        yield stream.write(data + b"!")

    def main() -> Body:
        server = yield rocket.serve_unix(handler, path)
        yield rocket.spawn(server.serve_forever())
        client = yield rocket.open_unix_connection(path)
        yield client.write(b"hi")
        reply = yield client.read_exactly(3)
        client.close()
        server.close()
        return reply

    assert rocket.run(main(), engine=engine) == b"hi!"


def test_condition_wait_for_works_with_plain_yield(engine: str) -> None:
    """Condition.wait_for is a Composite; plain yield waits until the predicate holds."""
    cond = rocket.Condition()
    box: list[int] = []

    def producer() -> Body:
        for i in range(3):
            yield rocket.sleep(0)
            with (yield cond.acquire()):
                box.append(i)
                cond.notify_all()

    def main() -> Body:
        yield rocket.spawn(producer())
        with (yield cond.acquire()):
            yield cond.wait_for(lambda: len(box) == 3)
        return box

    assert rocket.run(main(), engine=engine) == [0, 1, 2]


def test_a_composite_runs_once(engine: str) -> None:
    """Yielding one Composite twice raises TypeError saying to call the helper again."""

    def main() -> Body:
        a, b = socket.socketpair()
        with a, b:
            stream = rocket.Stream(b)
            yield rocket.sendall(a, b"one\ntwo\n")
            readline = stream.readline()
            first = yield readline
            with pytest.raises(TypeError, match=r"readline\(\) was already run.*call Stream"):
                yield readline
            second = yield stream.readline()
            return first, second

    assert rocket.run(main(), engine=engine) == (b"one\n", b"two\n")


def test_a_generator_is_spawned_once(engine: str) -> None:
    """Spawning a finished or running generator raises TypeError instead of returning None."""

    def child() -> Body:
        yield rocket.sleep(0)
        return 1

    def main() -> Body:
        body = child()
        handle = yield rocket.spawn(body)
        yield rocket.join(handle)
        with pytest.raises(TypeError, match="has finished"):
            yield rocket.spawn(body)
        started = child()
        yield started  # runs it to the end as a nested call
        with pytest.raises(TypeError, match="call child\\(\\) again"):
            yield started
        return True

    assert rocket.run(main(), engine=engine)


def test_snapshot_shows_the_nested_stack(engine: str) -> None:
    """snapshot() names the innermost request and the calls it is in, innermost first."""

    def inner() -> Body:
        yield rocket.sleep(5)

    def outer() -> Body:
        yield inner()

    def main() -> Body:
        handle = yield rocket.spawn(outer(), name="worker")
        yield rocket.sleep(0.01)
        infos = yield rocket.snapshot()
        handle.cancel()
        info = next(i for i in infos if i.name == "worker")
        return info, rocket.format_snapshot(infos)

    info, table = rocket.run(main(), engine=engine)
    assert info.request == "sleep(5)"
    assert [name.rsplit(".", 1)[-1] for name in info.calls] == ["inner", "outer"]
    assert "sleep(5) in " in table


def test_trace_names_the_nested_call(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    """trace=True says in which nested call a request was made."""

    def helper() -> Body:
        yield rocket.sleep(0)

    def main() -> Body:
        yield helper()

    rocket.run(main(), engine=engine, trace=True)
    assert "asked for sleep(0) in " in capsys.readouterr().err


def test_close_in_finally_happens_despite_a_pending_cancel(engine: str) -> None:
    """A cancel that lands while a read completes does not skip the close in finally."""
    leaked = []

    def reader(fd: int) -> Body:
        try:
            yield rocket.read(fd, 10)
        finally:
            yield rocket.close(fd)

    def main() -> Body:
        for _ in range(20):
            r, w = os.pipe()
            handle = yield rocket.spawn(reader(r))
            yield rocket.sleep(0)  # the reader waits in read
            os.write(w, b"data")  # the read completes ...
            handle.cancel()  # ... while the cancel is asked for
            try:
                yield rocket.join(handle)
            except rocket.Cancelled:
                pass
            os.close(w)
            try:
                os.fstat(r)
                leaked.append(r)
                os.close(r)
            except OSError:
                pass
        return leaked

    assert rocket.run(main(), engine=engine) == []


def test_cancel_beats_an_end_of_file_caused_in_the_same_pass(engine: str) -> None:
    """A fiber cancelled while its recv ends with b'' gets Cancelled, not the empty read."""
    outcomes = []

    def reader(sock: socket.socket) -> Body:
        try:
            data = yield rocket.recv(sock, 10)
        except rocket.Cancelled:
            outcomes.append("cancelled")
            raise
        outcomes.append(data)

    def close_peer(peer: socket.socket) -> Body:
        peer.close()  # e.g. Stream.close() in a cleanup: no request, the kernel acts at once
        yield rocket.yield_now()

    def main() -> Body:
        for _ in range(20):
            a, b = socket.socketpair()
            handle = yield rocket.spawn(reader(a))
            yield rocket.sleep(0)  # the reader waits in recv
            yield rocket.spawn(close_peer(b))  # the peer goes away: recv gets b"" ...
            yield rocket.yield_now()  # ... in the pass where this fiber cancels the reader
            handle.cancel()
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
            a.close()
        return outcomes

    assert rocket.run(main(), engine=engine) == ["cancelled"] * 20


# Every Composite helper of the public API, in both fiber styles, bounded by
# fail_after around the nested call and cancelled through it.

_SILENT_READS: dict[str, Callable[[rocket.Stream], Any]] = {
    "read": lambda s: s.read(10),
    "read_exactly": lambda s: s.read_exactly(10),
    "read_until": lambda s: s.read_until(b";"),
    "readline": lambda s: s.readline(),
}


@pytest.mark.parametrize("helper", sorted(_SILENT_READS))
@pytest.mark.parametrize("style", ["generator", "async"])
def test_fail_after_and_cancel_through_each_stream_helper(
    engine: str, helper: str, style: str
) -> None:
    """Each Stream read helper: yield (or await) under fail_after times out; cancel ends it."""
    make = _SILENT_READS[helper]

    def generator_reader(stream: rocket.Stream) -> Body:
        with pytest.raises(TimeoutError), rocket.fail_after(0.05):
            yield make(stream)
        yield make(stream)  # waits until cancelled

    async def async_reader(stream: rocket.Stream) -> None:
        with pytest.raises(TimeoutError), rocket.fail_after(0.05):
            await make(stream)
        await make(stream)

    def main() -> Body:
        a, b = socket.socketpair()
        with a, rocket.Stream(b) as stream:
            body = generator_reader(stream) if style == "generator" else async_reader(stream)
            handle = yield rocket.spawn(body)
            yield rocket.sleep(0.1)
            assert handle.state == "blocked"
            handle.cancel()
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
            yield rocket.sendall(a, b"0123456789;\n")  # nothing was lost or left half-read
            return (yield stream.read_exactly(12))

    assert rocket.run(main(), engine=engine) == b"0123456789;\n"


@pytest.mark.parametrize("style", ["generator", "async"])
def test_fail_after_through_open_connection_serve_and_serve_forever(
    engine: str, style: str
) -> None:
    """serve_tcp, open_connection, serve_forever by yield / await; fail_after closes a server."""

    def handler(stream: rocket.Stream) -> Body:
        yield stream.write((yield stream.readline()))

    def generator_main() -> Body:
        first = yield rocket.serve_tcp(handler, "127.0.0.1", 0)
        with pytest.raises(TimeoutError), rocket.fail_after(0.05):
            yield first.serve_forever()  # serves until cut short, which closes it
        assert first.closed
        server = yield rocket.serve_tcp(handler, "127.0.0.1", 0)
        yield rocket.spawn(server.serve_forever())
        client = yield rocket.open_connection("127.0.0.1", server.port)
        yield client.write(b"ping\n")
        line = yield client.readline()
        client.close()
        server.close()
        return line

    async def async_main() -> bytes:
        first = await rocket.serve_tcp(handler, "127.0.0.1", 0)
        with pytest.raises(TimeoutError), rocket.fail_after(0.05):
            await first.serve_forever()
        assert first.closed
        server = await rocket.serve_tcp(handler, "127.0.0.1", 0)
        await rocket.spawn(server.serve_forever())
        client = await rocket.open_connection("127.0.0.1", server.port)
        await client.write(b"ping\n")
        line: bytes = await client.readline()
        client.close()
        server.close()
        return line

    main = generator_main() if style == "generator" else async_main()
    assert rocket.run(main, engine=engine) == b"ping\n"
