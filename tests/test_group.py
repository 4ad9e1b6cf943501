"""gather, race and TaskGroup: results, the failure rule, cancellation, structure."""

from __future__ import annotations

import gc
import os
import socket
import sys
import tracemalloc
import weakref
from collections.abc import Generator
from typing import Any

import pytest

import rocket

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

Body = Generator[Any, Any, Any]


def _after(seconds: float, value: Any) -> Body:
    yield rocket.sleep(seconds)
    return value


def _fail_after(seconds: float, message: str) -> Body:
    yield rocket.sleep(seconds)
    raise ValueError(message)


def _cleans_up(log: list[str], name: str) -> Body:
    try:
        yield rocket.sleep(30)
    finally:
        yield rocket.sleep(0.001)  # cleanup that does I/O
        log.append(name)


# ----------------------------------------------------------------- gather


def test_gather_returns_results_in_order_not_finish_order(engine: str) -> None:
    """gather's list follows the argument order whatever order the fibers finish in."""

    def main() -> Body:
        return (yield rocket.gather(_after(0.02, "slow"), _after(0.001, "fast"), _after(0, 0)))

    assert rocket.run(main(), engine=engine) == ["slow", "fast", 0]


def test_gather_mixes_generators_coroutines_handles_and_requests(engine: str) -> None:
    """Items may be generators, coroutines, fiber handles and single requests."""

    async def coro() -> str:
        await rocket.sleep(0.001)
        return "coroutine"

    def main() -> Body:
        handle = yield rocket.spawn(_after(0.001, "handle"))
        r, w = os.pipe()
        os.write(w, b"pipe")
        try:
            return (yield rocket.gather(_after(0, "generator"), coro(), handle, rocket.read(r, 4)))
        finally:
            os.close(r)
            os.close(w)

    assert rocket.run(main(), engine=engine) == ["generator", "coroutine", "handle", b"pipe"]


def test_gather_failure_cancels_the_rest_and_waits_for_them(engine: str) -> None:
    """When one fails, the others are cancelled, their finally blocks finish, then it raises."""
    log: list[str] = []

    def main() -> Body:
        try:
            yield rocket.gather(
                _cleans_up(log, "a"), _fail_after(0.005, "boom"), _cleans_up(log, "b")
            )
        except ValueError as exc:
            return str(exc), sorted(log)
        return "no error"

    assert rocket.run(main(), engine=engine) == ("boom", ["a", "b"])


def test_cancelled_gather_cancels_children_before_raising(engine: str) -> None:
    """Cancelling the fiber in gather cancels every child; Cancelled comes after they finish."""
    log: list[str] = []

    def parent() -> Body:
        try:
            yield rocket.gather(_cleans_up(log, "a"), _cleans_up(log, "b"))
        except rocket.Cancelled:
            log.append("parent saw Cancelled")
            raise

    def main() -> Body:
        handle = yield rocket.spawn(parent())
        yield rocket.sleep(0.005)
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return log

    assert rocket.run(main(), engine=engine) == ["a", "b", "parent saw Cancelled"]


def test_gather_of_nothing_and_of_finished_handles(engine: str) -> None:
    """gather() is []; finished handles give their results (or error) at once."""

    def main() -> Body:
        done = yield rocket.spawn(_after(0, "done"))
        bad = yield rocket.spawn(_fail_after(0, "early"))
        yield rocket.sleep(0.001)
        empty = yield rocket.gather()
        results = yield rocket.gather(done, done)
        with pytest.raises(ValueError, match="early"):
            yield rocket.gather(bad)
        return empty, results

    assert rocket.run(main(), engine=engine) == ([], ["done", "done"])


def test_gather_rejects_bad_items() -> None:
    """Anything but a generator, coroutine, handle or request is a TypeError at once."""
    with pytest.raises(TypeError, match="expects a generator or coroutine object"):
        rocket.gather(5)
    with pytest.raises(TypeError, match=r"the function '_after' itself"):
        rocket.gather(_after)


# ------------------------------------------------------------------- race


def test_race_first_to_finish_wins_and_losers_are_cancelled(engine: str) -> None:
    """race returns (index, result) of the first finisher after the losers' cleanup ran."""
    log: list[str] = []

    def main() -> Body:
        result = yield rocket.race(_cleans_up(log, "loser"), _after(0.002, "winner"))
        return result, log

    assert rocket.run(main(), engine=engine) == ((1, "winner"), ["loser"])


def test_race_of_requests_read_versus_sleep(engine: str) -> None:
    """A read with no data loses to a sleep; once data is there the read wins."""
    r, w = os.pipe()

    def main() -> Body:
        first = yield rocket.race(rocket.read(r, 10), rocket.sleep(0.005))
        os.write(w, b"data")
        second = yield rocket.race(rocket.read(r, 10), rocket.sleep(5))
        return first, second

    try:
        assert rocket.run(main(), engine=engine) == ((1, None), (0, b"data"))
    finally:
        os.close(r)
        os.close(w)


def test_race_raises_when_first_finisher_fails(engine: str) -> None:
    """If the first to finish raised, race raises it."""

    def main() -> Body:
        with pytest.raises(ValueError, match="first"):
            yield rocket.race(_fail_after(0.001, "first"), _after(1, "late"))
        return "ok"

    assert rocket.run(main(), engine=engine) == "ok"


def test_race_losing_accept_leaks_no_socket(engine: str) -> None:
    """Two accepts that both complete: the loser's socket is closed, not leaked."""
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    clients = [socket.create_connection(sock.getsockname()) for sock in listeners]

    def main() -> Body:
        index, (sock, _) = yield rocket.race(*(rocket.accept(sock) for sock in listeners))
        sock.close()
        return index

    try:
        gc.collect()
        before = len(os.listdir("/proc/self/fd"))
        assert rocket.run(main(), engine=engine) in (0, 1)
        gc.collect()
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        for s in listeners + clients:
            s.close()


def test_race_needs_an_item() -> None:
    """race() with nothing to race is a ValueError."""
    with pytest.raises(ValueError, match="at least one"):
        rocket.race()


# -------------------------------------------------------------- TaskGroup


def test_taskgroup_waits_for_all_children(engine: str) -> None:
    """Leaving async with means every child has finished; handles give the results."""

    async def main() -> list[Any]:
        async with rocket.TaskGroup() as tg:
            handles = [tg.spawn(_after(0.001 * i, i)) for i in range(4)]
        assert all(h.done() for h in handles)
        return [h.result() for h in handles]

    assert rocket.run(main(), engine=engine) == [0, 1, 2, 3]


def test_taskgroup_child_failure_cancels_body_and_siblings(engine: str) -> None:
    """A failing child cancels its siblings and the body; its error leaves async with."""
    log: list[str] = []

    async def main() -> tuple[str, list[str]]:
        try:
            async with rocket.TaskGroup() as tg:
                tg.spawn(_cleans_up(log, "sibling"))
                tg.spawn(_fail_after(0.002, "child failed"))
                try:
                    await rocket.sleep(30)
                finally:
                    log.append("body")
        except ValueError as exc:
            return str(exc), sorted(log)
        return "no error", log

    assert rocket.run(main(), engine=engine) == ("child failed", ["body", "sibling"])


def test_taskgroup_body_error_cancels_children(engine: str) -> None:
    """An error in the body cancels the children and propagates after they finish."""
    log: list[str] = []

    async def body() -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(_cleans_up(log, "child"))
            await rocket.sleep(0.001)
            raise KeyError("body")

    async def main() -> list[str]:
        with pytest.raises(KeyError, match="body"):
            await body()
        return log

    assert rocket.run(main(), engine=engine) == ["child"]


def test_taskgroup_cancelled_while_waiting_cancels_children(engine: str) -> None:
    """Cancelling the parent while it waits at the end of async with cancels the children."""
    log: list[str] = []

    async def parent() -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(_cleans_up(log, "child"))

    def main() -> Body:
        handle = yield rocket.spawn(parent())
        yield rocket.sleep(0.005)
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return log

    assert rocket.run(main(), engine=engine) == ["child"]


def test_taskgroup_in_fail_after(engine: str) -> None:
    """An outer fail_after cancels the body and the children, then raises TimeoutError."""
    log: list[str] = []

    async def body() -> None:
        with rocket.fail_after(0.01):
            async with rocket.TaskGroup() as tg:
                tg.spawn(_cleans_up(log, "child"))
                await rocket.sleep(30)

    async def main() -> list[str]:
        with pytest.raises(TimeoutError):
            await body()
        return log

    assert rocket.run(main(), engine=engine) == ["child"]


def test_taskgroup_misuse(engine: str) -> None:
    """Plain 'with' is a TypeError; spawning into a finished group is a RuntimeError."""

    async def main() -> None:
        with pytest.raises(TypeError, match="async with"), rocket.TaskGroup():
            pass
        async with rocket.TaskGroup() as tg:
            pass
        with pytest.raises(RuntimeError, match="open group"):
            tg.spawn(_after(0, 0))

    rocket.run(main(), engine=engine)


def test_later_child_failures_are_raised_not_lost(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second failure while the siblings are cancelled joins the first in an ExceptionGroup."""

    def stubborn() -> Body:
        try:
            yield rocket.sleep(30)
        finally:
            raise RuntimeError("second failure")

    def main() -> Body:
        with pytest.raises(ExceptionGroup) as caught:
            yield rocket.gather(stubborn(), _fail_after(0.001, "first failure"))
        assert [str(e) for e in caught.value.exceptions] == ["first failure", "second failure"]

    rocket.run(main(), engine=engine)
    gc.collect()
    assert "never joined" not in capsys.readouterr().err


# ------------------------------------------------- a long-lived TaskGroup


async def _returns_bytes(done: rocket.Event | None = None) -> bytes:
    if done is not None:
        done.set()
    return bytes(1000)


def test_taskgroup_drops_a_finished_child_at_once(engine: str) -> None:
    """A child that returned is freed before the group ends: its handle is not kept."""

    freed: list[bool] = []

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            done = rocket.Event()
            child = weakref.ref(tg.spawn(_returns_bytes(done)))
            await done.wait()
            await rocket.yield_now()
            gc.collect()
            freed.append(child() is None)

    rocket.run(main(), engine=engine)
    assert freed == [True]


def test_taskgroup_memory_stays_flat_over_5000_children(engine: str) -> None:
    """An accept-loop-like group spawning 5,000 short children keeps no memory per child."""
    grown: list[int] = []

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            for i in range(5000):
                tg.spawn(_returns_bytes())
                await rocket.yield_now()  # the child runs and returns
                if i == 999:
                    gc.collect()
                    start = tracemalloc.get_traced_memory()[0]
            gc.collect()
            grown.append(tracemalloc.get_traced_memory()[0] - start)

    tracemalloc.start()
    try:
        rocket.run(main(), engine=engine)
    finally:
        tracemalloc.stop()
    assert grown[0] < 400_000, f"{grown[0]} bytes kept for 4,000 finished children"


def test_taskgroup_still_raises_a_failure_after_children_were_dropped(engine: str) -> None:
    """Dropping finished children keeps the failure the group must raise."""

    async def fails() -> None:
        await rocket.yield_now()
        raise ValueError("child failed")

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            for _ in range(10):
                tg.spawn(_returns_bytes())
            tg.spawn(fails())
            await rocket.sleep(30)

    with pytest.raises(ValueError, match="child failed"):
        rocket.run(main(), engine=engine)
