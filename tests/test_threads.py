"""to_thread and getaddrinfo: worker threads that wake the loop, on every engine."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest

import rocket
from rocket.engines._workers import DEFAULT_SIZE

Body = Generator[Any, Any, Any]


def test_to_thread_returns_value_and_raises_exception_unchanged(engine: str) -> None:
    """The fiber gets the function's return value, or the very exception it raised."""
    error = KeyError("from the thread")

    def fails() -> None:
        raise error

    def main() -> Body:
        total = yield rocket.to_thread(lambda a, b, c=0: a + b + c, 1, 2, c=3)
        try:
            yield rocket.to_thread(fails)
        except KeyError as exc:
            return total, exc is error, threading.current_thread() is threading.main_thread()
        return total, False, False

    assert rocket.run(main(), engine=engine) == (6, True, True)


def test_to_thread_runs_in_another_thread_and_wakes_an_idle_loop(engine: str) -> None:
    """With nothing else to do, the loop sleeps until the job's completion wakes it."""

    def which() -> str:
        time.sleep(0.05)
        return threading.current_thread().name

    def main() -> Body:
        start = time.monotonic()
        name = yield rocket.to_thread(which)
        return name, time.monotonic() - start

    name, elapsed = rocket.run(main(), engine=engine)
    assert name != threading.main_thread().name
    assert 0.04 <= elapsed < 2


def test_other_fibers_run_while_a_thread_blocks(engine: str) -> None:
    """A fiber keeps ticking while another waits 0.1 s for a blocking call."""
    ticks: list[int] = []

    def ticker(stop: list[bool]) -> Body:
        while not stop:
            ticks.append(1)
            yield rocket.sleep(0.005)

    def main() -> Body:
        stop: list[bool] = []
        handle = yield rocket.spawn(ticker(stop))
        yield rocket.to_thread(time.sleep, 0.1)
        stop.append(True)
        yield rocket.join(handle)

    rocket.run(main(), engine=engine)
    assert len(ticks) >= 5


def test_more_jobs_than_workers_all_complete_in_order(engine: str) -> None:
    """40 concurrent jobs (more than the pool's threads) all finish; gather keeps order."""

    def square(n: int) -> int:
        time.sleep(0.002)
        return n * n

    def main() -> Body:
        return (yield rocket.gather(*(rocket.to_thread(square, n) for n in range(40))))

    assert rocket.run(main(), engine=engine) == [n * n for n in range(40)]


def test_cancelled_running_job_is_waited_for_and_delivered(engine: str) -> None:
    """A running function cannot be stopped: the fiber gets its result, then Cancelled."""
    log: list[Any] = []

    def slow() -> str:
        time.sleep(0.05)
        return "finished"

    def worker() -> Body:
        log.append((yield rocket.to_thread(slow)))
        yield rocket.yield_now()  # Cancelled is raised here

    def main() -> Body:
        handle = yield rocket.spawn(worker())
        yield rocket.sleep(0.01)  # the job is running now
        start = time.monotonic()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return time.monotonic() - start

    waited = rocket.run(main(), engine=engine)
    assert log == ["finished"]
    assert waited >= 0.02


def test_cancelled_queued_job_never_runs(engine: str) -> None:
    """With every worker busy, a cancelled job is dropped: it never runs."""
    release = threading.Event()
    ran: list[str] = []

    def main() -> Body:
        busy = []
        for _ in range(DEFAULT_SIZE):  # occupy every worker thread
            busy.append((yield rocket.spawn(_run(rocket.to_thread(release.wait, 5)))))
        yield rocket.sleep(0.02)
        queued = yield rocket.spawn(_run(rocket.to_thread(ran.append, "queued job")))
        yield rocket.sleep(0.01)
        queued.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(queued)
        release.set()
        yield rocket.gather(*busy)

    try:
        rocket.run(main(), engine=engine)
    finally:
        release.set()
    assert ran == []


def _late() -> str:
    time.sleep(0.05)
    return "late"


def _run(request: Any) -> Body:
    return (yield request)


def test_timeout_drops_a_queued_job_but_not_a_running_one(engine: str) -> None:
    """timeout() fails a job still queued with TimeoutError; a running one completes."""
    release = threading.Event()

    def main() -> Body:
        busy = []
        for _ in range(DEFAULT_SIZE):
            busy.append((yield rocket.spawn(_run(rocket.to_thread(release.wait, 5)))))
        yield rocket.sleep(0.02)
        with pytest.raises(TimeoutError, match=r"did not complete within 0\.02 s"):
            yield rocket.timeout(0.02, rocket.to_thread(time.sleep, 0))
        release.set()
        yield rocket.gather(*busy)
        return (yield rocket.timeout(0.01, rocket.to_thread(_late)))

    try:
        assert rocket.run(main(), engine=engine) == "late"
    finally:
        release.set()


def test_worker_threads_end_with_run(engine: str) -> None:
    """After run returns, no worker thread is left behind."""
    before = threading.active_count()

    def main() -> Body:
        yield rocket.gather(*(rocket.to_thread(time.sleep, 0.01) for _ in range(4)))

    rocket.run(main(), engine=engine)
    assert threading.active_count() == before


def test_getaddrinfo_resolves_without_blocking(engine: str) -> None:
    """getaddrinfo gives socket.getaddrinfo's answer; a bad service raises socket.gaierror."""

    def main() -> Body:
        infos = yield rocket.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_STREAM)
        with pytest.raises(socket.gaierror):
            yield rocket.getaddrinfo("127.0.0.1", "no-such-service-name")
        return infos

    infos = rocket.run(main(), engine=engine)
    assert infos == socket.getaddrinfo("127.0.0.1", 8080, type=socket.SOCK_STREAM)
    assert infos[0][4] == ("127.0.0.1", 8080)


def test_bad_arguments() -> None:
    """Non-callables and wrongly typed host/port raise TypeError when the request is built."""
    with pytest.raises(TypeError, match="'func' must be callable, not int"):
        rocket.to_thread(5)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="'host' must be str, bytes or None, not int"):
        rocket.getaddrinfo(127, 80)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'port' must be int, str or None, not float"):
        rocket.getaddrinfo("localhost", 80.0)  # type: ignore[arg-type]
    assert rocket.getaddrinfo("localhost", 80).describe() == "getaddrinfo('localhost', 80)"
    assert rocket.to_thread(time.sleep, 1).describe() == "to_thread(sleep)"
