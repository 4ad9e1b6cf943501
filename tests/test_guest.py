"""Guest mode: rocket inside a running asyncio loop (default loop and uvloop), on every engine."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import pytest
import uvloop

import rocket
import rocket.asyncio
from rocket.testing import VirtualEngine

T = TypeVar("T")
Body = Generator[Any, Any, T]

HOSTS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(HOSTS))
def host(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Runs an asyncio coroutine on the default loop or on uvloop."""
    factory = HOSTS[str(request.param)]

    def run(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coro)

    return run


Host = Callable[[Coroutine[Any, Any, Any]], Any]


def _guest(host: Host, main: Body[T], engine: str) -> T:
    async def amain() -> T:
        async with asyncio.timeout(20):  # a lost wake-up fails the test instead of hanging it
            return await rocket.asyncio.run(main, engine=engine)

    result: T = host(amain())
    return result


# ---------------------------------------------------------------- running as a guest


def test_run_returns_mains_result(engine: str, host: Host) -> None:
    """await rocket.asyncio.run(main()) returns what main returns, after its children ran."""

    def child(n: int) -> Body[int]:
        yield rocket.sleep(0.01)
        return n * 2

    def main() -> Body[list[int]]:
        fibers = []
        for n in range(5):
            fibers.append((yield rocket.spawn(child(n))))
        results = []
        for f in fibers:
            results.append((yield rocket.join(f)))
        return results

    assert _guest(host, main(), engine) == [0, 2, 4, 6, 8]


def test_run_raises_mains_error(engine: str, host: Host) -> None:
    """An error raised by main comes out of the await, as from rocket.run."""

    def main() -> Body[None]:
        yield rocket.sleep(0)
        raise ValueError("from main")

    with pytest.raises(ValueError, match="from main"):
        _guest(host, main(), engine)


def test_async_def_fibers_run_as_guests(engine: str, host: Host) -> None:
    """An async def fiber (awaiting rocket requests) runs as a guest too."""

    async def main() -> str:
        await rocket.sleep(0.01)
        return await rocket.asyncio.wait(asyncio.sleep(0, result="ok"))

    async def amain() -> str:
        return await rocket.asyncio.run(main(), engine=engine)

    assert host(amain()) == "ok"


def test_both_loops_make_progress_in_one_thread(engine: str, host: Host) -> None:
    """While fibers sleep and switch, asyncio tasks in the same thread keep running."""
    ticks: list[int] = []
    thread = threading.get_ident()

    def main() -> Body[int]:
        for _ in range(5):
            yield rocket.sleep(0.01)
            for _ in range(100):
                yield rocket.yield_now()
        assert threading.get_ident() == thread
        return len(ticks)

    async def amain() -> int:
        async def ticker() -> None:
            while True:
                ticks.append(1)
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        seen = await rocket.asyncio.run(main(), engine=engine)
        task.cancel()
        return seen

    assert host(amain()) > 100  # the ticker ran between rocket's passes


def test_sockets_files_threads_and_timeouts_work_as_guests(
    engine: str, host: Host, tmp_path: Path
) -> None:
    """Sockets, files, to_thread, fail_after and move_on_after behave as under rocket.run."""
    path = tmp_path / "data.bin"

    def echo(stream: rocket.Stream) -> Body[None]:
        while data := (yield stream.read(1024)):
            yield stream.write(data)
        stream.close()

    def main() -> Body[tuple[bytes, bytes, int, bool]]:
        server = yield rocket.serve_tcp(echo, "127.0.0.1", 0)
        client = yield rocket.open_connection("127.0.0.1", server.port)
        yield client.write(b"ping")
        echoed = yield client.read_exactly(4)
        with rocket.move_on_after(0.02) as scope:
            yield client.read(10)  # blocked on I/O: the timer must cancel it
        client.close()
        server.close()
        yield rocket.write_file(path, b"x" * 100_000)
        data = yield rocket.read_file(path)
        total = yield rocket.to_thread(sum, range(10))
        with pytest.raises(TimeoutError), rocket.fail_after(0.02):
            yield rocket.sleep(10)
        return echoed, data[:3], total, scope.timed_out

    assert _guest(host, main(), engine) == (b"ping", b"xxx", 45, True)


def test_a_send_the_engine_prepares_again_while_reaping_is_submitted(
    engine: str, host: Host
) -> None:
    """A sendall bigger than the socket buffer finishes while its fiber is the only one."""
    payload = bytes(4 * 1024 * 1024)
    received = []

    def drain(sock: socket.socket) -> None:  # a plain thread: no fiber is woken meanwhile
        total = 0
        while total < len(payload) and (data := sock.recv(65536)):
            total += len(data)
        received.append(total)

    a, b = socket.socketpair()
    thread = threading.Thread(target=drain, args=(b,), daemon=True)
    thread.start()

    def main() -> Body[None]:
        yield rocket.sendall(a, payload)  # sent in parts: the rest after each reap
        a.close()

    try:
        _guest(host, main(), engine)
    finally:
        a.close()
        thread.join(10)
        b.close()
    assert received == [len(payload)]


def test_two_guest_runs_share_one_loop(engine: str, host: Host) -> None:
    """Two rocket programs run at once as guests of one asyncio loop, each with its fibers."""

    def main(name: str) -> Body[list[str]]:
        steps = []
        for n in range(3):
            yield rocket.sleep(0.005)
            fiber = yield rocket.current()
            steps.append(f"{name}{n}:{fiber.name}")
        return steps

    async def amain() -> list[list[str]]:
        return list(
            await asyncio.gather(
                rocket.asyncio.run(main("a"), engine=engine),
                rocket.asyncio.run(main("b"), engine=engine),
            )
        )

    assert host(amain()) == [["a0:main", "a1:main", "a2:main"], ["b0:main", "b1:main", "b2:main"]]


def test_deadlock_is_raised_not_hung(engine: str, host: Host) -> None:
    """Fibers waiting on each other with nothing else pending raise Deadlock in guest mode too."""

    def main() -> Body[None]:
        yield rocket.Event().wait()

    with pytest.raises(rocket.Deadlock):
        _guest(host, main(), engine)


def test_an_asyncio_callback_that_sets_a_rocket_event_wakes_the_fiber_at_once(
    engine: str, host: Host
) -> None:
    """event.set() from an asyncio callback between passes wakes its fiber (no lost wake-up)."""
    event = rocket.Event()

    def main() -> Body[bool]:
        with rocket.move_on_after(5):  # the lost wake-up waited for this limit
            yield event.wait()
        return event.is_set()

    async def amain() -> tuple[bool, float]:
        asyncio.get_running_loop().call_later(0.05, event.set)
        started = time.monotonic()
        woke = await rocket.asyncio.run(main(), engine=engine)
        return woke, time.monotonic() - started

    woke, seconds = host(amain())
    assert woke
    assert seconds < 2.5


# ---------------------------------------------------------------- waiting for asyncio


def test_wait_returns_result_or_raises_error(engine: str, host: Host) -> None:
    """rocket.asyncio.wait gives a coroutine's result, a future's result, or raises the error."""

    async def boom() -> None:
        await asyncio.sleep(0)
        raise KeyError("boom")

    def main() -> Body[tuple[int, str]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        loop.call_later(0.01, future.set_result, "later")
        first = yield rocket.asyncio.wait(asyncio.sleep(0.01, result=7))
        second = yield rocket.asyncio.wait(future)
        with pytest.raises(KeyError, match="boom"):
            yield rocket.asyncio.wait(boom())
        return first, second

    assert _guest(host, main(), engine) == (7, "later")


def test_asyncio_streams_client_talks_to_rocket_server(engine: str, host: Host) -> None:
    """asyncio's streams client, driven from a fiber, talks to a rocket server in one thread."""

    def upper(stream: rocket.Stream) -> Body[None]:
        while line := (yield stream.readline()):
            yield stream.write(line.upper())
        stream.close()

    async def client(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        lines = []
        for word in (b"alpha\n", b"beta\n", b"gamma\n"):
            writer.write(word)
            await writer.drain()
            lines.append(await reader.readline())
        writer.close()
        await writer.wait_closed()
        return lines

    def main() -> Body[list[bytes]]:
        server = yield rocket.serve_tcp(upper, "127.0.0.1", 0)
        lines: list[bytes] = yield rocket.asyncio.wait(client(server.port))
        server.close()
        return lines

    assert _guest(host, main(), engine) == [b"ALPHA\n", b"BETA\n", b"GAMMA\n"]


def test_rocket_client_talks_to_asyncio_server(engine: str, host: Host) -> None:
    """A rocket client talks to an asyncio.start_server server of the host loop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readexactly(5)
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    def main(port: int) -> Body[bytes]:
        stream = yield rocket.open_connection("127.0.0.1", port)
        yield stream.write(b"hello")
        data: bytes = yield stream.read_exactly(5)
        stream.close()
        return data

    async def amain() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await rocket.asyncio.run(main(port), engine=engine)

    assert host(amain()) == b"olleh"


def test_aiosqlite_driven_from_a_fiber(engine: str, host: Host, tmp_path: Path) -> None:
    """aiosqlite (an asyncio library with a worker thread) works from fibers via wait()."""

    async def store(db: aiosqlite.Connection, rows: list[tuple[int, str]]) -> None:
        await db.executemany("INSERT INTO t VALUES (?, ?)", rows)
        await db.commit()

    async def fetch(db: aiosqlite.Connection) -> list[Any]:
        async with db.execute("SELECT n, name FROM t ORDER BY n") as cursor:
            return list(await cursor.fetchall())

    # One write at a time: aiosqlite itself fails about 1 in 300 runs of four
    # concurrent executemany+commit on one connection, in plain asyncio too
    # (sqlite3.InterfaceError "bad parameter or other API misuse").
    lock = rocket.Lock()

    def writer(db: aiosqlite.Connection, n: int) -> Body[None]:
        with (yield lock.acquire()):
            yield rocket.asyncio.wait(store(db, [(n, f"r{n}")]))

    def main() -> Body[list[Any]]:
        db = yield rocket.asyncio.wait(aiosqlite.connect(tmp_path / "test.db"))
        try:
            yield rocket.asyncio.wait(db.execute("CREATE TABLE t (n INTEGER, name TEXT)"))
            writers = []
            for n in range(4):  # four fibers share the connection
                writers.append((yield rocket.spawn(writer(db, n))))
            for fiber in writers:
                yield rocket.join(fiber)
            rows: list[Any] = yield rocket.asyncio.wait(fetch(db))
            return rows
        finally:
            yield rocket.asyncio.wait(db.close())

    assert _guest(host, main(), engine) == [(0, "r0"), (1, "r1"), (2, "r2"), (3, "r3")]


# ---------------------------------------------------------------- cancellation, both ways


def test_cancelling_the_fiber_cancels_the_task(engine: str, host: Host) -> None:
    """Cancelling a waiting fiber cancels its task; it raises Cancelled once the task has ended."""
    log: list[str] = []

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("task cancelled")
            await asyncio.sleep(0.01)  # its cleanup runs before the fiber resumes
            log.append("task cleaned up")
            raise

    def waiter() -> Body[None]:
        try:
            yield rocket.asyncio.wait(work())
        except rocket.Cancelled:
            log.append("fiber cancelled")
            raise

    def main() -> Body[None]:
        fiber = yield rocket.spawn(waiter())
        yield rocket.sleep(0.01)
        fiber.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(fiber)

    _guest(host, main(), engine)
    assert log == ["task cancelled", "task cleaned up", "fiber cancelled"]


def test_a_timeout_around_wait_cancels_the_task(engine: str, host: Host) -> None:
    """fail_after around rocket.asyncio.wait cancels the asyncio task and raises TimeoutError."""
    cancelled = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    def main() -> Body[None]:
        with pytest.raises(TimeoutError), rocket.fail_after(0.02):
            yield rocket.asyncio.wait(slow())

    _guest(host, main(), engine)
    assert cancelled == [True]


def test_a_result_the_task_still_returns_is_delivered(engine: str, host: Host) -> None:
    """A task that returns despite the cancel delivers its result; Cancelled comes next request."""
    got: list[object] = []

    async def stubborn() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "finished anyway"
        return "slept"

    def waiter() -> Body[None]:
        got.append((yield rocket.asyncio.wait(stubborn())))
        yield rocket.sleep(0)  # the cancel is raised here

    def main() -> Body[None]:
        fiber = yield rocket.spawn(waiter())
        yield rocket.sleep(0.01)
        fiber.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(fiber)

    _guest(host, main(), engine)
    assert got == ["finished anyway"]


def test_cancelling_the_task_raises_in_the_fiber(engine: str, host: Host) -> None:
    """A task cancelled on the asyncio side raises rocket.Cancelled in the fiber waiting for it."""
    tasks: list[asyncio.Task[None]] = []

    async def long() -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        await asyncio.sleep(10)

    def main() -> Body[str]:
        try:
            yield rocket.asyncio.wait(long())
        except rocket.Cancelled as exc:
            return str(exc)
        return "not cancelled"

    async def amain() -> str:
        run = asyncio.create_task(rocket.asyncio.run(main(), engine=engine))
        while not tasks:
            await asyncio.sleep(0)
        tasks[0].cancel()
        return await run

    assert "was cancelled" in host(amain())


def test_cancelling_the_host_task_cancels_main(engine: str, host: Host) -> None:
    """Cancelling the task awaiting rocket.asyncio.run cancels main; its cleanup still does I/O."""
    log: list[str] = []
    started = asyncio.Event()

    def child() -> Body[None]:
        try:
            yield rocket.sleep(10)
        finally:
            yield rocket.sleep(0.01)  # I/O in cleanup still works
            log.append("child cleaned up")

    def main() -> Body[None]:
        yield rocket.spawn(child())
        started.set()
        try:
            yield rocket.sleep(10)
        finally:
            yield rocket.sleep(0.01)
            log.append("main cleaned up")

    async def amain() -> None:
        run = asyncio.create_task(rocket.asyncio.run(main(), engine=engine))
        await started.wait()
        run.cancel("stop")
        with pytest.raises(asyncio.CancelledError, match="stop"):
            await run

    host(amain())
    assert sorted(log) == ["child cleaned up", "main cleaned up"]


def test_ctrl_c_under_asyncio_run_cancels_the_fibers(engine: str) -> None:
    """Ctrl-C under asyncio.run cancels every fiber, lets its cleanup run, then raises it."""
    log: list[str] = []

    def main() -> Body[None]:
        asyncio.get_running_loop().call_later(0.01, signal.raise_signal, signal.SIGINT)
        try:
            yield rocket.sleep(10)
        finally:
            yield rocket.sleep(0.001)
            log.append("cleaned up")

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(rocket.asyncio.run(main(), engine=engine))
    assert log == ["cleaned up"]


def test_asyncio_timeout_around_a_guest_run(engine: str, host: Host) -> None:
    """asyncio.timeout() around rocket.asyncio.run stops the rocket program with TimeoutError."""

    def main() -> Body[None]:
        yield rocket.sleep(10)

    async def amain() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await rocket.asyncio.run(main(), engine=engine)

    started = time.monotonic()
    host(amain())
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- errors that say what to do


def test_wait_outside_guest_mode_says_what_to_do(engine: str) -> None:
    """rocket.asyncio.wait under rocket.run raises RuntimeError naming both ways out."""

    def main() -> Body[None]:
        yield rocket.asyncio.wait(asyncio.sleep(0))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the coroutine is closed: no "never awaited"
        with pytest.raises(RuntimeError, match=r"await rocket\.asyncio\.run.*to_thread"):
            rocket.run(main(), engine=engine)


def test_signal_in_guest_mode_says_asyncio_owns_signals(engine: str, host: Host) -> None:
    """rocket.signal() in a guest run raises RuntimeError naming asyncio's add_signal_handler."""

    def main() -> Body[str]:
        try:
            yield rocket.signal(signal.SIGHUP)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    assert "add_signal_handler" in _guest(host, main(), engine)


def test_rocket_run_inside_asyncio_says_to_await(engine: str, host: Host) -> None:
    """rocket.run inside a running asyncio loop says to write 'await rocket.asyncio.run(...)'."""

    def main() -> Body[None]:
        yield rocket.sleep(0)

    async def amain() -> None:
        with pytest.raises(RuntimeError, match=r"await rocket\.asyncio\.run\(main\(\)\)"):
            rocket.run(main(), engine=engine)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host(amain())


def test_rocket_run_inside_a_guest_fiber_says_rocket_runs(engine: str, host: Host) -> None:
    """rocket.run from a guest's fiber says rocket is already running, as under rocket.run."""

    def inner() -> Body[None]:
        yield rocket.sleep(0)

    def main() -> Body[None]:
        yield rocket.sleep(0)
        rocket.run(inner())

    with pytest.raises(RuntimeError, match="already running"):
        _guest(host, main(), engine)


def test_wrong_arguments_are_refused(engine: str) -> None:
    """wait() wants an awaitable; run() wants a body and an engine with an fd to watch."""

    async def coro() -> None:
        pass

    with pytest.raises(TypeError, match=r"call it: wait\(coro\(\.\.\.\)\)"):
        rocket.asyncio.wait(coro)  # type: ignore[arg-type]

    def main() -> Body[None]:
        yield rocket.sleep(0)

    async def amain() -> None:
        with pytest.raises(TypeError, match="fileno"):
            await rocket.asyncio.run(main(), engine=VirtualEngine())
        with pytest.raises(TypeError, match=r"call it"):
            await rocket.asyncio.run(main)  # type: ignore[arg-type]

    asyncio.run(amain())


def test_a_loop_without_add_reader_is_refused(engine: str) -> None:
    """A host loop without add_reader (Windows' proactor) gets a RuntimeError naming what works."""

    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, *args: Any) -> None:  # type: ignore[override]
            raise NotImplementedError

    def main() -> Body[None]:
        yield rocket.sleep(0)

    async def amain() -> None:
        with pytest.raises(RuntimeError, match=r"add_reader.*uvloop"):
            await rocket.asyncio.run(main(), engine=engine)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # main is closed: no "never awaited"
        with asyncio.Runner(loop_factory=NoReaders) as runner:
            runner.run(amain())


def test_no_fd_is_left_open(engine: str, host: Host) -> None:
    """A guest run closes its engine: no fd is left behind."""

    def main() -> Body[None]:
        yield rocket.sleep(0.001)

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        _guest(host, main(), engine)
    assert len(os.listdir("/proc/self/fd")) <= before
