"""rocket.testing.VirtualEngine: virtual time and scripted I/O for deterministic tests."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Generator
from typing import Any

import pytest

import rocket
import rocket.testing
from rocket.testing import VirtualEngine

Body = Generator[Any, Any, Any]


def test_module_docstring_example_runs() -> None:
    """The example in rocket.testing's docstring works as written."""
    source = rocket.testing.__doc__ or ""
    code = source.split("::\n\n", 1)[1].split("\n\nResults are given", 1)[0]
    exec(textwrap.dedent(code), {})


def test_an_hour_of_sleeps_takes_no_real_time_and_keeps_order() -> None:
    """Sleeps complete in virtual-time order, instantly; the clock shows the total."""
    engine = VirtualEngine()
    order: list[str] = []

    def sleeper(name: str, seconds: float) -> Body:
        yield rocket.sleep(seconds)
        order.append(f"{name}@{engine.now:g}")

    def main() -> Body:
        handles = []
        for name, seconds in (("c", 3600), ("a", 60), ("b", 600), ("a2", 60)):
            handles.append((yield rocket.spawn(sleeper(name, seconds))))
        for handle in handles:
            yield rocket.join(handle)

    started = time.monotonic()
    rocket.run(main(), engine=engine)
    assert time.monotonic() - started < 1.0
    assert order == ["a@60", "a2@60", "b@600", "c@3600"]
    assert engine.now == 3600


def test_retry_with_backoff_against_a_scripted_flaky_peer() -> None:
    """Scripted errors and a late answer drive a user's retry loop deterministically."""
    engine = VirtualEngine()
    engine.script("recv", 9, ConnectionResetError(104, "reset"), ConnectionResetError(104, "reset"))
    engine.script("recv", 9, b"finally", delay=0.5)
    attempts: list[float] = []

    def fetch_with_retries() -> Body:
        delay = 1.0
        while True:
            attempts.append(engine.now)
            try:
                return (yield rocket.recv(9))
            except ConnectionResetError:
                yield rocket.sleep(delay)
                delay *= 2

    assert rocket.run(fetch_with_retries(), engine=engine) == b"finally"
    assert attempts == [0.0, 1.0, 3.0]
    assert engine.now == 3.5


def test_fail_after_cuts_a_silent_peer_at_the_virtual_deadline() -> None:
    """A request nothing answers is cancelled by fail_after at exactly its deadline."""
    engine = VirtualEngine(start=100.0)

    def main() -> Body:
        try:
            with rocket.fail_after(30):
                yield rocket.recv(4)
        except TimeoutError:
            return engine.now
        return None

    assert rocket.run(main(), engine=engine) == 130.0


def test_waiting_forever_is_reported_not_hung() -> None:
    """With no script, no timer and no deadline, the engine says what the fibers wait for."""

    def main() -> Body:
        yield rocket.recv(5)

    with pytest.raises(RuntimeError, match=r"no script will complete: .*recv\(fd=5\)"):
        rocket.run(main(), engine=VirtualEngine())


def test_cancel_completes_with_cancelled_and_to_thread_runs_inline() -> None:
    """Cancelling a scripted-but-pending request raises Cancelled; to_thread gives its result."""
    engine = VirtualEngine()
    engine.script("recv", 3, b"too late", delay=10)

    def reader() -> Body:
        return (yield rocket.recv(3))

    def main() -> Body:
        handle = yield rocket.spawn(reader())
        yield rocket.sleep(1)
        handle.cancel()
        try:
            yield rocket.join(handle)
        except rocket.Cancelled:
            cancelled_at = engine.now
        total = yield rocket.to_thread(sum, [1, 2, 3])
        return cancelled_at, total

    assert rocket.run(main(), engine=engine) == (1.0, 6)


def test_script_rejects_negative_delay() -> None:
    """A negative delay is a ValueError naming the argument."""
    with pytest.raises(ValueError, match="'delay' must be >= 0"):
        VirtualEngine().script("recv", 1, b"x", delay=-1)


def test_sendall_and_stream_write_are_scripted_as_sendall() -> None:
    """On the virtual engine, sendall and Stream.write are one request with the verb 'sendall'."""
    engine = VirtualEngine()
    engine.script("sendall", 7, None, delay=2.0)

    def main() -> Generator[Any, Any, float]:
        yield rocket.sendall(7, b"all of it")
        return engine.now

    assert rocket.run(main(), engine=engine) == 2.0
