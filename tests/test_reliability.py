"""Reliability: load, faults, bad input and random schedules, with nothing lost, on every engine.

The default run is short; ``pytest --soak`` (``nox -s soak``) runs the long versions
(10,000 connections, 100,000 fibers, a 60 s soak). Figures are printed (``-s``)
and collected in docs/reliability.md.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import random
import resource
import selectors
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rocket
import rocket.testing
from rocket.engines import create_engine

Body = Generator[Any, Any, Any]


def _soak(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--soak"))


def _raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------- bad input


def _closed_fd() -> int:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    return r


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda fd, _: rocket.read(fd), errno.EBADF),
        (lambda fd, _: rocket.write(fd, b"x"), errno.EBADF),
        (lambda fd, _: rocket.fsync(fd), errno.EBADF),
        (lambda fd, _: rocket.recv(fd), errno.EBADF),
        (lambda fd, _: rocket.send(fd, b"x"), errno.EBADF),
        (lambda _, f: rocket.recv(f), errno.ENOTSOCK),
        (lambda _, f: rocket.send(f, b"x"), errno.ENOTSOCK),
        (lambda _, f: rocket.accept(f), errno.ENOTSOCK),
        (lambda _, f: rocket.shutdown(f, socket.SHUT_RDWR), errno.ENOTSOCK),
        (lambda _, f: rocket.open("/nonexistent/rocket/x"), errno.ENOENT),
        (lambda _, f: rocket.stat("/nonexistent/rocket/x"), errno.ENOENT),
    ],
)
def test_failed_operation_raises_in_its_fiber_while_others_go_on(
    engine: str, tmp_path: Path, make: Any, code: int
) -> None:
    """A failing request raises OSError(errno) naming itself; a neighbour keeps ticking."""
    regular = tmp_path / "file"
    regular.write_bytes(b"data")
    file_fd = os.open(regular, os.O_RDWR)
    ticks: list[int] = []

    def ticker() -> Body:
        for i in range(5):
            ticks.append(i)
            yield rocket.sleep(0.001)

    def main() -> Body:
        neighbour = yield rocket.spawn(ticker())
        request = make(_closed_fd(), file_fd)
        try:
            yield request
        except OSError as exc:
            error = exc
        yield rocket.join(neighbour)
        return error

    try:
        error = rocket.run(main(), engine=engine)
    finally:
        os.close(file_fd)
    assert error.errno == code
    assert f"{make(0, 0).verb}(" in str(error)
    assert ticks == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------ load

_SERVER = textwrap.dedent(
    """
    import resource, socket, sys
    import rocket

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def echo(conn):
        with conn:
            while data := (yield rocket.recv(conn)):
                yield from rocket.sendall(conn, data)

    def serve():
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        print(listener.getsockname()[1], hard, flush=True)
        while True:
            conn, _ = yield rocket.accept(listener)
            yield rocket.spawn(echo(conn))

    rocket.run(serve(), engine=sys.argv[1])
    """
)


def test_many_concurrent_connections_all_echo(engine: str, request: pytest.FixtureRequest) -> None:
    """N connections held open at once to a rocket echo server each get their own bytes back."""
    wanted = 10_000 if _soak(request) else 1_000
    limit = _raise_fd_limit(wanted + 100)
    count = min(wanted, limit - 100)
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, engine], stdout=subprocess.PIPE, text=True
    )
    clients: list[socket.socket] = []
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[0])
        for _ in range(count):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        sel = selectors.DefaultSelector()
        pending: dict[socket.socket, bytes] = {}
        for i, sock in enumerate(clients):
            message = f"connection {i} says hello".encode()
            sock.sendall(message)
            sock.setblocking(False)
            pending[sock] = message
            sel.register(sock, selectors.EVENT_READ)
        received = dict.fromkeys(clients, b"")
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(1):
                peer = key.fileobj
                assert isinstance(peer, socket.socket)
                received[peer] += peer.recv(100)
                if received[peer] == pending[peer]:
                    sel.unregister(peer)
                    del pending[peer]
        sel.close()
        assert not pending, f"{len(pending)} of {count} connections got no full echo"
        print(f"\n[{engine}] {count} concurrent connections echoed (fd limit {limit})")
    finally:
        for sock in clients:
            sock.close()
        server.kill()
        server.wait()


def test_memory_per_idle_fiber(engine: str, request: pytest.FixtureRequest) -> None:
    """Many sleeping fibers at once: the memory each costs is measured and bounded."""
    count = 100_000 if _soak(request) else 20_000
    figures: dict[str, float] = {}

    def sleeper() -> Body:
        yield rocket.sleep(3600)

    def main() -> Body:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            yield rocket.spawn(sleeper())
        yield rocket.sleep(0.01)  # every sleeper is now blocked in the engine
        figures["per_fiber"] = (tracemalloc.get_traced_memory()[0] - before) / count
        tracemalloc.stop()

    rocket.run(main(), engine=engine)  # returning cancels the sleepers
    print(f"\n[{engine}] {count} sleeping fibers: {figures['per_fiber']:.0f} bytes each")
    assert figures["per_fiber"] < 2048


def test_spawned_at_once_all_finish(engine: str, request: pytest.FixtureRequest) -> None:
    """Fibers spawned in one burst all run to completion with their own results."""
    count = 100_000 if _soak(request) else 20_000

    def child(n: int) -> Body:
        yield rocket.yield_now()
        return n

    def main() -> Body:
        handles = []
        for n in range(count):
            handles.append((yield rocket.spawn(child(n))))
        total = 0
        for handle in handles:
            total += yield rocket.join(handle)
        return total

    assert rocket.run(main(), engine=engine) == count * (count - 1) // 2


def test_a_handler_that_always_raises_does_not_stop_the_server(engine: str) -> None:
    """A connection whose handler raises on every message is dropped; others keep echoing."""

    async def handler(stream: rocket.Stream) -> None:
        while data := await stream.read():
            if data.startswith(b"bad"):
                raise ValueError("this handler hates 'bad'")
            await stream.write(data)

    async def client(port: int, message: bytes) -> bytes:
        stream = await rocket.open_connection("127.0.0.1", port)
        with stream:
            await stream.write(message)
            return await stream.read()

    async def main() -> list[bytes]:
        server = await rocket.serve_tcp(handler, "127.0.0.1", 0)
        with server:
            replies = []
            for message in (b"good 1", b"bad 1", b"good 2", b"bad 2", b"good 3"):
                replies.append(await client(server.port, message))
            return replies

    assert rocket.run(main(), engine=engine) == [b"good 1", b"", b"good 2", b"", b"good 3"]


# ---------------------------------------------------------------- faults


def _echo(conn: socket.socket, log: list[str]) -> Body:
    with conn:
        try:
            while data := (yield rocket.recv(conn)):
                yield from rocket.sendall(conn, data)
            log.append("eof")
        except ConnectionResetError:
            log.append("reset")


def test_reset_mid_message_and_half_close(engine: str, listener: socket.socket) -> None:
    """A reset (SO_LINGER 0) ends one fiber cleanly; a half-closed peer still gets its echo."""
    log: list[str] = []

    def main() -> Body:
        # A client that resets while the server is sending it 4 MiB back.
        rude = socket.socket()
        yield rocket.connect(rude, listener.getsockname())
        conn, _ = yield rocket.accept(listener)
        handle = yield rocket.spawn(_echo(conn, log))
        yield from rocket.sendall(rude, b"x" * (4 << 20))
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        rude.close()
        try:
            yield rocket.join(handle)
        except OSError as exc:  # EPIPE/ECONNRESET while sending: also a clean end
            log.append(type(exc).__name__)
        # A client that sends, shuts down its side, and reads everything back.
        polite = socket.socket()
        yield rocket.connect(polite, listener.getsockname())
        conn, _ = yield rocket.accept(listener)
        handle = yield rocket.spawn(_echo(conn, log))
        payload = os.urandom(300_000)
        yield from rocket.sendall(polite, payload)
        yield rocket.shutdown(polite, socket.SHUT_WR)
        echoed = b""
        while chunk := (yield rocket.recv(polite)):
            echoed += chunk
        yield rocket.join(handle)
        polite.close()
        return echoed == payload

    assert rocket.run(main(), engine=engine) is True
    assert log[0] in ("reset", "eof", "BrokenPipeError", "ConnectionResetError")
    assert log[-1] == "eof"


def test_ten_times_more_operations_than_ring_entries() -> None:
    """640 reads in flight on a 64-entry ring: every one completes with its own data."""
    try:
        from rocket.engines.uring import UringEngine

        engine = UringEngine(entries=64)
    except (rocket.EngineUnavailable, OSError) as exc:
        pytest.skip(f"io_uring unavailable: {exc}")
    pipes = [os.pipe() for _ in range(640)]
    try:
        for token, (r, _) in enumerate(pipes, 1):
            engine.submit(token, rocket.read(r, 16))
        assert engine.wait(0) == []  # nothing written yet
        for i, (_, w) in enumerate(pipes):
            os.write(w, f"pipe {i}".encode())
        results: dict[int, Any] = {}
        deadline = time.monotonic() + 10
        while len(results) < len(pipes) and time.monotonic() < deadline:
            for token, value, error in engine.wait(1.0):
                assert error is None
                assert token not in results, "a completion came twice"
                results[token] = value
        assert results == {t: f"pipe {t - 1}".encode() for t in range(1, 641)}
    finally:
        engine.close()
        for r, w in pipes:
            os.close(r)
            os.close(w)


# ------------------------------------------------------------------ soak


def test_soak_no_byte_lost_and_nothing_leaks(engine: str, request: pytest.FixtureRequest) -> None:
    """Random-size messages (1 B to 1 MiB) with checksums: none lost; fds and memory flat."""
    seconds = 60.0 if _soak(request) else 4.0
    rng = random.Random(7)
    stats = {"messages": 0, "bytes": 0}
    samples: list[tuple[int, int]] = []

    def fd_count() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def handler(stream: rocket.Stream) -> None:
        while True:
            size = int.from_bytes(await stream.read_exactly(4), "big")
            body = await stream.read_exactly(size)
            await stream.write(hashlib.sha256(body).digest())
            if size == 0:
                return

    async def client(port: int, deadline: float) -> None:
        stream = await rocket.open_connection("127.0.0.1", port)
        with stream:
            while time.monotonic() < deadline:
                size = rng.choice([1, rng.randrange(1, 1 << 20), rng.randrange(1, 4096)])
                body = rng.randbytes(size)
                await stream.write(size.to_bytes(4, "big") + body)
                digest = await stream.read_exactly(32)
                assert digest == hashlib.sha256(body).digest(), "a message was corrupted"
                stats["messages"] += 1
                stats["bytes"] += size
            await stream.write((0).to_bytes(4, "big"))
            await stream.read_exactly(32)

    async def main() -> None:
        tracemalloc.start()
        server = await rocket.serve_tcp(handler, "127.0.0.1", 0)
        with server:
            deadline = time.monotonic() + seconds
            async with rocket.TaskGroup() as group:
                for _ in range(8):
                    group.spawn(client(server.port, deadline))
                while True:
                    await rocket.sleep(seconds / 8)
                    if time.monotonic() >= deadline - seconds / 16:  # clients are leaving
                        break
                    samples.append((fd_count(), tracemalloc.get_traced_memory()[0]))
        tracemalloc.stop()

    before = fd_count()
    rocket.run(main(), engine=engine)
    assert fd_count() == before, "file descriptors leaked"
    assert stats["messages"] > 0
    warm = samples[len(samples) // 2 :]
    fds = [s[0] for s in warm]
    memory = [s[1] for s in warm]
    print(
        f"\n[{engine}] soak {seconds:g} s: {stats['messages']} messages, "
        f"{stats['bytes'] / 1e6:.1f} MB checked; fds after warm-up {min(fds)}..{max(fds)}, "
        f"traced memory {min(memory) / 1e6:.1f}..{max(memory) / 1e6:.1f} MB"
    )
    assert max(fds) - min(fds) <= 2
    assert max(memory) < 64e6, "memory grew without bound"


# -------------------------------------------------------- random schedules


def _model(steps: list[int]) -> list[tuple[int, int]]:
    """The intended order: round robin over fibers in spawn order, one step per turn."""
    queue = deque((fid, 0) for fid in range(len(steps)))
    log = []
    while queue:
        fid, step = queue.popleft()
        if step < steps[fid]:
            log.append((fid, step))
            queue.append((fid, step + 1))
    return log


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=8))
def test_random_yield_programs_follow_the_model(steps: list[int]) -> None:
    """Random fibers of yield_now steps interleave exactly as the round-robin model says."""
    for engine in ("io_uring", "selector"):
        try:
            create_engine(engine).close()
        except (rocket.EngineUnavailable, OSError):
            continue
        log: list[tuple[int, int]] = []

        def fiber(fid: int, count: int, log: list[tuple[int, int]] = log) -> Body:
            for step in range(count):
                log.append((fid, step))
                yield rocket.yield_now()
            return count

        def main(log: list[tuple[int, int]] = log) -> Body:
            handles = []
            for fid, count in enumerate(steps):
                handles.append((yield rocket.spawn(fiber(fid, count))))
            results = []
            for handle in handles:
                results.append((yield rocket.join(handle)))
            return results

        assert rocket.run(main(), engine=engine) == steps
        assert log == _model(steps), engine


_op = st.one_of(
    st.tuples(st.just("sleep"), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("put"), st.integers(min_value=0, max_value=99)),
    st.tuples(st.just("yield"), st.just(0)),
    st.tuples(st.just("wait"), st.just(0)),
)


@settings(max_examples=25, deadline=None)
@given(
    programs=st.lists(st.lists(_op, max_size=6), min_size=1, max_size=5),
    cancel=st.sets(st.integers(min_value=0, max_value=4)),
    cancel_at=st.integers(min_value=0, max_value=6),
)
def test_random_programs_with_sleep_queue_and_cancel(
    programs: list[list[tuple[str, int]]], cancel: set[int], cancel_at: int
) -> None:
    """Random workers that sleep, yield, wait on an Event and put into a Queue; some cancelled.

    On the virtual engine the wake times are exact and no Event waiter resumes
    before main sets it; on every engine: no waiter is lost, the consumer
    gets exactly the items put, in the order they were put (FIFO), cancelled
    workers raise Cancelled from join after their finally ran, the others finish.
    """
    engines: list[tuple[str, Any, float]] = [("virtual", rocket.testing.VirtualEngine(), 1.0)]
    for name in ("io_uring", "selector"):
        try:
            create_engine(name).close()
        except (rocket.EngineUnavailable, OSError):
            continue
        engines.append((name, name, 0.002))  # real engines: 2 ms per unit
    for name, engine, unit in engines:
        puts: list[int] = []
        wakes: dict[int, list[float]] = {}
        finals: set[int] = set()
        released: list[float] = []
        set_at: list[float] = []
        clock = engine.clock if name == "virtual" else time.monotonic

        def worker(
            fid: int,
            ops: list[tuple[str, int]],
            queue: rocket.Queue[int | None],
            event: rocket.Event,
            puts: list[int] = puts,
            wakes: dict[int, list[float]] = wakes,
            finals: set[int] = finals,
            released: list[float] = released,
            clock: Any = clock,
            unit: float = unit,
        ) -> Body:
            started = clock()
            try:
                for kind, arg in ops:
                    if kind == "sleep":
                        yield rocket.sleep(arg * unit)
                        wakes.setdefault(fid, []).append(clock() - started)
                    elif kind == "wait":
                        yield event.wait()
                        released.append(clock())
                    elif kind == "put":
                        yield queue.put(arg)
                        puts.append(arg)
                    else:
                        yield rocket.yield_now()
                return fid
            finally:
                finals.add(fid)

        def consumer(queue: rocket.Queue[int | None]) -> Body:
            got = []
            while (item := (yield queue.get())) is not None:
                got.append(item)
            return got

        def main(
            queue: rocket.Queue[int | None],
            unit: float = unit,
            set_at: list[float] = set_at,
            clock: Any = clock,
        ) -> Body:
            event = rocket.Event()
            eater = yield rocket.spawn(consumer(queue))
            handles = []
            for fid, ops in enumerate(programs):
                handles.append((yield rocket.spawn(worker(fid, ops, queue, event))))
            yield rocket.sleep(cancel_at * unit)
            for fid in cancel:
                if fid < len(handles):
                    handles[fid].cancel()
            set_at.append(clock())
            event.set()
            outcomes = []
            for handle in handles:
                try:
                    outcomes.append((yield rocket.join(handle)))
                except rocket.Cancelled:
                    outcomes.append("cancelled")
            yield queue.put(None)
            return outcomes, (yield rocket.join(eater))

        outcomes, got = rocket.run(main(rocket.Queue()), engine=engine)
        assert got == puts, name  # every item once, in FIFO order
        assert finals == set(range(len(programs))), name  # every finally ran
        for fid, outcome in enumerate(outcomes):
            if outcome == "cancelled":
                assert fid in cancel, name
            else:
                assert outcome == fid, name
        assert all(when >= set_at[0] for when in released), name
        if name == "virtual":  # exact: each wake at the running sum of its sleeps
            for fid, times in wakes.items():
                if any(kind == "wait" for kind, _ in programs[fid]):
                    continue  # its sleeps start after main sets the event
                sleeps = [arg for kind, arg in programs[fid] if kind == "sleep"][: len(times)]
                expected = list(itertools.accumulate(sleeps))
                assert times == [float(t) for t in expected], (fid, times, expected)
