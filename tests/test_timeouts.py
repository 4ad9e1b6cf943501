"""fail_after / move_on_after blocks (both fiber styles) and the executor's timers."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest

import rocket
from rocket._timers import Timers

Body = Generator[Any, Any, Any]


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """An empty pipe: reading its first fd waits until something is written."""
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_fail_after_cancels_blocked_read_and_raises_timeout(
    engine: str, pipe: tuple[int, int]
) -> None:
    """fail_after(0.05) around a read that never completes raises TimeoutError after ~0.05 s."""

    def main() -> Body:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"fail_after\(0.05\)"), rocket.fail_after(0.05):
            yield rocket.read(pipe[0], 10)
        return time.monotonic() - start

    elapsed = rocket.run(main(), engine=engine)
    assert 0.04 <= elapsed < 2


def test_move_on_after_leaves_block_and_says_so(engine: str, pipe: tuple[int, int]) -> None:
    """move_on_after ends the block quietly; timed_out is True; code after the block runs."""
    reached: list[str] = []

    def main() -> Body:
        with rocket.move_on_after(0.02) as scope:
            yield rocket.read(pipe[0], 10)
            reached.append("after read")  # never: the read was cancelled
        reached.append("after block")
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is True
    assert reached == ["after block"]


def test_block_that_finishes_in_time_is_not_cancelled_later(engine: str) -> None:
    """A block done before its deadline: timed_out False, and the expired timer hits nothing."""

    def main() -> Body:
        with rocket.fail_after(0.03) as scope:
            yield rocket.sleep(0.001)
        yield rocket.sleep(0.08)  # well past the old deadline
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is False


def test_timeout_while_parked_removes_the_waiter(engine: str) -> None:
    """A queue.get cut short by move_on_after leaves the queue; a later item is not lost to it."""

    def main() -> Body:
        queue: rocket.Queue[str] = rocket.Queue()
        with rocket.move_on_after(0.01) as scope:
            yield queue.get()
        queue.put_nowait("kept")
        return scope.timed_out, queue.qsize(), (yield queue.get())

    assert rocket.run(main(), engine=engine) == (True, 1, "kept")


def test_finally_in_timed_out_block_may_do_io(engine: str, pipe: tuple[int, int]) -> None:
    """After the deadline cancels the block, its finally clause can still sleep and write."""
    r, w = pipe

    def main() -> Body:
        with rocket.move_on_after(0.01):
            try:
                yield rocket.read(r, 10)
            finally:
                yield rocket.sleep(0.001)
                yield rocket.write(w, b"cleanup")
        return (yield rocket.read(r, 10))

    assert rocket.run(main(), engine=engine) == b"cleanup"


def test_nested_scopes_the_outer_deadline_wins(engine: str, pipe: tuple[int, int]) -> None:
    """An outer shorter deadline passes through a longer inner scope and is caught by the outer."""

    def main() -> Body:
        with rocket.move_on_after(0.02) as outer, rocket.fail_after(5) as inner:
            yield rocket.read(pipe[0], 10)
        return outer.timed_out, inner.timed_out

    assert rocket.run(main(), engine=engine) == (True, False)


def test_nested_scopes_the_inner_deadline_wins(engine: str, pipe: tuple[int, int]) -> None:
    """A shorter inner scope is caught by itself; the outer block goes on."""

    def main() -> Body:
        with rocket.fail_after(5) as outer:
            with rocket.move_on_after(0.01) as inner:
                yield rocket.read(pipe[0], 10)
            yield rocket.sleep(0.001)
        return outer.timed_out, inner.timed_out

    assert rocket.run(main(), engine=engine) == (False, True)


def test_plain_cancel_is_not_swallowed_by_move_on_after(engine: str) -> None:
    """A fiber.cancel() during a move_on_after block propagates as Cancelled."""

    def child() -> Body:
        with rocket.move_on_after(0.01):
            try:
                yield rocket.sleep(10)
            finally:
                yield rocket.sleep(0.05)  # the scope's deadline passes meanwhile
        return "swallowed"

    def main() -> Body:
        handle = yield rocket.spawn(child())
        yield rocket.yield_now()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)

    rocket.run(main(), engine=engine)


def test_plain_cancel_outranks_a_pending_scope_cancel(engine: str) -> None:
    """A plain cancel after the scope fired, before the fiber ran, is the Cancelled thrown."""

    def child() -> Body:
        with rocket.move_on_after(0.01):
            yield rocket.Event().wait()
        return "swallowed"

    def main() -> Body:
        handle = yield rocket.spawn(child())
        while handle.state != "runnable":  # the scope fired: the child is queued with it
            yield rocket.yield_now()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)

    rocket.run(main(), engine=engine)


def test_async_fibers_use_with_and_async_with(engine: str, pipe: tuple[int, int]) -> None:
    """In an async def fiber both 'with' and 'async with' bound the block."""

    async def main() -> tuple[bool, bool]:
        with rocket.move_on_after(0.01) as first:
            await rocket.read(pipe[0], 10)
        async with rocket.move_on_after(0.01) as second:
            await rocket.read(pipe[0], 10)
        try:
            with rocket.fail_after(0.01):
                await rocket.sleep(5)
        except TimeoutError:
            return first.timed_out, second.timed_out
        return False, False

    assert rocket.run(main(), engine=engine) == (True, True)


def test_zero_and_infinite_limits(engine: str) -> None:
    """fail_after(0) times out at the first wait; fail_after(math.inf) never does."""

    def main() -> Body:
        with rocket.fail_after(math.inf) as forever:
            yield rocket.sleep(0.01)
        try:
            with rocket.fail_after(0):
                yield rocket.sleep(5)
        except TimeoutError:
            return forever.timed_out, forever.deadline
        return "no timeout"

    assert rocket.run(main(), engine=engine) == (False, math.inf)


def test_timed_out_fiber_is_not_hung_by_a_busy_fiber(engine: str) -> None:
    """Deadlines fire while other fibers stay runnable (the loop polls instead of waiting)."""

    def spinner(stop: list[bool]) -> Body:
        while not stop:
            yield rocket.yield_now()

    def main() -> Body:
        stop: list[bool] = []
        yield rocket.spawn(spinner(stop))
        event = rocket.Event()
        with rocket.move_on_after(0.02) as scope:
            yield event.wait()
        stop.append(True)
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is True


def test_only_a_timer_pending_is_not_a_deadlock(engine: str) -> None:
    """A fiber parked on an Event inside fail_after times out instead of raising Deadlock."""

    def main() -> Body:
        with pytest.raises(TimeoutError), rocket.fail_after(0.01):
            yield rocket.Event().wait()
        return "ok"

    assert rocket.run(main(), engine=engine) == "ok"


def test_bad_arguments_and_misuse() -> None:
    """Bad seconds raise at once; a scope outside a fiber or entered twice is a RuntimeError."""
    with pytest.raises(ValueError, match=r"fail_after\(\) argument 'seconds' must be >= 0"):
        rocket.fail_after(-1)
    with pytest.raises(ValueError, match="must be >= 0"):
        rocket.move_on_after(math.nan)
    with pytest.raises(TypeError, match="must be a number of seconds, not str"):
        rocket.fail_after("1")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="inside a rocket fiber"), rocket.fail_after(1):
        pass

    def main() -> Body:
        scope = rocket.move_on_after(1)
        with scope:
            yield rocket.yield_now()
        with pytest.raises(RuntimeError, match="entered only once"), scope:
            pass

    rocket.run(main())


def test_timers_fire_in_order_and_removed_ones_never() -> None:
    """Timers fire by deadline; removed ones are skipped and compacted away."""
    timers = Timers()
    fired: list[int] = []
    entries = [timers.add(float(i), lambda i=i: fired.append(i)) for i in range(200)]  # type: ignore[misc]
    for entry in entries[::2]:
        timers.remove(entry)
    timers.remove(entries[0])  # twice: no effect
    assert timers.live == 100
    assert timers.delay(0.5) == 0.5
    timers.fire(100.0)
    assert fired == list(range(1, 101, 2))
    assert timers.live == 50
    assert timers.delay(1000.0) == 0.0
    for entry in entries[101::2]:
        timers.remove(entry)
    assert timers.live == 0
    assert timers.delay(0) is None
    assert len(timers._heap) < 64  # blanked entries do not pile up


# ------------------------------------------------- timeout(seconds, request)


def test_timeout_on_a_read_raises_timeouterror_and_leaves_the_pipe_intact(
    engine: str, pipe: tuple[int, int]
) -> None:
    """timeout(0.05, read) raises TimeoutError after ~0.05 s; the pipe works afterwards."""
    r, w = pipe

    def main() -> Body:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=rf"read\(fd={r}\) did not complete within 0.05 s"):
            yield rocket.timeout(0.05, rocket.read(r, 10))
        elapsed = time.monotonic() - start
        os.write(w, b"later")
        return elapsed, (yield rocket.timeout(1, rocket.read(r, 10)))

    elapsed, data = rocket.run(main(), engine=engine)
    assert 0.04 <= elapsed < 2
    assert data == b"later"


def test_timeout_completes_like_the_request(engine: str) -> None:
    """Within its limit, a timed request gives the request's own result or error."""

    def main() -> Body:
        slept = yield rocket.timeout(1, rocket.sleep(0.005))
        with pytest.raises(TimeoutError):
            yield rocket.timeout(0.01, rocket.sleep(5))
        with pytest.raises(OSError, match="Bad file descriptor"):
            yield rocket.timeout(1, rocket.read(_closed_fd(), 1))
        return slept

    assert rocket.run(main(), engine=engine) is None


def _closed_fd() -> int:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    return r


def test_timeout_on_accept_leaks_nothing(engine: str) -> None:
    """An accept that times out leaves no fd behind, and the listener still works."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))

    def main() -> Body:
        for _ in range(20):
            with pytest.raises(TimeoutError):
                yield rocket.timeout(0.001, rocket.accept(listener))
        client = socket.create_connection(listener.getsockname())
        sock, _ = yield rocket.timeout(1, rocket.accept(listener))
        sock.close()
        client.close()

    try:
        before = len(os.listdir("/proc/self/fd"))
        rocket.run(main(), engine=engine)
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        listener.close()


def test_cancelled_timed_request_raises_cancelled_not_timeout(
    engine: str, pipe: tuple[int, int]
) -> None:
    """Cancelling a fiber blocked in timeout() gives Cancelled."""

    def waiter() -> Body:
        yield rocket.timeout(10, rocket.read(pipe[0], 1))

    def main() -> Body:
        handle = yield rocket.spawn(waiter())
        yield rocket.sleep(0.01)
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)

    rocket.run(main(), engine=engine)


def test_many_timeouts_in_and_out_of_time(engine: str, pipe: tuple[int, int]) -> None:
    """Hundreds of timed requests, half firing, half finishing first, all come back right."""
    r = pipe[0]

    def fires() -> Body:
        try:
            yield rocket.timeout(0.01, rocket.read(r, 1))
        except TimeoutError:
            return "timed out"
        return "read"

    def in_time() -> Body:
        yield rocket.timeout(5, rocket.sleep(0.001))
        return "slept"

    def main() -> Body:
        return (yield rocket.gather(*(fires() if i % 2 else in_time() for i in range(400))))

    results = rocket.run(main(), engine=engine)
    assert results == ["timed out" if i % 2 else "slept" for i in range(400)]


def test_timeout_bad_arguments() -> None:
    """timeout() takes a finite limit and one I/O request; it points other waits to fail_after."""
    with pytest.raises(TypeError, match="fail_after"):
        rocket.timeout(1, rocket.Queue[int]().get())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fail_after"):
        rocket.timeout(1, rocket.Condition().wait_for(bool))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not str"):
        rocket.timeout(1, "read")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        rocket.timeout(-1, rocket.sleep(1))
    with pytest.raises(ValueError, match="finite"):
        rocket.timeout(math.inf, rocket.sleep(1))
    nested = rocket.timeout(5, rocket.timeout(2, rocket.sleep(1)))
    assert nested.describe() == "timeout(2, sleep(1))"


def test_scope_timers_work_without_any_io_in_flight(engine: str) -> None:
    """In a non-main thread (no signal watcher), a timer alone keeps the loop waiting."""
    import threading

    results: list[Any] = []

    def main() -> Body:
        with rocket.move_on_after(0.02) as scope:
            yield rocket.Event().wait()
        return scope.timed_out

    thread = threading.Thread(target=lambda: results.append(rocket.run(main(), engine=engine)))
    thread.start()
    thread.join(10)
    assert results == [True]
