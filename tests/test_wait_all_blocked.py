"""testing.wait_all_blocked: returns when all other fibers wait (trio: wait_all_tasks_blocked).

Ported in meaning from trio's ``src/trio/_core/_tests/test_run.py``
(``test_wait_all_tasks_blocked`` and ``..._with_timeouts``), on every engine
and on the virtual test engine.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
from fiber_helpers import do

import rocket
from rocket.testing import VirtualEngine, wait_all_blocked

Body = Generator[Any, Any, Any]


def _busy_then_wait(record: list[str], event: rocket.Event, name: str) -> Body:
    """Run 10 steps, then park on ``event``."""
    for _ in range(10):
        yield rocket.yield_now()
    record.append(f"{name} parks")
    yield event.wait()


def test_it_returns_only_after_busy_fibers_have_parked(engine: str) -> None:
    """wait_all_blocked() returns after every other fiber stopped being runnable."""
    # trio test_wait_all_tasks_blocked
    record: list[str] = []
    event = rocket.Event()

    def main() -> Body:
        handles = []
        for name in ("a", "b"):
            handles.append((yield rocket.spawn(_busy_then_wait(record, event, name))))
        yield wait_all_blocked()
        record.append("quiet at last")
        event.set()
        yield rocket.gather(*handles)
        return record

    assert rocket.run(main(), engine=engine) == ["a parks", "b parks", "quiet at last"]


def test_two_fibers_waiting_for_quiet_both_return(engine: str) -> None:
    """Fibers inside wait_all_blocked() count as waiting: two of them do not wait for each other."""
    # trio test_wait_all_tasks_blocked (two waiters)
    record: list[str] = []

    async def quiet(name: str) -> None:
        with rocket.fail_after(5):  # a livelock would fail here instead of hanging
            await wait_all_blocked()
        record.append(name)

    async def main() -> list[str]:
        async with rocket.TaskGroup() as tg:
            tg.spawn(quiet("x"))
            tg.spawn(quiet("y"))
        return sorted(record)

    assert rocket.run(main(), engine=engine) == ["x", "y"]


def test_a_fiber_blocked_on_a_timer_counts_as_waiting(engine: str) -> None:
    """A fiber sleeping (blocked on the engine) does not keep wait_all_blocked() waiting."""
    # trio test_wait_all_tasks_blocked_with_timeouts

    def main() -> Body:
        sleeper = yield rocket.spawn(do(rocket.sleep(3600)))
        with rocket.fail_after(5):
            yield wait_all_blocked()
        state = sleeper.state
        sleeper.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(sleeper)
        return state

    assert rocket.run(main(), engine=engine) == "blocked"


def test_a_fiber_that_never_parks_keeps_it_waiting(engine: str) -> None:
    """While another fiber stays runnable, wait_all_blocked() does not return."""
    record: list[str] = []

    def spinner() -> Body:
        for _ in range(50):
            yield rocket.yield_now()
        record.append("spinner done")

    def main() -> Body:
        yield rocket.spawn(spinner())
        yield wait_all_blocked()
        record.append("quiet")
        return record

    assert rocket.run(main(), engine=engine) == ["spinner done", "quiet"]


def test_it_works_on_the_virtual_engine_without_moving_the_clock() -> None:
    """On VirtualEngine, fibers sleeping in virtual time count as waiting; the clock stays put."""
    engine = VirtualEngine()
    record: list[str] = []
    event = rocket.Event()

    def sleeper() -> Body:
        yield rocket.sleep(5)
        record.append("slept")

    def main() -> Body:
        s = yield rocket.spawn(sleeper())
        w = yield rocket.spawn(_busy_then_wait(record, event, "w"))
        yield wait_all_blocked()
        record.append(f"quiet at {engine.now}")
        event.set()
        yield rocket.gather(s, w)
        return record

    assert rocket.run(main(), engine=engine) == ["w parks", "quiet at 0.0", "slept"]
