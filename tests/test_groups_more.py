"""Groups: exception groups, ``start``/``task_status``, ``spawn(func, *args)``,
iterating finished children, and a ``contextvars`` context per fiber.

Ported in meaning from asyncio's ``Lib/test/test_asyncio/test_taskgroups.py``
(``test_taskgroup_0x``: several failures become one ExceptionGroup) and
``test_context.py`` / ``test_tasks.py`` (``test_context_1``..3: each task runs
in a copy of the context taken when it was created), trio's
``src/trio/_core/_tests/test_run.py`` (``test_nursery_start*``,
``test_two_child_crashes``, ``test_main_and_task_both_crash``) and curio's
``tests/test_task.py`` (``test_task_group_iter``: ``next_done``).
"""

from __future__ import annotations

import contextvars
import gc
import sys
from collections.abc import Generator
from typing import Any

import pytest

import rocket

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup
from rocket.testing import VirtualEngine

Body = Generator[Any, Any, Any]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.fixture(params=["real", "virtual"])
def every(request: pytest.FixtureRequest, engine: str) -> Any:
    """The ``engine`` fixture's engine, or (param "virtual") a fresh VirtualEngine."""
    return VirtualEngine() if request.param == "virtual" else engine


async def _crash(kind: type[Exception], text: str, delay: float = 0.0) -> None:
    """Raise at once (before any wait) or after ``delay`` seconds."""
    if delay:
        await rocket.sleep(delay)
    raise kind(text)


async def _nap(delay: float = 0) -> None:
    await rocket.sleep(delay)


def _gen_crash(kind: type[Exception], text: str, delay: float) -> Body:
    yield rocket.sleep(delay)
    raise kind(text)


# ------------------------------------------------------------ exception groups


def test_taskgroup_two_failures_raise_one_exception_group(
    every: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two failing children: the group raises an ExceptionGroup of both; nothing on stderr."""
    # asyncio test_taskgroups.py::test_taskgroup_03; trio test_run.py::test_two_child_crashes

    async def main() -> list[str]:
        try:
            async with rocket.TaskGroup() as tg:
                tg.spawn(_crash(KeyError, "first"))
                tg.spawn(_crash(ValueError, "second"))
        except ExceptionGroup as group:
            return sorted(repr(e) for e in group.exceptions)
        return []

    assert rocket.run(main(), engine=every) == ["KeyError('first')", "ValueError('second')"]
    gc.collect()
    assert "never joined" not in capsys.readouterr().err


def test_taskgroup_failures_split_by_kind_as_except_star_does(every: Any) -> None:
    """The group's ExceptionGroup splits by kind (what except* does, on Python 3.11+)."""
    # asyncio test_taskgroups.py::test_taskgroup_21 (except* on a TaskGroup); the
    # except* syntax itself cannot appear here: the tests also run on Python 3.10.

    async def main() -> list[str]:
        try:
            async with rocket.TaskGroup() as tg:
                tg.spawn(_crash(KeyError, "k"))
                tg.spawn(_crash(ValueError, "v"))
                tg.spawn(_crash(ValueError, "w"))
                tg.spawn(_crash(TypeError, "late", 0.01))  # cancelled: no failure
        except ExceptionGroup as group:
            keys, rest = group.split(KeyError)
            values, others = rest.split(ValueError) if rest else (None, None)
            assert keys is not None
            assert values is not None
            assert others is None
            return [f"keys={len(keys.exceptions)}", f"values={len(values.exceptions)}"]
        return []

    # Each child raises before its first wait, so the group's cancel cannot stop it.
    assert rocket.run(main(), engine=every) == ["keys=1", "values=2"]


def test_taskgroup_failures_during_cancel_are_in_the_group(every: Any) -> None:
    """A sibling that fails while being cancelled adds its error to the group."""

    async def stubborn() -> None:
        try:
            await rocket.sleep(30)
        finally:
            raise RuntimeError("in cleanup")

    async def main() -> list[str]:
        try:
            async with rocket.TaskGroup() as tg:
                tg.spawn(stubborn())
                tg.spawn(_crash(ValueError, "first", 0.001))
        except ExceptionGroup as group:
            return [repr(e) for e in group.exceptions]
        return []

    assert rocket.run(main(), engine=every) == ["ValueError('first')", "RuntimeError('in cleanup')"]


def test_taskgroup_single_failure_is_raised_as_itself(every: Any) -> None:
    """One failing child: its own exception leaves the block, not a group."""

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(_crash(KeyError, "only"))
            tg.spawn(_nap, 10)

    with pytest.raises(KeyError, match="only"):
        rocket.run(main(), engine=every)


def test_taskgroup_body_and_child_both_fail(every: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The body's error and a child's both leave the block, in one group, body first."""
    # trio test_run.py::test_main_and_task_both_crash; asyncio test_taskgroup_08

    async def main() -> list[str]:
        try:
            async with rocket.TaskGroup() as tg:
                tg.spawn(_crash(ValueError, "child"))
                await rocket.yield_now()
                raise KeyError("body")
        except ExceptionGroup as group:
            return [repr(e) for e in group.exceptions]
        return []

    assert rocket.run(main(), engine=every) == ["KeyError('body')", "ValueError('child')"]
    gc.collect()
    assert "never joined" not in capsys.readouterr().err


def test_gather_several_failures_raise_an_exception_group(
    every: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """gather raises an ExceptionGroup of every failure, in generator fibers too."""

    def stubborn() -> Body:
        try:
            yield rocket.sleep(30)
        finally:
            raise RuntimeError("second")

    def main() -> Body:
        try:
            yield rocket.gather(stubborn(), _gen_crash(ValueError, "first", 0.001))
        except ExceptionGroup as group:
            return [repr(e) for e in group.exceptions]
        return []

    assert rocket.run(main(), engine=every) == ["ValueError('first')", "RuntimeError('second')"]
    gc.collect()
    assert "never joined" not in capsys.readouterr().err


def test_gather_single_failure_is_raised_as_itself(every: Any) -> None:
    """gather with one failing item raises that item's exception."""

    def main() -> Body:
        yield rocket.gather(_gen_crash(KeyError, "one", 0), rocket.sleep(10))

    with pytest.raises(KeyError, match="one"):
        rocket.run(main(), engine=every)


# ----------------------------------------------------------- spawn(func, *args)


def test_spawn_takes_a_function_and_its_arguments(every: Any) -> None:
    """spawn(func, *args) is spawn(func(*args)), for generator and async functions."""

    def gen_add(a: int, b: int) -> Body:
        yield rocket.sleep(0)
        return a + b

    async def async_add(a: int, b: int) -> int:
        await rocket.sleep(0)
        return a + b

    def main() -> Body:
        first = yield rocket.spawn(gen_add, 1, 2)
        second = yield rocket.spawn(async_add, 3, 4, name="adder")
        third = yield rocket.spawn(gen_add(5, 6))
        assert second.name == "adder"
        results = []
        for handle in (first, second, third):
            results.append((yield rocket.join(handle)))
        return results

    assert rocket.run(main(), engine=every) == [3, 7, 11]


def test_spawn_arguments_without_a_function_are_a_type_error(engine: str) -> None:
    """spawn(body_object, extra) raises TypeError saying to pass a function."""

    def child() -> Body:
        yield rocket.sleep(0)

    def main() -> Body:
        body = child()
        with pytest.raises(TypeError, match=r"spawn\(func, \*args\)"):
            yield rocket.spawn(body, 1)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="expects a generator or coroutine"):
            yield rocket.spawn(len, "abc")  # type: ignore[arg-type]
        body.close()

    rocket.run(main(), engine=engine)


def test_taskgroup_spawn_takes_a_function_and_its_arguments(every: Any) -> None:
    """TaskGroup.spawn(func, *args) starts func(*args) as a child."""

    async def double(x: int) -> int:
        await rocket.sleep(0)
        return 2 * x

    async def main() -> list[int]:
        async with rocket.TaskGroup() as tg:
            handles = [tg.spawn(double, 1), tg.spawn(double(2)), tg.spawn(double, 3, name="d")]
        return [h.result() for h in handles]

    assert rocket.run(main(), engine=every) == [2, 4, 6]


# ------------------------------------------------------------- start() / started()


def test_start_returns_once_the_child_says_it_is_ready(every: Any) -> None:
    """tg.start(func, *args) waits for task_status.started(value) and returns value."""
    # trio test_run.py::test_nursery_start (the basic case)

    async def service(port: int, *, task_status: rocket.TaskStatus) -> None:
        await rocket.sleep(0.01)
        task_status.started(f"listening on {port}")
        await rocket.sleep(0.01)
        log.append("service done")

    log: list[str] = []

    async def main() -> list[str]:
        async with rocket.TaskGroup() as tg:
            value = await tg.start(service, 8080)
            log.append(value)
        log.append("group done")
        return log

    assert rocket.run(main(), engine=every) == ["listening on 8080", "service done", "group done"]


def test_start_raises_the_childs_error_before_started(every: Any) -> None:
    """A child that fails before started(): start() raises its error, the group does not."""
    # trio test_run.py::test_nursery_start (error before started)

    async def broken(*, task_status: rocket.TaskStatus) -> None:
        await rocket.sleep(0)
        raise OSError("cannot bind")

    async def main() -> str:
        async with rocket.TaskGroup() as tg:
            with pytest.raises(OSError, match="cannot bind"):
                await tg.start(broken)
            tg.spawn(_nap())
        return "group ok"

    assert rocket.run(main(), engine=every) == "group ok"


def test_start_child_that_returns_without_started_is_a_runtime_error(every: Any) -> None:
    """start() of a function that returns without calling started() raises RuntimeError."""
    # trio test_run.py::test_nursery_start ("exited without calling task_status.started")

    async def forgetful(*, task_status: rocket.TaskStatus) -> None:
        await rocket.sleep(0)

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            await tg.start(forgetful)

    with pytest.raises(RuntimeError, match=r"without calling task_status.started\(\)"):
        rocket.run(main(), engine=every)


def test_started_twice_is_a_runtime_error(every: Any) -> None:
    """Calling task_status.started() a second time raises RuntimeError in the child."""

    async def twice(*, task_status: rocket.TaskStatus) -> str:
        task_status.started(1)
        with pytest.raises(RuntimeError, match="already called"):
            task_status.started(2)
        return "ok"

    async def main() -> int:
        async with rocket.TaskGroup() as tg:
            value = await tg.start(twice)
        return int(value)

    assert rocket.run(main(), engine=every) == 1


def test_started_child_failure_belongs_to_the_group(every: Any) -> None:
    """After started(), the child is the group's: its later failure cancels the body."""

    async def flaky(*, task_status: rocket.TaskStatus) -> None:
        task_status.started()
        await rocket.sleep(0.01)
        raise ValueError("later")

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            await tg.start(flaky)
            await rocket.sleep(10)

    with pytest.raises(ValueError, match="later"):
        rocket.run(main(), engine=every)


def test_cancelling_the_starter_cancels_the_child_and_waits_for_it(every: Any) -> None:
    """A fiber cancelled inside start() cancels the child and raises only once it finished."""
    # trio test_run.py::test_nursery_start (cancelled before started)

    steps: list[str] = []

    async def slow(*, task_status: rocket.TaskStatus) -> None:
        try:
            await rocket.sleep(10)
        finally:
            steps.append("child cleaned up")

    async def main() -> None:
        with rocket.move_on_after(0.01) as scope:
            async with rocket.TaskGroup() as tg:
                await tg.start(slow)
        steps.append(f"caught={scope.cancelled_caught}")

    rocket.run(main(), engine=every)
    assert steps == ["child cleaned up", "caught=True"]


def test_start_needs_an_open_group(engine: str) -> None:
    """start() on a group that has ended raises RuntimeError saying so."""

    async def ready(*, task_status: rocket.TaskStatus) -> None:
        task_status.started()

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            pass
        with pytest.raises(RuntimeError, match="open group"):
            await tg.start(ready)

    rocket.run(main(), engine=engine)


# ------------------------------------------------------ iterating finished children


def test_iterating_a_group_yields_children_as_they_finish(every: Any) -> None:
    """async for child in tg: each child once, in the order they finished."""
    # curio test_task.py::test_task_group_iter / next_done

    async def after(delay: float, value: str) -> str:
        await rocket.sleep(delay)
        return value

    async def main() -> list[str]:
        order = []
        async with rocket.TaskGroup() as tg:
            tg.spawn(after(0.03, "slow"))
            tg.spawn(after(0.01, "fast"))
            tg.spawn(after(0.02, "middle"))
            async for child in tg:
                order.append(child.result())
        return order

    assert rocket.run(main(), engine=every) == ["fast", "middle", "slow"]


def test_next_done_returns_none_when_no_child_is_left(every: Any) -> None:
    """tg.next_done() gives each finished child, then None once none is left."""

    async def main() -> list[Any]:
        async with rocket.TaskGroup() as tg:
            assert await tg.next_done() is None
            handle = tg.spawn(_nap)
            first = await tg.next_done()
            last = await tg.next_done()
        return [first is handle, last]

    assert rocket.run(main(), engine=every) == [True, None]


# ------------------------------------------------------------------ contextvars


def test_each_fiber_runs_in_a_copy_of_the_spawners_context(every: Any) -> None:
    """A ContextVar set in one fiber is not seen by its siblings or its parent."""
    # asyncio test_context.py / test_tasks.py::test_context_1

    def handler(name: str) -> Body:
        request_id.set(name)
        yield rocket.sleep(0.001)
        return request_id.get()

    def main() -> Body:
        request_id.set("main")
        results = yield rocket.gather(handler("a"), handler("b"), handler("c"))
        return results, request_id.get()

    assert rocket.run(main(), engine=every) == (["a", "b", "c"], "main")


def test_child_sees_the_value_at_spawn_not_later_changes(every: Any) -> None:
    """A child starts with the spawner's values at spawn; later sets on either side stay apart."""
    # asyncio test_tasks.py::test_context_3

    async def child() -> list[str]:
        seen = [request_id.get()]
        await rocket.sleep(0.01)
        seen.append(request_id.get())
        request_id.set("child")
        return seen

    async def main() -> tuple[list[str], str]:
        request_id.set("before spawn")
        handle = await rocket.spawn(child())
        request_id.set("after spawn")
        seen = await rocket.join(handle)
        return seen, request_id.get()

    assert rocket.run(main(), engine=every) == (
        ["before spawn", "before spawn"],
        "after spawn",
    )


def test_run_does_not_leak_context_changes_to_the_caller(every: Any) -> None:
    """A ContextVar set inside rocket.run is not set in the caller afterwards."""

    def main() -> Body:
        request_id.set("inside")
        yield rocket.sleep(0)

    def caller() -> str:
        request_id.set("outside")
        rocket.run(main(), engine=every)
        return request_id.get()

    # (in a copy of the test's context: the set must not leak into the other tests)
    assert contextvars.copy_context().run(caller) == "outside"


def test_nested_calls_share_their_fibers_context(every: Any) -> None:
    """A nested call (yield helper()) runs in the calling fiber's context."""

    def helper() -> Body:
        request_id.set("from helper")
        yield rocket.sleep(0)

    def main() -> Body:
        yield helper()
        return request_id.get()

    assert rocket.run(main(), engine=every) == "from helper"


def test_a_fiber_that_only_reads_never_sees_a_siblings_set(every: Any) -> None:
    """A fiber that sets nothing still sees the value from its spawn, not a sibling's set."""

    def setter() -> Body:
        request_id.set("setter")
        yield rocket.yield_now()
        return request_id.get()

    def reader() -> Body:
        seen = []
        for _ in range(3):
            seen.append(request_id.get())
            yield rocket.yield_now()
        return seen

    def main() -> Body:
        return (yield rocket.gather(setter(), reader(), reader()))

    assert rocket.run(main(), engine=every) == ["setter", ["-"] * 3, ["-"] * 3]


def test_a_child_spawned_right_after_a_set_sees_it(every: Any) -> None:
    """A child spawned in the same step as the spawner's set sees the new value, as do its own."""

    async def grandchild() -> str:
        return request_id.get()

    async def child() -> list[str]:
        nested = await rocket.join(await rocket.spawn(grandchild()))
        return [request_id.get(), nested]

    async def main() -> list[str]:
        request_id.set("parent")
        seen = await rocket.join(await rocket.spawn(child()))
        return [*seen, request_id.get()]

    assert rocket.run(main(), engine=every) == ["parent", "parent", "parent"]


# -------------------------------------------------------------- tg.cancel()


def test_taskgroup_cancel_stops_the_body_and_every_child(every: Any) -> None:
    """tg.cancel() from a child cancels the body and the siblings; the group raises nothing."""
    # trio test_run.py::test_nursery_cancel (nursery.cancel_scope.cancel())

    async def main() -> tuple[bool, bool]:
        async with rocket.TaskGroup() as tg:
            sibling = tg.spawn(_nap, 10)

            async def stopper() -> None:
                await rocket.sleep(0.01)
                tg.cancel()

            tg.spawn(stopper)
            await rocket.sleep(10)
            raise AssertionError("not reached")
        return sibling.cancelled(), tg.cancelled_caught

    assert rocket.run(main(), engine=every) == (True, True)


def test_taskgroup_cancel_after_the_body_cancels_the_children(every: Any) -> None:
    """tg.cancel() while the body waits at the end of the block cancels only the children."""

    async def main() -> list[bool]:
        handles = []
        async with rocket.TaskGroup() as tg:
            handles.append(tg.spawn(_nap, 10))

            async def stopper() -> None:
                await rocket.sleep(0.01)
                tg.cancel()

            handles.append(tg.spawn(stopper))
        return [h.cancelled() for h in handles]

    assert rocket.run(main(), engine=every) == [True, False]


class _Stop(BaseException):
    """A BaseException that is not Cancelled (like KeyboardInterrupt)."""


def test_taskgroup_lets_a_base_exception_through_unwrapped(every: Any) -> None:
    """A body's BaseException (not Cancelled) leaves the group as itself, never in a group."""

    async def main() -> str:
        try:
            async with rocket.TaskGroup() as tg:
                child = tg.spawn(_crash(ValueError, "child"))
                await rocket.yield_now()
                raise _Stop
        except _Stop:
            child.exception()  # (looked at: not reported on stderr)
            return "stopped"
        return "not stopped"

    assert rocket.run(main(), engine=every) == "stopped"
