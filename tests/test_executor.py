"""Scheduling: spawn, join, current, yield_now, errors, deadlock, tracing, bad input."""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Generator
from typing import Any

import pytest

import rocket


def test_run_returns_main_result_and_raises_its_error(engine: str) -> None:
    """run() returns what main returns and raises what it raised."""

    def ok() -> Generator[Any, Any, int]:
        yield rocket.yield_now()
        return 42

    def bad() -> Generator[Any, Any, None]:
        yield rocket.yield_now()
        raise KeyError("boom")

    assert rocket.run(ok(), engine=engine) == 42
    with pytest.raises(KeyError, match="boom"):
        rocket.run(bad(), engine=engine)


def test_run_rejects_functions_and_other_objects() -> None:
    """Passing the function instead of calling it gives a TypeError that says so."""

    def main() -> Generator[Any, Any, None]:
        yield rocket.yield_now()

    with pytest.raises(TypeError, match=r"the function 'main' itself; call it: run\(main\(\)\)"):
        rocket.run(main)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects a generator or coroutine object"):
        rocket.run(5)  # type: ignore[arg-type]


def test_a_spawned_request_runs_as_a_fiber_that_yields_it(engine: str) -> None:
    """spawn(request) runs a fiber of one request: joining it gives the request's result."""
    r, w = os.pipe()

    def main() -> Generator[Any, Any, Any]:
        reader = yield rocket.spawn(rocket.read(r, 5), name="reader")
        yield rocket.write(w, b"hello")
        got = yield rocket.join(reader)
        slept = yield rocket.join((yield rocket.spawn(rocket.sleep(0))))
        return got, slept, reader.name

    try:
        assert rocket.run(main(), engine=engine) == (b"hello", None, "reader")
    finally:
        os.close(r)
        os.close(w)


def test_unknown_engine_name() -> None:
    """An unknown engine name is a ValueError listing the choices."""

    def main() -> Generator[Any, Any, None]:
        yield rocket.yield_now()

    body = main()
    with pytest.raises(ValueError, match="auto, io_uring, selector"):
        rocket.run(body, engine="fast")
    body.close()


def test_yield_now_alternates_fibers(engine: str) -> None:
    """Two fibers that yield_now after each step interleave strictly."""
    seen: list[str] = []

    def worker(tag: str) -> Generator[Any, Any, None]:
        for i in range(3):
            seen.append(f"{tag}{i}")
            yield rocket.yield_now()

    def main() -> Generator[Any, Any, None]:
        a = yield rocket.spawn(worker("a"))
        b = yield rocket.spawn(worker("b"))
        yield rocket.join(a)
        yield rocket.join(b)

    rocket.run(main(), engine=engine)
    assert seen == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_spawn_join_current_and_mixed_styles(engine: str) -> None:
    """A generator spawns and joins a coroutine that spawns and joins a generator."""

    def leaf(n: int) -> Generator[Any, Any, int]:
        me = yield rocket.current()
        assert isinstance(me, rocket.Fiber)
        assert not me.done()
        return n * 10

    async def middle(n: int) -> int:
        handle = await rocket.spawn(leaf(n))
        return await rocket.join(handle) + 1

    def main() -> Generator[Any, Any, tuple[int, bool, int]]:
        handle = yield rocket.spawn(middle(4), name="middle")
        assert handle.name == "middle"
        result = yield rocket.join(handle)
        return result, handle.done(), handle.result()

    assert rocket.run(main(), engine=engine) == (41, True, 41)


def test_join_reraises_child_error_and_fiber_goes_on(engine: str) -> None:
    """join raises the child's exception in the joiner, which may catch it."""

    def child() -> Generator[Any, Any, None]:
        yield rocket.sleep(0.001)
        raise ValueError("child failed")

    def main() -> Generator[Any, Any, str]:
        handle = yield rocket.spawn(child())
        try:
            yield rocket.join(handle)
        except ValueError as exc:
            return str(exc)
        return "not raised"

    assert rocket.run(main(), engine=engine) == "child failed"


def test_yielding_a_non_request_throws_typeerror_into_that_fiber(engine: str) -> None:
    """yield 5, or a function instead of its call, throws a TypeError saying what to write."""
    progress: list[int] = []

    def other() -> Generator[Any, Any, None]:
        for i in range(3):
            progress.append(i)
            yield rocket.yield_now()

    def main() -> Generator[Any, Any, list[str]]:
        handle = yield rocket.spawn(other())
        messages = []
        for wrong in (5, rocket.sleep, other):
            try:
                yield wrong
            except TypeError as exc:
                messages.append(str(exc))
        yield rocket.join(handle)
        return messages

    plain, verb, function = rocket.run(main(), engine=engine)
    assert "yielded 5 (int)" in plain
    assert "rocket requests" in plain
    assert "yield sleep(...)" in verb
    assert "the function 'other' itself; call it: yield other(...)" in function
    assert progress == [0, 1, 2]


def test_deadlock_is_reported_not_hung(engine: str) -> None:
    """Two fibers joining each other make run() raise Deadlock naming them."""
    handles: dict[str, rocket.Fiber[Any]] = {}

    def a() -> Generator[Any, Any, None]:
        yield rocket.yield_now()
        yield rocket.join(handles["b"])

    def b() -> Generator[Any, Any, None]:
        yield rocket.yield_now()
        yield rocket.join(handles["a"])

    def main() -> Generator[Any, Any, None]:
        handles["a"] = yield rocket.spawn(a(), name="fiber-a")
        handles["b"] = yield rocket.spawn(b(), name="fiber-b")
        yield rocket.join(handles["a"])

    with pytest.raises(rocket.Deadlock, match="fiber-a") as info:
        rocket.run(main(), engine=engine)
    assert "fiber-b" in str(info.value)
    assert "join(fiber=" in str(info.value)


def test_join_self_is_an_error(engine: str) -> None:
    """A fiber joining itself gets a RuntimeError instead of waiting forever."""

    def main() -> Generator[Any, Any, None]:
        me = yield rocket.current()
        yield rocket.join(me)

    with pytest.raises(RuntimeError, match="cannot join itself"):
        rocket.run(main(), engine=engine)


def test_unjoined_failure_is_reported_once(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A failed fiber nobody joins is reported on stderr once, with its traceback."""

    def doomed() -> Generator[Any, Any, None]:
        yield rocket.yield_now()
        raise RuntimeError("nobody is listening")

    def main() -> Generator[Any, Any, int]:
        yield rocket.spawn(doomed(), name="doomed")
        for _ in range(3):
            yield rocket.yield_now()
        return 7

    assert rocket.run(main(), engine=engine) == 7
    gc.collect()
    err = capsys.readouterr().err
    assert err.count("failed and was never joined") == 1
    assert "(doomed)" in err
    assert "RuntimeError: nobody is listening" in err


def test_main_finishing_cancels_the_rest(engine: str) -> None:
    """When main returns, fibers still waiting are cancelled and their finally runs."""
    cleaned: list[str] = []

    def sleeper() -> Generator[Any, Any, None]:
        try:
            yield rocket.sleep(60)
        finally:
            cleaned.append("sleeper")

    def main() -> Generator[Any, Any, str]:
        yield rocket.spawn(sleeper())
        yield rocket.yield_now()
        return "done"

    assert rocket.run(main(), engine=engine) == "done"
    assert cleaned == ["sleeper"]


def test_run_inside_run_is_refused(engine: str) -> None:
    """Calling rocket.run from a fiber raises RuntimeError; the outer run goes on."""

    def inner() -> Generator[Any, Any, None]:
        yield rocket.yield_now()

    def main() -> Generator[Any, Any, str]:
        try:
            rocket.run(inner(), engine=engine)
        except RuntimeError as exc:
            return str(exc)
        yield rocket.yield_now()
        return "not refused"

    assert "already running" in rocket.run(main(), engine=engine)


def test_trace_prints_runnable_and_blocked(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    """trace=True shows what each fiber asked for and the blocked table."""
    r, w = os.pipe()
    os.write(w, b"x")

    def main() -> Generator[Any, Any, bytes]:
        data: bytes = yield rocket.read(r, 1)
        return data

    try:
        assert rocket.run(main(), engine=engine, trace=True) == b"x"
    finally:
        os.close(r)
        os.close(w)
    err = capsys.readouterr().err
    assert f"ran fiber 1 (main): it asked for read(fd={r}) -> blocked as token 1" in err
    assert "blocked: {1: 1 main}" in err
    assert "completion for token 1 woke fiber 1 (main) with 1 bytes" in err
    assert "it finished and returned 1 bytes" in err


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: rocket.read("3"), TypeError, r"read\(\) argument 'fd' must be an int"),
        (lambda: rocket.read(-1), ValueError, r"'fd' must be an open file descriptor"),
        (lambda: rocket.read(0, -5), ValueError, r"read\(\) argument 'size' must be between"),
        (lambda: rocket.read(0, 2**40), ValueError, r"'size' must be between 0 and"),
        (lambda: rocket.read(0, 1, offset=-1), ValueError, r"'offset' must be >= 0"),
        (lambda: rocket.write(0, "text"), TypeError, r"must be bytes-like, not str"),
        (lambda: rocket.send(0, 5), TypeError, r"send\(\) argument 'data' must be bytes-like"),
        (lambda: rocket.readinto(0, b"ro"), TypeError, r"must be writable"),
        (lambda: rocket.recv_into(0, "x"), TypeError, r"writable buffer"),
        (lambda: rocket.open("a\x00b"), ValueError, r"NUL byte"),
        (lambda: rocket.open(5.0), TypeError, r"must be str, bytes or os.PathLike"),  # type: ignore[arg-type]
        (lambda: rocket.sleep(-1), ValueError, r"sleep\(\) argument 'seconds' must be"),
        (lambda: rocket.sleep("1"), TypeError, r"number of seconds"),  # type: ignore[arg-type]
        (lambda: rocket.shutdown(0, 7), ValueError, r"SHUT_RD"),
        (
            lambda: rocket.connect(socket.socket(), "localhost:80"),
            TypeError,
            r"\(host, port\) tuple",
        ),
        (lambda: rocket.connect(socket.socket(), ("localhost", 80)), ValueError, r"numeric"),
        (lambda: rocket.spawn(print), TypeError, r"generator or coroutine object"),  # type: ignore[call-arg, arg-type]
        (lambda: rocket.join("x"), TypeError, r"Fiber handle"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_when_the_request_is_built(
    make: Any, error: type[Exception], pattern: str
) -> None:
    """Bad input raises at once, naming the argument and what was expected."""
    with pytest.raises(error, match=pattern):
        make()


def test_a_request_no_engine_performs_fails_in_its_fiber(engine: str) -> None:
    """A custom IORequest no engine knows raises TypeError in the fiber, naming the engine."""

    class Mystery(rocket.IORequest[None]):
        __slots__ = ()
        verb = "mystery"

    def main() -> Generator[Any, Any, str]:
        try:
            yield Mystery()
        except TypeError as exc:
            return str(exc)
        return "performed?"

    message = rocket.run(main(), engine=engine)
    assert f"the {engine} engine cannot perform mystery()" in message
