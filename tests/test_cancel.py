"""Cancellation: where Cancelled lands, what happens to I/O in flight, buffer safety."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest

import rocket
from rocket import ops
from rocket.engines import Completion
from rocket.executor import Executor
from rocket.request import IORequest

Body = Generator[Any, Any, Any]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_cancel_parked_fiber_runs_finally_which_may_do_io(engine: str) -> None:
    """A fiber parked in join gets Cancelled at once; its finally block can still sleep."""
    log: list[str] = []

    def child(other: rocket.Fiber[Any]) -> Body:
        try:
            yield rocket.join(other)
        finally:
            yield rocket.sleep(0.001)  # I/O in a finally block after cancellation works
            log.append("finally done")

    def forever() -> Body:
        yield rocket.sleep(60)

    def main() -> Body:
        other = yield rocket.spawn(forever())
        handle = yield rocket.spawn(child(other))
        yield rocket.yield_now()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        assert handle.cancelled()
        other.cancel()
        return log

    assert rocket.run(main(), engine=engine) == ["finally done"]


def test_cancel_blocked_read_resumes_after_kernel_is_done(engine: str) -> None:
    """A read blocked on an empty pipe is cancelled; join raises Cancelled; the pipe is intact."""
    r, w = os.pipe()

    def reader() -> Body:
        data = yield rocket.read(r, 10)
        return data

    def main() -> Body:
        handle = yield rocket.spawn(reader())
        yield rocket.sleep(0.01)  # the read is in flight now
        assert handle.state == "blocked"
        handle.cancel()
        try:
            yield rocket.join(handle)
        except rocket.Cancelled:
            return "cancelled"
        return "read finished"

    try:
        assert rocket.run(main(), engine=engine) == "cancelled"
        os.write(w, b"after")
        assert os.read(r, 10) == b"after"  # nobody else reads the pipe any more
    finally:
        os.close(r)
        os.close(w)


def test_cancel_finished_fiber_does_nothing(engine: str) -> None:
    """Cancelling a fiber that already returned leaves its result alone."""

    def child() -> Body:
        yield rocket.yield_now()
        return 5

    def main() -> Body:
        handle = yield rocket.spawn(child())
        value = yield rocket.join(handle)
        handle.cancel()
        handle.cancel()
        return value, handle.result(), handle.cancelled()

    assert rocket.run(main(), engine=engine) == (5, 5, False)


def test_fiber_may_catch_cancelled_and_go_on(engine: str) -> None:
    """A fiber that catches Cancelled keeps running, does I/O, and returns normally."""

    def stubborn() -> Body:
        try:
            yield rocket.sleep(60)
        except rocket.Cancelled:
            pass
        yield rocket.sleep(0.001)
        return "still here"

    def main() -> Body:
        handle = yield rocket.spawn(stubborn())
        yield rocket.yield_now()
        handle.cancel()
        return (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) == "still here"


def test_cancel_is_delivered_once_however_often_it_is_asked(engine: str) -> None:
    """Three cancels before the fiber runs throw one Cancelled; a later cancel throws another."""
    caught: list[int] = []

    def child() -> Body:
        for i in range(2):
            try:
                yield rocket.sleep(60)
            except rocket.Cancelled:
                caught.append(i)
        return "done"

    def main() -> Body:
        handle = yield rocket.spawn(child())
        yield rocket.yield_now()
        for _ in range(3):
            handle.cancel()
        yield rocket.sleep(0.01)
        assert caught == [0]
        assert handle.state == "blocked"  # in its second sleep, not cancelled again
        handle.cancel()
        return (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) == "done"
    assert caught == [0, 1]


def test_fiber_cancelling_itself_gets_cancelled_at_its_next_request(engine: str) -> None:
    """cancel() on the running fiber lets it go on until it next yields a request."""
    steps: list[str] = []

    def main() -> Body:
        me = yield rocket.current()
        me.cancel()
        steps.append("still running")
        try:
            yield rocket.yield_now()
        except rocket.Cancelled:
            steps.append("cancelled at next request")
        return steps

    assert rocket.run(main(), engine=engine) == ["still running", "cancelled at next request"]


def test_cancelled_async_fiber(engine: str) -> None:
    """An async def fiber is cancelled the same way, at its await."""

    async def child() -> str:
        try:
            await rocket.sleep(60)
        except rocket.Cancelled:
            await rocket.sleep(0.001)
            raise
        return "not cancelled"

    def main() -> Body:
        handle = yield rocket.spawn(child())
        yield rocket.yield_now()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return handle.cancelled()

    assert rocket.run(main(), engine=engine) is True


def test_cancelled_accept_leaks_no_fd(engine: str, listener: socket.socket) -> None:
    """Cancelling fibers blocked in accept leaves no fd open, accepted or not."""

    def acceptor() -> Body:
        sock, _ = yield rocket.accept(listener)
        with sock:
            yield rocket.sleep(60)  # Cancelled lands here if the accept won the race

    def main() -> Body:
        handles = []
        for _ in range(20):
            handles.append((yield rocket.spawn(acceptor())))
        yield rocket.sleep(0.01)
        clients = [socket.create_connection(listener.getsockname()) for _ in range(10)]
        for handle in handles:
            handle.cancel()
        for handle in handles:
            try:
                yield rocket.join(handle)
            except rocket.Cancelled:
                pass
        for client in clients:
            client.close()

    before = _open_fds()
    rocket.run(main(), engine=engine)
    gc.collect()
    assert _open_fds() == before


def test_cancelled_reads_never_corrupt_memory_or_lose_data(engine: str) -> None:
    """Reads cancelled in flight, racing writes, gc and reused memory: nothing lost or corrupted."""
    for round_ in range(3):
        _cancel_reads_round(engine, round_)


def _cancel_reads_round(engine: str, round_: int) -> None:
    """One round of the buffer-safety test on 96 pipes (one reader fiber each).

    A quarter of the pipes get data before the cancels (those reads win),
    a quarter get it from a thread while the cancels go in (a real race),
    half get none (cancelled in flight). Memory freed meanwhile is refilled
    with a pattern; finally every pipe gets 64 more bytes, which a buffer
    the kernel still knew would receive.
    """
    fill = b"\xaa" * 64
    pipes = [os.pipe() for _ in range(96)]
    got: dict[int, bytes] = {}
    payloads = {i: bytes([65 + i % 26]) * (1 + (i * 7 + round_) % 60) for i in range(0, 96, 2)}
    garbage: list[bytearray] = []

    def write_late() -> None:
        for i, payload in payloads.items():
            if i % 4 == 2:
                os.write(pipes[i][1], payload)
                time.sleep(0.0001)

    racer = threading.Thread(target=write_late)

    def reader(i: int, fd: int) -> Body:
        if i % 3 == 0:
            data = yield rocket.read(fd, 64)
        elif i % 3 == 1:
            buf = bytearray(64)
            n = yield rocket.readinto(fd, buf)
            data = bytes(buf[:n])
        else:
            target = bytearray(80)
            n = yield rocket.readinto(fd, memoryview(target)[8:72])
            data = bytes(target[8 : 8 + n])
        got[i] = data
        yield rocket.sleep(60)  # Cancelled lands here if the read won the race

    def main() -> Body:
        handles = []
        for i, (r, _) in enumerate(pipes):
            handles.append((yield rocket.spawn(reader(i, r))))
        yield rocket.sleep(0.01)  # every read is in flight
        for i, payload in payloads.items():
            if i % 4 == 0:
                os.write(pipes[i][1], payload)  # these reads complete before the cancel
        racer.start()  # writes the others while the cancels go in
        for handle in handles:
            handle.cancel()
        gc.collect()
        garbage.extend(bytearray(fill) for _ in range(4000))  # reuse any freed memory
        for handle in handles:
            try:
                yield rocket.join(handle)
            except rocket.Cancelled:
                pass
        del handles
        racer.join()  # (blocks the loop briefly; every fiber has finished)
        gc.collect()
        garbage.extend(bytearray(fill) for _ in range(4000))
        for _, w in pipes:
            os.write(w, b"Z" * 64)  # a buffer still known to the kernel would be hit now
        yield rocket.sleep(0.02)

    try:
        rocket.run(main(), engine=engine)
        assert all(g == fill for g in garbage), "freed memory was written to"
        for i, (r, _) in enumerate(pipes):
            rest = os.read(r, 4096)
            assert got.get(i, b"") + rest == payloads.get(i, b"") + b"Z" * 64, i
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


# ---------------------------------------------------------------------------
# The rule when the kernel finishes first, made deterministic with an engine
# whose every cancel loses the race: the request completes with its result.


class _LateCancelEngine:
    """Reads never complete on their own; cancelling one completes it with b"data"."""

    name = "late-cancel"

    def __init__(self) -> None:
        self.pending: dict[int, IORequest[Any]] = {}
        self.done: list[Completion] = []

    def submit(self, token: int, request: IORequest[Any]) -> None:
        if not isinstance(request, ops.Read):
            raise TypeError(f"this engine only reads, not {request.describe()}")
        self.pending[token] = request

    def cancel(self, token: int) -> None:
        del self.pending[token]
        self.done.append((token, b"data", None))  # the kernel finished before the cancel

    def notify_closing(self, fd: int) -> None:
        pass

    def wait(self, timeout: float | None) -> list[Completion]:
        if not self.done and timeout:
            time.sleep(timeout)
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        pass


def test_result_that_beats_the_cancel_is_delivered_then_cancelled_next() -> None:
    """A read that completes anyway is delivered; Cancelled comes at the next request."""
    log: list[Any] = []

    def reader() -> Body:
        log.append((yield rocket.read(0, 10)))
        try:
            yield rocket.yield_now()
        except rocket.Cancelled:
            log.append("cancelled at next request")
            raise

    def main() -> Body:
        handle = yield rocket.spawn(reader())
        yield rocket.yield_now()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return log

    assert Executor(_LateCancelEngine()).run(main()) == [b"data", "cancelled at next request"]


def test_fiber_that_finishes_after_a_late_cancel_returns_normally() -> None:
    """A delivered result and no further request: the fiber returns its value, not Cancelled."""

    def reader() -> Body:
        data = yield rocket.read(0, 10)
        return data

    def main() -> Body:
        handle = yield rocket.spawn(reader())
        yield rocket.yield_now()
        handle.cancel()
        return (yield rocket.join(handle))

    assert Executor(_LateCancelEngine()).run(main()) == b"data"


def test_timeout_scope_that_loses_the_race_raises_nothing_later() -> None:
    """A read completing as move_on_after fires: timed_out False, no stray Cancelled."""

    def main() -> Body:
        with rocket.move_on_after(0.01) as scope:
            data = yield rocket.read(0, 10)
        yield rocket.yield_now()  # the scope's cancel was withdrawn: nothing raised here
        return data, scope.timed_out

    assert Executor(_LateCancelEngine()).run(main()) == (b"data", False)


def test_cancels_that_lose_the_race_leave_nothing_behind() -> None:
    """io_uring: a cancel whose request completed first is forgotten (issue 10 #6)."""
    try:
        from rocket.engines.uring import UringEngine

        engine = UringEngine()
    except (ImportError, rocket.EngineUnavailable):
        pytest.skip("io_uring is not available here")

    def reader(sock: socket.socket) -> Generator[Any, Any, Any]:
        return (yield rocket.recv(sock, 10))

    def main() -> Generator[Any, Any, int]:
        a, b = socket.socketpair()
        with a, b:
            for _ in range(500):
                handle = yield rocket.spawn(reader(a))
                yield rocket.sleep(0)  # it waits in recv
                b.send(b"x")  # the data is there: the recv completes ...
                handle.cancel()  # ... in the same submit as the cancel
                try:
                    yield rocket.join(handle)
                except rocket.Cancelled:
                    pass
        return len(engine._cancelling)

    assert rocket.run(main(), engine=engine) == 0


def test_a_cancel_pending_at_a_to_thread_result_never_compares_it(engine: str) -> None:
    """A to_thread result is handed over untouched when a cancel is pending (no __eq__ call)."""

    class Touchy:
        def __eq__(self, other: object) -> bool:
            raise AssertionError("the executor compared a user's object")

        __hash__ = object.__hash__

    started = threading.Event()

    def slow() -> Touchy:
        started.wait(5)
        time.sleep(0.05)
        return Touchy()

    def worker() -> Generator[Any, Any, Any]:
        result = yield rocket.to_thread(slow)
        return result

    def main() -> Generator[Any, Any, Any]:
        handle = yield rocket.spawn(worker())
        yield rocket.sleep(0.01)
        started.set()
        handle.cancel()  # the job is running: its result comes anyway
        try:
            return type((yield rocket.join(handle))).__name__
        except rocket.Cancelled:
            return "cancelled"

    assert rocket.run(main(), engine=engine) in ("Touchy", "cancelled")
