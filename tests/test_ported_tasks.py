"""The peers' own checks of tasks, the run loop and cancel scopes, run against rocket.

Each test names the peer test it follows: curio ``tests/test_kernel.py`` and
``tests/test_task.py``, trio ``src/trio/_core/_tests/test_run.py``. They are
ported in meaning, in rocket's terms: a task is a fiber, ``await
task.cancel()`` (curio: cancel and wait) is ``handle.cancel()`` then
``yield rocket.join(handle)``, curio's ``timeout_after``/``ignore_after`` and
trio's deadline scopes are ``fail_after``/``move_on_after``, a nursery (or a
curio ``TaskGroup``) is ``rocket.TaskGroup`` (async fibers) or ``gather``
(generator fibers), ``wait=any`` is ``race``, and trio's
``wait_all_tasks_blocked()`` is a few ``yield_now()`` rounds (every fiber that
waits on a primitive or on I/O has yielded its request by then).

What rocket deliberately does otherwise is in ``docs/differences.md``; those
peer tests are not ported (no ``disable_cancellation``, no ``TaskError``
wrapper, cancels are edge-triggered). Cancel scopes as objects, shielding,
``start`` and exception groups are in ``tests/test_scopes.py`` and
``tests/test_groups_more.py``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import socket
import sys
import time
import weakref
from collections.abc import Generator
from typing import Any

import pytest
from fiber_helpers import settle

import rocket

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

Body = Generator[Any, Any, Any]


def _forever() -> Body:
    """Wait on an Event nobody sets (trio's sleep_forever)."""
    yield rocket.Event().wait()


async def _aforever() -> None:
    await rocket.Event().wait()


# --------------------------------------------------------------- the run loop


@pytest.mark.parametrize("style", ["generator", "async"])
def test_run_returns_what_main_returns(engine: str, style: str) -> None:
    """run() returns main's return value, whether main waited on anything or not."""
    # curio test_kernel.py::test_hello; trio test_run.py::test_basic

    def gen(value: int) -> Body:
        yield rocket.yield_now()
        return value

    async def coro(value: int) -> int:
        await rocket.yield_now()
        return value

    body = gen(8) if style == "generator" else coro(8)
    assert rocket.run(body, engine=engine) == 8


@pytest.mark.parametrize("style", ["generator", "async"])
def test_run_raises_mains_own_exception_object(engine: str, style: str) -> None:
    """An exception main raises leaves run() as the same object, args intact."""
    # curio test_kernel.py::test_raise, test_task_run_error; trio test_initial_task_error
    error = ValueError(17)

    def gen() -> Body:
        yield rocket.yield_now()
        raise error

    async def coro() -> None:
        await rocket.yield_now()
        raise error

    with pytest.raises(ValueError) as info:
        rocket.run(gen() if style == "generator" else coro(), engine=engine)
    assert info.value is error
    assert info.value.args == (17,)


def test_run_refuses_a_function_instead_of_its_call(engine: str) -> None:
    """run(main) and run(lambda) raise TypeError saying to call the function."""
    # trio test_run.py::test_basic, test_nice_error_on_bad_calls_to_run_or_spawn

    async def main() -> None:
        pass

    with pytest.raises(TypeError, match=r"call it: run\(main\(\)\)"):
        rocket.run(main, engine=engine)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects a generator or coroutine object"):
        rocket.run(lambda: None, engine=engine)  # type: ignore[arg-type]


def test_spawn_refuses_what_is_no_body_nor_function(engine: str) -> None:
    """spawn(thing) of no body raises TypeError in the spawning fiber, which goes on."""
    # trio test_run.py::test_nice_error_on_bad_calls_to_run_or_spawn (bad_call_spawn);
    # rocket takes spawn(func, *args) as well as spawn(func(*args)).

    async def child() -> str:
        return "ran"

    def main() -> Body:
        with pytest.raises(TypeError, match="expects a generator or coroutine object"):
            yield rocket.spawn(42)  # type: ignore[call-overload]
        handle = yield rocket.spawn(child)
        return (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) == "ran"


def test_run_inside_a_fiber_raises_runtimeerror(engine: str) -> None:
    """rocket.run() called from a running fiber raises RuntimeError; the outer run goes on."""
    # curio test_kernel.py::test_reentrant_kernel; trio test_run.py::test_run_nesting

    async def inner() -> None:  # never runs
        pass

    async def main() -> str:
        body = inner()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                rocket.run(body, engine=engine)
        finally:
            body.close()
        await rocket.yield_now()
        return "outer went on"

    assert rocket.run(main(), engine=engine) == "outer went on"


def test_yielding_an_asyncio_future_gives_a_clear_error(engine: str) -> None:
    """Awaiting an asyncio future in a fiber raises TypeError naming asyncio, at that await."""
    # trio test_run.py::test_calling_asyncio_function_gives_nice_error
    import asyncio

    loop = asyncio.new_event_loop()
    future = loop.create_future()

    def child_xyzzy() -> Body:
        yield future

    def misguided() -> Body:
        yield from child_xyzzy()

    try:
        with pytest.raises(TypeError, match="asyncio") as info:
            rocket.run(misguided(), engine=engine)
    finally:
        loop.close()
    assert any(entry.name == "child_xyzzy" for entry in info.traceback)


def test_sleep_waits_at_least_its_time(engine: str) -> None:
    """sleep(0.05) returns no earlier than 0.05 s later."""
    # curio test_kernel.py::test_sleep, test_clock

    async def main() -> float:
        start = time.monotonic()
        await rocket.sleep(0.05)
        return time.monotonic() - start

    assert rocket.run(main(), engine=engine) >= 0.05


def test_fibers_that_yield_take_turns(engine: str) -> None:
    """Two fibers that yield_now in a loop run in lock step: a0 b0, a1 b1, a2 b2."""
    # trio test_run.py::test_basic_interleave
    record: list[tuple[str, int]] = []

    def looper(name: str) -> Body:
        for i in range(3):
            record.append((name, i))
            yield rocket.yield_now()

    def main() -> Body:
        yield rocket.gather(looper("a"), looper("b"))

    rocket.run(main(), engine=engine)
    rounds = [set(record[i : i + 2]) for i in range(0, 6, 2)]
    assert rounds == [{("a", i), ("b", i)} for i in range(3)]


def test_a_yield_now_loop_starves_neither_io_nor_its_cancel(engine: str) -> None:
    """A fiber looping on yield_now lets socket I/O of others finish, and can be cancelled."""
    # curio test_kernel.py::test_sleep_0_starvation
    spins = 0

    async def loop_forever() -> None:
        nonlocal spins
        while True:
            spins += 1
            await rocket.yield_now()

    async def io1(sock: socket.socket) -> None:
        assert await rocket.recv(sock, 1) == b"x"
        await rocket.sendall(sock, b"y")
        assert await rocket.recv(sock, 1) == b"z"

    async def io2(sock: socket.socket) -> None:
        await rocket.sendall(sock, b"x")
        assert await rocket.recv(sock, 1) == b"y"
        await rocket.sendall(sock, b"z")

    async def main() -> bool:
        looper = await rocket.spawn(loop_forever())
        await rocket.yield_now()
        a, b = socket.socketpair()
        with a, b:
            await rocket.gather(io1(a), io2(b))
        looper.cancel()
        with pytest.raises(rocket.Cancelled):
            await rocket.join(looper)
        return looper.cancelled()

    assert rocket.run(main(), engine=engine) is True
    assert spins > 1


def test_ping_pong_through_queues_does_not_starve_a_third_fiber(engine: str) -> None:
    """Two fibers passing an item back and forth through queues let a third one finish."""
    # curio test_kernel.py::test_ping_pong_starvation

    def pingpong(inq: rocket.Queue[str], outq: rocket.Queue[str]) -> Body:
        while True:
            yield outq.put((yield inq.get()))

    def i_will_survive() -> Body:
        for _ in range(10):
            yield rocket.yield_now()
        return "i survived!"

    def main() -> Body:
        q1: rocket.Queue[str] = rocket.Queue()
        q2: rocket.Queue[str] = rocket.Queue()
        yield q1.put("something")
        pp1 = yield rocket.spawn(pingpong(q1, q2))
        pp2 = yield rocket.spawn(pingpong(q2, q1))
        survivor = yield rocket.spawn(i_will_survive())
        result = yield rocket.join(survivor)
        pp1.cancel()
        pp2.cancel()
        return result

    assert rocket.run(main(), engine=engine) == "i survived!"


# ------------------------------------------------------------ tasks and join


@pytest.mark.parametrize("style", ["generator", "async"])
def test_join_returns_the_childs_result(engine: str, style: str) -> None:
    """join(handle) returns what the child returned."""
    # curio test_kernel.py::test_task_join

    def gen_child() -> Body:
        yield rocket.yield_now()
        return 37

    async def coro_child() -> int:
        await rocket.yield_now()
        return 37

    def main() -> Body:
        handle = yield rocket.spawn(gen_child() if style == "generator" else coro_child())
        return (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) == 37


def test_join_raises_the_childs_own_error(engine: str) -> None:
    """join re-raises the child's exception itself (curio wraps it in TaskError)."""
    # curio test_kernel.py::test_task_join_error

    async def child() -> None:
        await rocket.yield_now()
        int("bad")

    async def main() -> BaseException | None:
        handle = await rocket.spawn(child())
        with pytest.raises(ValueError, match="invalid literal"):
            await rocket.join(handle)
        return handle.exception()

    assert isinstance(rocket.run(main(), engine=engine), ValueError)


def test_current_is_the_handle_spawn_returned(engine: str) -> None:
    """rocket.current() in a child is the very handle its parent got from spawn."""
    # trio test_run.py::test_current_task

    def child() -> Body:
        return (yield rocket.current())

    def main() -> Body:
        handle = yield rocket.spawn(child(), name="kid")
        me = yield rocket.join(handle)
        return me is handle, handle.name

    assert rocket.run(main(), engine=engine) == (True, "kid")


def test_result_before_the_fiber_finished_raises_runtimeerror(engine: str) -> None:
    """result() and exception() of an unfinished fiber raise RuntimeError saying to join."""
    # curio test_task.py::test_errors, test_task_group_join (premature t2.result)

    def main() -> Body:
        handle = yield rocket.spawn(_forever())
        with pytest.raises(RuntimeError, match="join it first"):
            handle.result()
        with pytest.raises(RuntimeError, match="join it first"):
            handle.exception()
        handle.cancel()

    rocket.run(main(), engine=engine)


def test_cancelling_a_finished_fiber_does_nothing(engine: str) -> None:
    """cancel() of a fiber that already returned leaves its result and cancelled() False."""
    # curio test_task.py::test_late_join

    def child() -> Body:
        yield rocket.yield_now()
        return "done"

    def main() -> Body:
        handle = yield rocket.spawn(child())
        yield rocket.sleep(0.01)
        assert handle.done()
        handle.cancel()
        return handle.cancelled(), (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) == (False, "done")


# -------------------------------------------------------------- cancellation


@pytest.mark.parametrize("style", ["generator", "async"])
def test_cancel_a_sleeping_child_which_catches_it(engine: str, style: str) -> None:
    """A sleeping child that is cancelled gets Cancelled at its sleep; catching it, it returns."""
    # curio test_kernel.py::test_sleep_cancel, test_task_cancel
    seen: list[str] = []

    def gen_sleeper() -> Body:
        try:
            yield rocket.sleep(10)
            seen.append("slept")
        except rocket.Cancelled:
            seen.append("cancelled")
        return "caught"

    async def coro_sleeper() -> str:
        try:
            await rocket.sleep(10)
            seen.append("slept")
        except rocket.Cancelled:
            seen.append("cancelled")
        return "caught"

    def main() -> Body:
        handle = yield rocket.spawn(gen_sleeper() if style == "generator" else coro_sleeper())
        yield from settle()
        start = time.monotonic()
        handle.cancel()
        result = yield rocket.join(handle)
        return result, time.monotonic() - start

    result, elapsed = rocket.run(main(), engine=engine)
    assert result == "caught"
    assert elapsed < 5
    assert seen == ["cancelled"]


@pytest.mark.parametrize("style", ["generator", "async"])
def test_cancelled_child_can_wait_in_its_handler_before_reraising(engine: str, style: str) -> None:
    """A cancelled child may wait for an Event in its handler; join then raises its Cancelled."""
    # curio test_kernel.py::test_task_cancel_not_blocking
    e1, e2 = rocket.Event(), rocket.Event()

    def gen_child() -> Body:
        e1.set()
        try:
            yield rocket.sleep(1000)
        except rocket.Cancelled:
            yield e2.wait()
            raise

    async def coro_child() -> None:
        e1.set()
        try:
            await rocket.sleep(1000)
        except rocket.Cancelled:
            await e2.wait()
            raise

    def main() -> Body:
        handle = yield rocket.spawn(gen_child() if style == "generator" else coro_child())
        yield e1.wait()
        yield from settle()
        handle.cancel()
        yield from settle()
        assert not handle.done()  # it waits for e2 in its handler
        e2.set()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return handle.cancelled()

    assert rocket.run(main(), engine=engine) is True


def test_cancel_twice_before_it_lands_is_one_cancel(engine: str) -> None:
    """Two cancel() calls before the child runs throw one Cancelled; its finally runs once."""
    # curio test_task.py::test_cancel_noblock
    exits: list[str] = []

    async def child() -> None:
        try:
            await rocket.sleep(10)
        except rocket.Cancelled:
            exits.append("cancelled")
            await rocket.sleep(0.001)  # a second Cancelled here would skip the next line
            exits.append("cleaned up")
            raise

    async def main() -> None:
        handle = await rocket.spawn(child())
        await rocket.yield_now()
        handle.cancel()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            await rocket.join(handle)

    rocket.run(main(), engine=engine)
    assert exits == ["cancelled", "cleaned up"]


def test_joining_a_cancelled_child_raises_cancelled(engine: str) -> None:
    """A child cancelled while parked on an Event: join raises Cancelled; the Event is untouched."""
    # curio test_kernel.py::test_task_cancel_join, test_task_cancel_join_wait
    event = rocket.Event()
    reached: list[str] = []

    def child() -> Body:
        yield event.wait()
        reached.append("woke")

    def canceller(target: rocket.Fiber[Any]) -> Body:
        yield rocket.yield_now()
        target.cancel()

    def main() -> Body:
        task1 = yield rocket.spawn(child())
        task2 = yield rocket.spawn(canceller(task1))
        yield rocket.join(task2)
        assert not event.is_set()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(task1)
        return task1.cancelled()

    assert rocket.run(main(), engine=engine) is True
    assert reached == []


def test_a_join_that_times_out_leaves_the_cancelled_child_running(engine: str) -> None:
    """A join in move_on_after gives up without touching the child, which finishes its cleanup."""
    # curio test_kernel.py::test_double_cancel (the join under timeout_after, then the retry)
    results: list[str] = []
    cleanup = rocket.Event()

    def sleeper() -> Body:
        results.append("start")
        try:
            yield rocket.sleep(10)
            results.append("not here")
        except rocket.Cancelled:
            results.append("cancel request")
            yield cleanup.wait()
            results.append("cancelled")

    def main() -> Body:
        task = yield rocket.spawn(sleeper())
        yield from settle()
        task.cancel()
        with rocket.move_on_after(0.02) as scope:
            yield rocket.join(task)
        if scope.timed_out:
            results.append("retry")
        cleanup.set()
        yield rocket.join(task)
        results.append("done cancel")

    rocket.run(main(), engine=engine)
    assert results == ["start", "cancel request", "retry", "cancelled", "done cancel"]


def test_cancel_cascades_down_through_handlers_innermost_first(engine: str) -> None:
    """Each cancelled parent cancels and joins its child in its handler: order child->root."""
    # curio test_kernel.py::test_task_child_cancel
    results: list[str] = []

    def child() -> Body:
        results.append("start")
        try:
            yield rocket.sleep(10)
            results.append("end")
        except rocket.Cancelled:
            results.append("child cancelled")

    def parent() -> Body:
        kid = yield rocket.spawn(child())
        try:
            yield rocket.sleep(10)
            results.append("end parent")
        except rocket.Cancelled:
            kid.cancel()
            yield rocket.join(kid)
            results.append("parent cancelled")

    def grandparent() -> Body:
        kid = yield rocket.spawn(parent())
        try:
            yield rocket.sleep(10)
            results.append("end grandparent")
        except rocket.Cancelled:
            kid.cancel()
            yield rocket.join(kid)
            results.append("grandparent cancelled")

    def main() -> Body:
        task = yield rocket.spawn(grandparent())
        yield from settle(5)  # each generation starts one pass after its parent
        results.append("cancelling")
        task.cancel()
        yield rocket.join(task)
        results.append("done")

    rocket.run(main(), engine=engine)
    assert results == [
        "start",
        "cancelling",
        "child cancelled",
        "parent cancelled",
        "grandparent cancelled",
        "done",
    ]


def test_cancelling_a_fiber_already_woken_lets_it_run_to_its_next_wait(engine: str) -> None:
    """A fiber woken (runnable) when cancelled keeps its wake-up, then gets Cancelled next."""
    # curio test_kernel.py::test_task_ready_cancel (the child on the ready queue)
    results: list[str] = []
    event = rocket.Event()

    def child() -> Body:
        try:
            results.append("child waits")
            yield event.wait()
            results.append("child woke")
            yield rocket.sleep(10)
            results.append("should not see this")
        except rocket.Cancelled:
            results.append("child cancelled")

    def main() -> Body:
        task = yield rocket.spawn(child())
        yield from settle()
        event.set()  # the child is runnable now ...
        task.cancel()  # ... and cancelled before it ran
        results.append("cancel sent")
        yield rocket.join(task)
        results.append("cancel done")

    rocket.run(main(), engine=engine)
    assert results == ["child waits", "cancel sent", "child woke", "child cancelled", "cancel done"]


def test_cancelling_a_fiber_whose_sleep_already_ended_during_a_stall(engine: str) -> None:
    """Both timers expire while the loop is stalled; the child's sleep result is kept."""
    # curio test_kernel.py::test_task_ready_cancel (time.sleep blocks the loop)
    results: list[str] = []

    def child() -> Body:
        try:
            results.append("child sleep")
            yield rocket.sleep(0.02)
            results.append("child slept")
            yield rocket.sleep(10)
            results.append("should not see this")
        except rocket.Cancelled:
            results.append("child cancelled")

    def parent() -> Body:
        task = yield rocket.spawn(child())
        results.append("parent sleep")
        yield rocket.sleep(0.01)
        task.cancel()
        yield rocket.join(task)
        results.append("cancel done")

    def main() -> Body:
        task = yield rocket.spawn(parent())
        yield from settle()
        time.sleep(0.1)  # both sleeps expire while the loop is blocked
        yield rocket.join(task)

    rocket.run(main(), engine=engine)
    assert results[:2] == ["parent sleep", "child sleep"]
    # Whichever of the two resumes first, the child's finished sleep is not lost.
    assert results[2:] == ["child slept", "child cancelled", "cancel done"]


@pytest.mark.parametrize("style", ["generator", "async"])
def test_fiber_cancelling_itself_is_cancelled_at_its_next_request(engine: str, style: str) -> None:
    """After cancelling itself a fiber runs on; its next request, of any kind, raises Cancelled."""
    # curio test_task.py::test_self_cancellation; test_kernel.py::test_pending_cancellation
    a, b = socket.socketpair()

    def gen() -> Body:
        me = yield rocket.current()
        for request in (rocket.recv(a, 1), rocket.Event().wait(), rocket.yield_now()):
            me.cancel()
            with pytest.raises(rocket.Cancelled):
                yield request
        return "alive"

    async def coro() -> str:
        me = await rocket.current()
        for request in (rocket.recv(a, 1), rocket.Event().wait(), rocket.yield_now()):
            me.cancel()
            with pytest.raises(rocket.Cancelled):
                await request
        return "alive"

    with a, b:
        assert rocket.run(gen() if style == "generator" else coro(), engine=engine) == "alive"


def test_spawned_then_cancelled_at_once_starts_and_is_cancelled_at_first_wait(
    engine: str,
) -> None:
    """A child cancelled before it first ran still starts, and gets Cancelled at its first wait."""
    # trio test_run.py::test_precancelled_task
    record: list[str] = []

    async def blocker() -> None:
        record.append("started")
        await _aforever()
        record.append("not reached")

    async def main() -> None:
        handle = await rocket.spawn(blocker())
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            await rocket.join(handle)

    rocket.run(main(), engine=engine)
    assert record == ["started"]


def test_cancelling_one_waiter_on_a_socket_leaves_the_other_waiter(engine: str) -> None:
    """A reader and a blocked writer share a socket; cancelling the writer keeps the read alive."""
    # curio test_kernel.py::test_io_registration
    s1, s2 = socket.socketpair()
    s1.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            s1.send(b"x" * 65536)  # fill s1's send buffer: a send on it must wait
    s1.setblocking(True)

    def reader() -> Body:
        return (yield rocket.recv(s1, 100))

    def writer() -> Body:
        yield rocket.sendall(s1, b"y" * 65536)
        raise AssertionError("the send buffer was full")

    def main() -> Body:
        t0 = yield rocket.spawn(reader())
        t1 = yield rocket.spawn(writer())
        yield from settle()
        t1.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(t1)
        s2.send(b"hello")
        with rocket.fail_after(5):
            return (yield rocket.join(t0))

    with s1, s2:
        assert rocket.run(main(), engine=engine) == b"hello"


@pytest.mark.skipif(not hasattr(gc, "collect"), reason="needs gc")
def test_a_cancelled_fibers_locals_are_freed_once_it_finished(engine: str) -> None:
    """The locals of a fiber cancelled in a TaskGroup are destroyed by the time the block ends."""
    # trio test_run.py::test_locals_destroyed_promptly_on_cancel
    destroyed: list[bool] = []

    class Local:
        pass

    async def task() -> None:
        local = Local()
        weakref.finalize(local, destroyed.append, True)
        await _aforever()

    async def main() -> list[bool]:
        with rocket.move_on_after(0.01):
            async with rocket.TaskGroup() as tg:
                tg.spawn(task())
                await _aforever()
        return list(destroyed)

    assert rocket.run(main(), engine=engine) == [True]


# ------------------------------------------------------ timeouts and scopes


@pytest.mark.parametrize("style", ["generator", "async"])
def test_fail_after_cuts_a_long_sleep_short(engine: str, style: str) -> None:
    """fail_after(0.02) around sleep(10) raises TimeoutError soon after 0.02 s."""
    # curio test_kernel.py::test_sleep_timeout

    def gen() -> Body:
        with pytest.raises(TimeoutError), rocket.fail_after(0.02):
            yield rocket.sleep(10)

    async def coro() -> None:
        with pytest.raises(TimeoutError), rocket.fail_after(0.02):
            await rocket.sleep(10)

    start = time.monotonic()
    rocket.run(gen() if style == "generator" else coro(), engine=engine)
    assert 0.02 <= time.monotonic() - start < 5


@pytest.mark.parametrize("style", ["generator", "async"])
def test_move_on_after_leaves_quietly_and_says_so(engine: str, style: str) -> None:
    """move_on_after(0.02) around sleep(10) ends the block; timed_out says it was cut short."""
    # curio test_kernel.py::test_sleep_ignore_timeout

    def gen() -> Body:
        with rocket.move_on_after(0.02) as scope:
            yield rocket.sleep(10)
        return scope.timed_out

    async def coro() -> bool:
        async with rocket.move_on_after(0.02) as scope:
            await rocket.sleep(10)
        return scope.timed_out

    assert rocket.run(gen() if style == "generator" else coro(), engine=engine) is True


def test_a_block_done_in_time_is_not_cancelled_afterwards(engine: str) -> None:
    """fail_after(0.05) around sleep(0.001): no error then, nor when its deadline passes later."""
    # curio test_kernel.py::test_sleep_notimeout; trio test_run.py::test_basic_timeout

    async def main() -> bool:
        with rocket.fail_after(0.05) as scope:
            await rocket.sleep(0.001)
        await rocket.sleep(0.1)  # past the old deadline
        await rocket.yield_now()
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is False


def test_outer_deadline_first_inner_scopes_see_cancelled_not_timeout(engine: str) -> None:
    """When the outer fail_after fires, inner fail_after blocks let a Cancelled through."""
    # curio test_kernel.py::test_nested_context_timeout2, test_nested_timeout
    seen: list[str] = []

    async def coro1() -> None:
        try:
            with rocket.fail_after(10):
                await rocket.sleep(5)
        except rocket.Cancelled:
            seen.append("coro1 cancelled")
            raise

    async def coro2() -> None:
        try:
            with rocket.fail_after(15):
                await coro1()
        except rocket.Cancelled:
            seen.append("coro2 cancelled")
            raise

    async def parent() -> None:
        with pytest.raises(TimeoutError), rocket.fail_after(0.02):
            await coro2()
        seen.append("parent timeout")

    rocket.run(parent(), engine=engine)
    assert seen == ["coro1 cancelled", "coro2 cancelled", "parent timeout"]


def test_inner_timeouterror_passes_through_an_outer_scope_unchanged(engine: str) -> None:
    """An inner fail_after's TimeoutError leaves the outer block as is; the outer did not fire."""
    # curio test_kernel.py::test_nested_timeout_uncaught (curio: UncaughtTimeoutError)
    seen: list[str] = []

    def child() -> Body:
        with rocket.fail_after(0.01):
            yield rocket.sleep(5)

    def parent() -> Body:
        outer = rocket.fail_after(10)
        with pytest.raises(TimeoutError, match=r"fail_after\(0.01\)"), outer:
            yield child()
        seen.append(f"outer timed out: {outer.timed_out}")

    rocket.run(parent(), engine=engine)
    assert seen == ["outer timed out: False"]


def test_an_infinite_inner_limit_never_fires_the_outer_one_does(engine: str) -> None:
    """fail_after(inf) inside fail_after(0.02): the outer block times out, the inner never."""
    # curio test_kernel.py::test_nested_timeout_none
    results: list[str] = []

    async def child() -> None:
        with rocket.fail_after(math.inf) as inner:
            results.append("coro1 start")
            try:
                await rocket.sleep(5)
            finally:
                results.append(f"inner timed out: {inner.timed_out}")
        results.append("coro1 success")

    async def parent() -> None:
        try:
            with rocket.fail_after(0.02):
                await child()
        except TimeoutError:
            results.append("parent timeout")

    rocket.run(parent(), engine=engine)
    assert results == ["coro1 start", "inner timed out: False", "parent timeout"]


def test_a_deadline_passed_without_a_yield_cancels_nothing(engine: str) -> None:
    """A block that overruns its deadline without waiting ends normally; nothing hits later."""
    # curio test_kernel.py::test_timeout_badness; trio test_cancel_scope_nesting (popped scope)

    def main() -> Body:
        with rocket.fail_after(0.01) as scope:
            time.sleep(0.03)  # no request: nothing to cancel
        yield rocket.sleep(0)
        yield rocket.yield_now()
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is False


def test_completed_sleep_beats_an_expired_scope_during_a_stall(engine: str) -> None:
    """A sleep and its scope's deadline both pass while the loop stalls: the sleep wins."""
    # curio test_kernel.py::test_kernel_multischedule

    def sleeper() -> Body:
        with rocket.fail_after(0.1) as scope:
            yield rocket.sleep(0.02)
        yield rocket.sleep(0.01)  # must not be hit by the expired scope
        return scope.timed_out

    def main() -> Body:
        task = yield rocket.spawn(sleeper())
        yield from settle()
        time.sleep(0.2)  # past both the sleep and the scope's deadline
        return (yield rocket.join(task))

    assert rocket.run(main(), engine=engine) is False


def test_two_scopes_expiring_together_the_outer_one_wins(engine: str) -> None:
    """Inner and middle deadlines both pass at once: the middle catches; the inner does not."""
    # trio test_run.py::test_cancel_scope_nesting (two triggering at once)

    def main() -> Body:
        scope1, scope2, scope3 = (rocket.move_on_after(t) for t in (10, 0.02, 0.01))
        with scope1, scope2, scope3:
            time.sleep(0.05)  # the two inner deadlines pass before the fiber waits
            yield rocket.sleep(10)
        return scope3.cancel_called, scope3.timed_out, scope2.timed_out, scope1.cancel_called

    assert rocket.run(main(), engine=engine) == (True, False, True, False)


def test_a_zero_limit_cancels_the_first_wait(engine: str) -> None:
    """move_on_after(0) lets the block run up to its first wait, which is cancelled."""
    # trio test_run.py::test_cancel_points (main3)
    reached: list[str] = []

    def main() -> Body:
        with rocket.move_on_after(0) as scope:
            reached.append("entered")
            yield from _forever()
            reached.append("not reached")
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is True
    assert reached == ["entered"]


def test_a_scope_can_be_entered_only_once(engine: str) -> None:
    """Re-entering a scope (nested, after exit, or from another fiber) raises RuntimeError."""
    # trio test_run.py::test_cancel_unbound (can't reuse, can't reenter, multiple tasks)

    def other(scope: rocket.TimeoutScope) -> Body:
        with pytest.raises(RuntimeError, match="entered only once"), scope:
            pass  # pragma: no cover
        yield rocket.yield_now()

    def main() -> Body:
        scope = rocket.move_on_after(10)
        with scope:
            with pytest.raises(RuntimeError, match="entered only once"), scope:
                pass  # pragma: no cover
            yield rocket.gather(other(scope))
        with pytest.raises(RuntimeError, match="entered only once"), scope:
            pass  # pragma: no cover

    rocket.run(main(), engine=engine)


def test_scope_arguments_are_checked(engine: str) -> None:
    """NaN or negative seconds raise ValueError, a non-number TypeError, at the call."""
    # trio test_run.py::test_cancel_scope_validation

    def main() -> Body:
        for make in (rocket.fail_after, rocket.move_on_after):
            with pytest.raises(ValueError, match="must be >= 0"):
                make(math.nan)
            with pytest.raises(ValueError, match="must be >= 0"):
                make(-3)
            with pytest.raises(TypeError, match="must be a number of seconds"):
                make("5")  # type: ignore[arg-type]
        yield rocket.yield_now()

    rocket.run(main(), engine=engine)


def test_a_scope_outside_a_fiber_raises_runtimeerror(engine: str) -> None:
    """Entering fail_after outside rocket.run (also after a run) raises RuntimeError."""
    # trio test_run.py::test_out_of_context
    with pytest.raises(RuntimeError, match=r"inside a rocket fiber"), rocket.fail_after(1):
        pass  # pragma: no cover
    rocket.run(settle(1), engine=engine)
    with pytest.raises(RuntimeError, match=r"inside a rocket fiber"), rocket.move_on_after(1):
        pass  # pragma: no cover


def test_thousands_of_nested_scopes(engine: str) -> None:
    """5000 nested move_on_after blocks; the outermost fires and all unwind, no RecursionError."""
    # trio test_run.py::test_very_deep_cancel_scope_nesting

    def main() -> Body:
        with contextlib.ExitStack() as stack:
            outermost = stack.enter_context(rocket.move_on_after(0.01))
            for _ in range(5000):
                stack.enter_context(rocket.move_on_after(100))
            yield rocket.sleep(10)
        return outermost.timed_out

    assert rocket.run(main(), engine=engine) is True


# --------------------------------------------------------- gather and race


def test_gather_returns_every_result_in_order(engine: str) -> None:
    """gather of three children returns their results in argument order."""
    # curio test_task.py::test_task_group

    def child(x: int, y: int) -> Body:
        yield rocket.yield_now()
        return x + y

    def main() -> Body:
        return (yield rocket.gather(child(1, 1), child(2, 2), child(3, 3)))

    assert rocket.run(main(), engine=engine) == [2, 4, 6]


def test_gather_takes_fibers_already_running_or_finished(engine: str) -> None:
    """gather of handles, some finished, some waiting, returns all their results in order."""
    # curio test_task.py::test_task_group_existing
    event = rocket.Event()

    def child(x: int, y: int) -> Body:
        yield rocket.yield_now()
        return x + y

    def child2(x: int, y: int) -> Body:
        yield event.wait()
        return x + y

    def main() -> Body:
        t1 = yield rocket.spawn(child(1, 1))
        t2 = yield rocket.spawn(child2(2, 2))
        t3 = yield rocket.spawn(child2(3, 3))
        t4 = yield rocket.spawn(child(4, 4))
        yield rocket.join(t1)
        yield rocket.join(t4)
        event.set()
        return (yield rocket.gather(t1, t2, t3, t4))

    assert rocket.run(main(), engine=engine) == [2, 4, 6, 8]


def test_race_first_result_wins_the_others_are_cancelled(engine: str) -> None:
    """race: the first child to finish gives the result; the waiting ones end cancelled."""
    # curio test_task.py::test_task_any_cancel, test_task_group_result (wait=any)
    event = rocket.Event()
    handles: list[rocket.Fiber[Any]] = []

    def child(x: int, y: int) -> Body:
        yield rocket.yield_now()
        return x + y

    def child2(x: int, y: int) -> Body:
        handles.append((yield rocket.current()))
        yield event.wait()
        return x + y

    def main() -> Body:
        return (yield rocket.race(child(1, 1), child2(2, 2), child2(3, 3)))

    assert rocket.run(main(), engine=engine) == (0, 2)
    assert [h.cancelled() for h in handles] == [True, True]


def test_race_whose_first_finisher_failed_raises_its_error(engine: str) -> None:
    """race: the first to finish raised; its error is raised, the others end cancelled."""
    # curio test_task.py::test_task_any_error
    event = rocket.Event()
    handles: list[rocket.Fiber[Any]] = []

    def child(x: int, y: Any) -> Body:
        yield rocket.yield_now()
        return x + y

    def child2(x: int, y: int) -> Body:
        handles.append((yield rocket.current()))
        yield event.wait()
        return x + y

    def main() -> Body:
        with pytest.raises(TypeError):
            yield rocket.race(child(1, "1"), child2(2, 2), child2(3, 3))

    rocket.run(main(), engine=engine)
    assert [h.cancelled() for h in handles] == [True, True]


# ---------------------------------------------------------------- TaskGroup


def test_taskgroup_children_finish_before_the_block_ends(engine: str) -> None:
    """After 'async with TaskGroup()' every child has finished with its result."""
    # curio test_task.py::test_task_group

    async def child(x: int, y: int) -> int:
        await rocket.yield_now()
        return x + y

    async def main() -> list[int]:
        async with rocket.TaskGroup() as tg:
            handles = [tg.spawn(child(i, i)) for i in (1, 2, 3)]
        return [h.result() for h in handles]

    assert rocket.run(main(), engine=engine) == [2, 4, 6]


def test_empty_taskgroup_is_fine(engine: str) -> None:
    """An empty TaskGroup block opens and closes without error or wait."""
    # curio test_task.py::test_task_group_empty

    async def main() -> str:
        async with rocket.TaskGroup():
            pass
        return "ok"

    assert rocket.run(main(), engine=engine) == "ok"


def test_taskgroup_needs_async_with(engine: str) -> None:
    """A plain 'with TaskGroup()' raises TypeError saying to use 'async with' (or gather)."""
    # trio test_run.py::test_nursery_warn_use_async_with

    async def main() -> None:
        with pytest.raises(TypeError, match="needs 'async with'"), rocket.TaskGroup():
            pass  # pragma: no cover

    rocket.run(main(), engine=engine)


def test_a_failing_child_cancels_its_siblings_and_raises(engine: str) -> None:
    """A child's error cancels the others and leaves the block as the same exception object."""
    # curio test_task.py::test_task_group_error; trio test_child_crash_basic,
    # test_task_crash_propagation
    event = rocket.Event()
    error = TypeError("bad")
    looper: list[str] = []

    async def child() -> None:
        await event.wait()

    async def crasher() -> None:
        await rocket.yield_now()
        raise error

    async def loop() -> None:
        try:
            while True:
                await rocket.yield_now()
        except rocket.Cancelled:
            looper.append("cancelled")
            raise

    async def main() -> list[bool]:
        with pytest.raises(TypeError) as info:  # noqa: PT012
            async with rocket.TaskGroup() as tg:
                t1 = tg.spawn(child())
                t2 = tg.spawn(child())
                t3 = tg.spawn(crasher())
                tg.spawn(loop())
        assert info.value is error
        return [t1.cancelled(), t2.cancelled(), t3.exception() is error]

    assert rocket.run(main(), engine=engine) == [True, True, True]
    assert looper == ["cancelled"]


def test_a_child_crash_wakes_a_body_that_waits_forever(engine: str) -> None:
    """The body waits on an Event nobody sets; a child's crash cancels it and raises the crash."""
    # trio test_run.py::test_child_crash_wakes_parent

    async def crasher() -> None:
        raise ValueError("this is a crash")

    async def main() -> None:
        with pytest.raises(ValueError, match=r"^this is a crash$"):  # noqa: PT012
            async with rocket.TaskGroup() as tg:
                tg.spawn(crasher())
                await _aforever()

    rocket.run(main(), engine=engine)


def test_an_error_in_the_body_cancels_the_children_and_goes_on(engine: str) -> None:
    """The body raises: every child is cancelled, then the body's error leaves the block."""
    # curio test_task.py::test_task_group_error_block, test_task_group_daemon_error;
    # trio test_nursery_main_block_error_basic

    async def main() -> list[bool]:
        with pytest.raises(RuntimeError, match="body"):  # noqa: PT012
            async with rocket.TaskGroup() as tg:
                handles = [tg.spawn(_aforever()) for _ in range(3)]
                await rocket.yield_now()
                raise RuntimeError("body")
        return [h.cancelled() for h in handles]

    assert rocket.run(main(), engine=engine) == [True, True, True]


def test_body_error_and_child_error_leave_in_one_group(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Body and child both fail: an ExceptionGroup of both leaves the block, nothing on stderr."""
    # trio test_run.py::test_main_and_task_both_crash

    async def crasher() -> None:
        raise ValueError("child crash")

    async def main() -> None:
        with pytest.raises(ExceptionGroup) as caught:  # noqa: PT012
            async with rocket.TaskGroup() as tg:
                tg.spawn(crasher())
                raise KeyError("body")
        assert [type(e) for e in caught.value.exceptions] == [KeyError, ValueError]

    rocket.run(main(), engine=engine)
    gc.collect()
    assert "never joined" not in capsys.readouterr().err


def test_two_child_crashes_leave_in_one_group(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two children fail: an ExceptionGroup of both, in failure order, nothing on stderr."""
    # trio test_run.py::test_two_child_crashes

    async def crasher(kind: type[Exception], name: str) -> None:
        raise kind(name)

    async def main() -> None:
        with pytest.raises(ExceptionGroup) as caught:  # noqa: PT012
            async with rocket.TaskGroup() as tg:
                tg.spawn(crasher(KeyError, "first"))
                tg.spawn(crasher(ValueError, "second"))
        assert [str(e) for e in caught.value.exceptions] == ["'first'", "second"]

    rocket.run(main(), engine=engine)
    gc.collect()
    assert "never joined" not in capsys.readouterr().err


def test_cancelling_the_fiber_in_a_taskgroup_cancels_every_child_first(engine: str) -> None:
    """A fiber cancelled in its TaskGroup body gets Cancelled once all children are cancelled."""
    # curio test_task.py::test_task_group_cancel
    ready = rocket.Event()
    child_seen: list[str] = []
    at_parent: list[list[bool]] = []

    async def child() -> None:
        try:
            await rocket.Event().wait()
        except rocket.Cancelled:
            child_seen.append("cancelled")
            raise

    async def coro() -> None:
        handles: list[rocket.Fiber[Any]] = []
        try:
            async with rocket.TaskGroup() as tg:
                handles = [tg.spawn(child()) for _ in range(3)]
                ready.set()
                await _aforever()
        except rocket.Cancelled:
            at_parent.append([h.cancelled() for h in handles])
            raise

    async def main() -> None:
        task = await rocket.spawn(coro())
        await ready.wait()
        await rocket.yield_now()
        task.cancel()
        with pytest.raises(rocket.Cancelled):
            await rocket.join(task)

    rocket.run(main(), engine=engine)
    assert child_seen == ["cancelled"] * 3
    assert at_parent == [[True, True, True]]


def test_fail_after_around_a_taskgroup_cancels_the_children(engine: str) -> None:
    """A TaskGroup in fail_after: at the deadline the children are cancelled, then TimeoutError."""
    # curio test_task.py::test_task_group_timeout
    at_group: list[list[bool]] = []

    async def main() -> None:
        handles: list[rocket.Fiber[Any]] = []
        with pytest.raises(TimeoutError), rocket.fail_after(0.02):  # noqa: PT012
            try:
                async with rocket.TaskGroup() as tg:
                    handles = [tg.spawn(_aforever()) for _ in range(3)]
            except rocket.Cancelled:
                at_group.append([h.cancelled() for h in handles])
                raise

    rocket.run(main(), engine=engine)
    assert at_group == [[True, True, True]]


def test_cancel_reaches_grandchildren_through_nested_taskgroups(engine: str) -> None:
    """Cancelling the root cancels every leaf of nested TaskGroups."""
    # trio test_run.py::test_cancel_inheritance
    record: set[str] = set()

    async def leaf(ident: str) -> None:
        try:
            await _aforever()
        except rocket.Cancelled:
            record.add(ident)

    async def worker(ident: str) -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(leaf(ident + "-l1"))
            tg.spawn(leaf(ident + "-l2"))

    async def root() -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(worker("w1"))
            tg.spawn(worker("w2"))

    async def main() -> None:
        task = await rocket.spawn(root())
        for _ in range(5):
            await rocket.yield_now()
        task.cancel()
        with pytest.raises(rocket.Cancelled):
            await rocket.join(task)

    rocket.run(main(), engine=engine)
    assert record == {"w1-l1", "w1-l2", "w2-l1", "w2-l2"}


def test_a_child_may_join_a_sibling_inside_the_group(engine: str) -> None:
    """Joining one child inside the block returns its result; the group still waits for all."""
    # curio test_task.py::test_task_group_join_done, test_task_join_daemon

    async def add(x: int, y: int) -> int:
        await rocket.yield_now()
        return x + y

    async def main() -> list[int]:
        async with rocket.TaskGroup() as tg:
            handles = [tg.spawn(add(i, i)) for i in (1, 2, 3)]
            assert await rocket.join(handles[2]) == 6
        return [h.result() for h in handles]

    assert rocket.run(main(), engine=engine) == [2, 4, 6]


def test_children_may_spawn_into_the_group_while_it_waits(engine: str) -> None:
    """A child spawns a sibling while the block waits at its end; after the block, spawn fails."""
    # trio test_run.py::test_nursery_closure; curio test_task.py::test_task_group_use_error
    ran: list[str] = []

    async def child2() -> None:
        await rocket.yield_now()
        ran.append("child2")

    async def child1(tg: rocket.TaskGroup) -> None:
        await rocket.yield_now()  # the body has reached its end by now
        tg.spawn(child2())

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(child1(tg))
        assert ran == ["child2"]
        body = child2()
        with pytest.raises(RuntimeError, match="needs an open group"):
            tg.spawn(body)
        body.close()

    rocket.run(main(), engine=engine)
