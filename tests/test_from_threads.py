"""Threads and rocket: a loop handle that other threads call in through, and pools out."""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

import rocket
from rocket.testing import VirtualEngine

Body = Generator[Any, Any, Any]


def _in_thread(func: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=func, daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------ from threads into rocket


def test_call_soon_threadsafe_wakes_a_parked_fiber_at_once(engine: str) -> None:
    """A thread's call_soon_threadsafe(event.set) wakes a fiber waiting with no timeout."""
    event = rocket.Event()

    def main() -> Body:
        loop = yield rocket.current_loop()
        started = time.monotonic()
        # No timeout at all: the loop must not call this a deadlock while a thread holds it.
        thread = _in_thread(lambda: loop.call_soon_threadsafe(event.set))
        yield event.wait()
        thread.join()
        return time.monotonic() - started

    assert rocket.run(main(), engine=engine) < 1.0


def test_timer_thread_wakes_fiber_under_move_on_after_at_once(engine: str) -> None:
    """The issue's case: a threading.Timer sets the Event through the loop; the fiber wakes now."""
    event = rocket.Event()

    def main() -> Body:
        loop = yield rocket.current_loop()
        started = time.monotonic()
        timer = threading.Timer(0.05, loop.call_soon_threadsafe, (event.set,))
        timer.start()
        with rocket.move_on_after(3) as scope:
            yield event.wait()
        timer.join()
        return scope.timed_out, time.monotonic() - started

    timed_out, elapsed = rocket.run(main(), engine=engine)
    assert not timed_out
    assert elapsed < 1.0


def test_timer_thread_calling_event_set_directly_gets_runtime_error(engine: str) -> None:
    """Event.set() in a threading.Timer raises a RuntimeError naming call_soon_threadsafe."""
    event = rocket.Event()
    reported = rocket.Event()
    errors: list[BaseException] = []

    def main() -> Body:
        loop = yield rocket.current_loop()

        def in_timer() -> None:
            try:
                event.set()
            except RuntimeError as exc:
                errors.append(exc)
            loop.call_soon_threadsafe(reported.set)

        timer = threading.Timer(0.01, in_timer)
        timer.start()
        with rocket.move_on_after(3):
            yield reported.wait()
        timer.join()
        return event.is_set()

    assert rocket.run(main(), engine=engine) is False
    assert len(errors) == 1
    assert "call_soon_threadsafe" in str(errors[0])


def _primitive_calls() -> Iterator[tuple[str, Callable[[], Any]]]:
    yield "Event.set", rocket.Event().set
    yield "Lock.release", rocket.Lock().release
    yield "Semaphore.release", rocket.Semaphore().release
    yield "Condition.notify", rocket.Condition().notify
    yield "Queue.put_nowait", lambda: rocket.Queue[int]().put_nowait(1)
    yield "Queue.get_nowait", lambda: rocket.Queue[int]().get_nowait()
    yield "Queue.task_done", lambda: rocket.Queue[int]().task_done()
    yield "Queue.shutdown", lambda: rocket.Queue[int]().shutdown()
    yield "RLock.release", rocket.RLock().release
    yield "CapacityLimiter.release", rocket.CapacityLimiter(1).release
    yield "Barrier.reset", rocket.Barrier(2).reset
    yield "Barrier.abort", rocket.Barrier(2).abort


@pytest.mark.parametrize(("what", "call"), list(_primitive_calls()))
def test_sync_primitive_from_foreign_thread_raises(
    engine: str, what: str, call: Callable[[], Any]
) -> None:
    """A sync primitive used from another thread during a run raises, naming the safe call."""

    def attempt() -> str:
        try:
            call()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    def main() -> Body:
        return (yield rocket.to_thread(attempt))

    message = rocket.run(main(), engine=engine)
    assert what in message
    assert "loop.call_soon_threadsafe" in message


def test_ten_thousand_wakeups_from_a_thread_none_lost(engine: str) -> None:
    """10,000 put_nowait calls posted from a thread all arrive, in order."""
    count = 10_000

    def main() -> Body:
        loop = yield rocket.current_loop()
        queue: rocket.Queue[int] = rocket.Queue()
        thread = _in_thread(
            lambda: [loop.call_soon_threadsafe(queue.put_nowait, i) for i in range(count)]
        )
        got = []
        with rocket.fail_after(30):
            for _ in range(count):
                got.append((yield queue.get()))
        thread.join()
        return got

    assert rocket.run(main(), engine=engine) == list(range(count))


def test_ten_thousand_round_trips_each_wake_the_idle_loop(engine: str) -> None:
    """A thread wakes an idle loop 10,000 times, waiting for each answer: none is lost."""
    count = 10_000
    answered = threading.Semaphore(0)

    def main() -> Body:
        loop = yield rocket.current_loop()
        queue: rocket.Queue[int] = rocket.Queue()

        def ping() -> None:
            for i in range(count):
                loop.call_soon_threadsafe(queue.put_nowait, i)
                assert answered.acquire(timeout=5), f"wake-up {i} was lost"

        thread = _in_thread(ping)
        got = 0
        with rocket.fail_after(60):
            for i in range(count):
                got += (yield queue.get()) == i
                answered.release()
        thread.join()
        return got

    assert rocket.run(main(), engine=engine) == count


def test_call_soon_threadsafe_from_the_loop_thread_runs_soon(engine: str) -> None:
    """From the loop's own thread, call_soon_threadsafe runs fn soon, after the caller yields."""
    calls: list[tuple[str, int]] = []

    def main() -> Body:
        loop = yield rocket.current_loop()
        loop.call_soon_threadsafe(calls.append, ("late", threading.get_ident()))
        calls.append(("now", threading.get_ident()))
        for _ in range(3):
            yield rocket.sleep(0)
        return threading.get_ident()

    ident = rocket.run(main(), engine=engine)
    assert calls == [("now", ident), ("late", ident)]


def test_failing_callback_is_logged_and_the_loop_goes_on(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged on the 'rocket' logger; the loop and its fibers go on."""

    def broken() -> None:
        raise KeyError("in the callback")

    def main() -> Body:
        loop = yield rocket.current_loop()
        done = rocket.Event()
        loop.call_soon_threadsafe(broken)
        loop.call_soon_threadsafe(done.set)
        yield done.wait()
        return "went on"

    with caplog.at_level("ERROR", logger="rocket"):
        assert rocket.run(main(), engine=engine) == "went on"
    assert any("in the callback" in (r.exc_text or "") for r in caplog.records)


def test_run_from_thread_returns_the_result_or_raises(engine: str) -> None:
    """run_from_thread runs a generator, a coroutine or a function returning one, in the loop."""

    def body(x: int) -> Body:
        yield rocket.sleep(0)
        return x, threading.get_ident()

    async def coro(x: int) -> int:
        await rocket.sleep(0)
        return x * 2

    def fails() -> Body:
        yield rocket.sleep(0)
        raise KeyError("from the fiber")

    def main() -> Body:
        loop = yield rocket.current_loop()

        def worker() -> Any:
            first = loop.run_from_thread(body(1))
            second = loop.run_from_thread(coro(2))
            third = loop.run_from_thread(body, 3)
            try:
                loop.run_from_thread(fails)
            except KeyError as exc:
                return first, second, third, str(exc), threading.get_ident()
            return None

        return (yield rocket.to_thread(worker)), threading.get_ident()

    (first, second, third, error, worker_ident), loop_ident = rocket.run(main(), engine=engine)
    assert first == (1, loop_ident)
    assert third == (3, loop_ident)
    assert second == 4
    assert error == "'from the fiber'"
    assert worker_ident != loop_ident


def test_spawn_from_thread_returns_a_future_of_the_fiber(engine: str) -> None:
    """spawn_from_thread starts a fiber without waiting; its Future gets the result."""
    go = rocket.Event()

    def child() -> Body:
        yield go.wait()
        return "child done"

    def main() -> Body:
        loop = yield rocket.current_loop()

        def worker() -> Any:
            future = loop.spawn_from_thread(child)  # returns at once: child waits for go
            loop.call_soon_threadsafe(go.set)
            return future.result(timeout=5)

        return (yield rocket.to_thread(worker))

    assert rocket.run(main(), engine=engine) == "child done"


def test_run_from_thread_in_the_loop_thread_raises(engine: str) -> None:
    """run_from_thread in the loop's thread would block the loop: RuntimeError, yield it instead."""

    def body() -> Body:
        yield rocket.sleep(0)

    def main() -> Body:
        loop = yield rocket.current_loop()
        with pytest.raises(RuntimeError, match="yield") as info:
            loop.run_from_thread(body())
        return str(info.value)

    assert "run_from_thread" in rocket.run(main(), engine=engine)


def test_bad_bodies_are_refused_with_type_error(engine: str) -> None:
    """run_from_thread and spawn_from_thread refuse what is no fiber body, in the calling thread."""

    def main() -> Body:
        loop = yield rocket.current_loop()

        def worker() -> list[str]:
            messages = []
            calls: list[Callable[[], Any]] = [
                lambda: loop.run_from_thread(42),
                lambda: loop.spawn_from_thread("x"),
            ]
            for call in calls:
                try:
                    call()
                except TypeError as exc:
                    messages.append(str(exc))
            return messages

        return (yield rocket.to_thread(worker))

    messages = rocket.run(main(), engine=engine)
    assert len(messages) == 2
    assert messages[0].startswith("run_from_thread() expects a generator or coroutine")
    assert messages[1].startswith("spawn_from_thread() expects a generator or coroutine")


def test_a_finished_loop_refuses_with_runtime_error(engine: str) -> None:
    """After rocket.run returns, every call through the loop handle raises RuntimeError."""

    def main() -> Body:
        return (yield rocket.current_loop())

    loop = rocket.run(main(), engine=engine)

    def body() -> Body:
        yield rocket.sleep(0)

    calls: list[Callable[[], Any]] = [
        lambda: loop.call_soon_threadsafe(print),
        lambda: loop.run_from_thread(body()),
        lambda: loop.spawn_from_thread(body()),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="finished"):
            call()


def test_work_posted_as_the_loop_ends_fails_instead_of_hanging(engine: str) -> None:
    """A spawn posted but never started before the loop ends fails its Future; nobody hangs."""
    futures: list[concurrent.futures.Future[Any]] = []
    posted = threading.Event()

    def child() -> Body:
        yield rocket.sleep(0)

    def main() -> Body:
        loop = yield rocket.current_loop()

        def post() -> None:
            futures.append(loop.spawn_from_thread(child))
            posted.set()

        _in_thread(post)
        posted.wait(5)  # blocks the loop on purpose: main returns before the loop reads it
        return None

    rocket.run(main(), engine=engine, slow_step=None)
    error = futures[0].exception(timeout=5)
    assert isinstance(error, RuntimeError)
    assert "finished" in str(error)


def test_current_loop_in_async_fiber_and_same_handle(engine: str) -> None:
    """``await rocket.current_loop()`` works and gives the same handle while it is kept."""

    async def main() -> bool:
        first = await rocket.current_loop()
        second = await rocket.current_loop()
        return first is second

    assert rocket.run(main(), engine=engine) is True


def test_deadlock_is_still_detected_once_no_handle_is_left(engine: str) -> None:
    """A fiber waiting for an Event nobody can set is a Deadlock when no loop handle is alive."""

    def main() -> Body:
        loop = yield rocket.current_loop()
        del loop
        yield rocket.Event().wait()

    with pytest.raises(rocket.Deadlock):
        rocket.run(main(), engine=engine)


def test_call_soon_threadsafe_on_the_virtual_engine() -> None:
    """On the VirtualEngine, a thread's wake-up arrives when nothing virtual is due."""
    engine = VirtualEngine()
    event = rocket.Event()

    def main() -> Body:
        loop = yield rocket.current_loop()
        thread = _in_thread(lambda: loop.call_soon_threadsafe(event.set))
        yield event.wait()
        thread.join()
        return engine.now

    assert rocket.run(main(), engine=engine) == 0.0


# ------------------------------------------------------ from rocket into threads


def test_max_threads_sets_the_to_thread_pool_size(engine: str) -> None:
    """run(max_threads=3): three to_thread jobs run at once, never a fourth thread."""
    barrier = threading.Barrier(3, timeout=5)
    names: set[str] = set()

    def job() -> None:
        names.add(threading.current_thread().name)
        barrier.wait()  # breaks (BrokenBarrierError) unless three run at once

    def one() -> Body:
        yield rocket.to_thread(job)

    def main() -> Body:
        jobs = []
        for _ in range(6):
            jobs.append((yield rocket.spawn(one())))
        for handle in jobs:
            yield rocket.join(handle)

    rocket.run(main(), engine=engine, max_threads=3)
    assert len(names) == 3


def test_max_threads_bad_values() -> None:
    """max_threads must be an int >= 1: other values are refused before the run starts."""
    for bad, error in ((0, ValueError), (-1, ValueError), ("4", TypeError), (True, TypeError)):
        with pytest.raises(error, match="max_threads"):
            rocket.run(rocket.sleep(0).__await__(), max_threads=bad)  # type: ignore[arg-type]


def test_busy_to_thread_never_delays_a_file_read(engine: str) -> None:
    """With 8 to_thread(time.sleep, 1) running, an open + read + close takes well under 1 s."""
    with tempfile.NamedTemporaryFile(delete=False) as file:
        file.write(b"hello")
    path = file.name

    def nap() -> Body:
        yield rocket.to_thread(time.sleep, 1)

    def main() -> Body:
        for _ in range(8):
            yield rocket.spawn(nap())
        yield rocket.sleep(0.05)  # let the jobs reach the workers
        started = time.monotonic()
        fd = yield rocket.open(path)
        data = yield rocket.read(fd, 5)
        yield rocket.close(fd)
        return data, time.monotonic() - started

    try:
        data, elapsed = rocket.run(main(), engine=engine)
    finally:
        os.unlink(path)
    assert data == b"hello"
    assert elapsed < 0.5
