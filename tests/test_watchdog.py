"""The watchdog: a warning when one fiber step blocks the loop, and snapshots that show it."""

from __future__ import annotations

import inspect
import signal
import time
from collections.abc import Generator
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "rocket" and r.levelname == "WARNING"
    ]


def test_blocking_step_is_reported_once_with_fiber_file_and_line(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """time.sleep(0.3) in a fiber logs one warning naming the fiber, file:line and duration."""
    line = 0

    def sleepy() -> Body:
        nonlocal line
        yield rocket.sleep(0)
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        time.sleep(0.3)
        yield rocket.sleep(0)

    def main() -> Body:
        yield rocket.join((yield rocket.spawn(sleepy(), name="sleepy")))

    with caplog.at_level("WARNING", logger="rocket"):
        rocket.run(main(), engine=engine)
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "'sleepy'" in warnings[0]
    assert f"test_watchdog.py:{line}" in warnings[0]
    assert "to_thread" in warnings[0]
    seconds = float(warnings[0].split(" for ")[1].split(" s")[0])
    assert 0.1 <= seconds <= 0.3


def test_two_stalls_give_two_warnings(engine: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each stall is reported once: two blocking steps, two warnings."""

    def main() -> Body:
        time.sleep(0.25)
        yield rocket.sleep(0)
        time.sleep(0.25)

    with caplog.at_level("WARNING", logger="rocket"):
        rocket.run(main(), engine=engine)
    assert len(_warnings(caplog)) == 2


def test_busy_but_yielding_loop_stays_silent(engine: str, caplog: pytest.LogCaptureFixture) -> None:
    """A loop that keeps yielding for 0.4 s, and one that sleeps in the engine, log nothing."""

    def spinner() -> Body:
        until = time.monotonic() + 0.4
        while time.monotonic() < until:
            yield rocket.yield_now()

    def main() -> Body:
        yield rocket.spawn(spinner())
        yield rocket.spawn(spinner())
        yield rocket.sleep(0.3)  # idle in the engine: no step is running

    with caplog.at_level("WARNING", logger="rocket"):
        rocket.run(main(), engine=engine)
    assert _warnings(caplog) == []


def test_slow_step_none_turns_it_off_and_a_threshold_can_be_set(
    engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """slow_step=None: no warning; slow_step=0.5: a 0.3 s step is not slow enough."""

    def main() -> Body:
        time.sleep(0.3)
        yield rocket.sleep(0)

    with caplog.at_level("WARNING", logger="rocket"):
        rocket.run(main(), engine=engine, slow_step=None)
        rocket.run(main(), engine=engine, slow_step=0.5)
    assert _warnings(caplog) == []


def test_slow_step_bad_values() -> None:
    """slow_step must be a positive number of seconds or None."""
    for bad, error in ((0, ValueError), (-1, ValueError), ("1", TypeError)):
        with pytest.raises(error, match="slow_step"):
            rocket.run(rocket.sleep(0).__await__(), slow_step=bad)  # type: ignore[arg-type]


def test_dump_signal_shows_a_stuck_fiber_as_running_with_its_line(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dump signal, arriving while a fiber blocks, shows it as running at its current line."""
    line = 0

    def stuck() -> Body:
        nonlocal line
        yield rocket.sleep(0)
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        signal.raise_signal(signal.SIGUSR1)
        yield rocket.sleep(0)

    def main() -> Body:
        yield rocket.join((yield rocket.spawn(stuck(), name="stuck")))

    rocket.run(main(), engine=engine, dump_signal=signal.SIGUSR1)
    table = capsys.readouterr().err
    row = next(r for r in table.splitlines() if " stuck " in r)
    assert " running " in row
    assert f"test_watchdog.py:{line}" in row
    main_row = next(r for r in table.splitlines() if " main " in r)
    assert " parked " in main_row


def test_snapshot_gives_each_fiber_its_current_line(engine: str) -> None:
    """FiberInfo.line is where each fiber runs or waits, as file:line."""

    def waiter(event: rocket.Event) -> Body:
        yield event.wait()

    def main() -> Body:
        event = rocket.Event()
        yield rocket.spawn(waiter(event), name="waiter")
        yield rocket.sleep(0)
        infos = yield rocket.snapshot()
        event.set()
        return infos, inspect.currentframe().f_lineno - 2  # type: ignore[union-attr]

    infos, line = rocket.run(main(), engine=engine)
    by_name = {info.name: info for info in infos}
    assert by_name["main"].state == "running"
    assert by_name["main"].line is not None
    assert by_name["main"].line.endswith(f":{line}")
    assert by_name["waiter"].line is not None
    assert "test_watchdog.py:" in by_name["waiter"].line
