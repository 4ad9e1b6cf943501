"""Cancel scopes as objects: ``rocket.CancelScope``, shielding, deadlines, messages.

Ported in meaning from trio's ``src/trio/_core/_tests/test_run.py`` (the
cancel scope tests: ``test_cancel_scope_repr``, ``test_cancel_edge_cases``,
``test_cancel_shielding``, ``test_basic_timeout``,
``test_current_effective_deadline``, ``test_cancel_scope_nesting``) and
asyncio's ``test_tasks.py`` (``test_cancel_with_message_*``). Every test runs
on both real engines and on the virtual test engine, in both fiber styles
where the style matters.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import pytest

import rocket
from rocket.testing import VirtualEngine

Body = Generator[Any, Any, Any]


@pytest.fixture(params=["real", "virtual"])
def every(request: pytest.FixtureRequest, engine: str) -> Any:
    """The ``engine`` fixture's engine, or (param "virtual") a fresh VirtualEngine."""
    return VirtualEngine() if request.param == "virtual" else engine


def _forever() -> Body:
    yield rocket.Event().wait()


# --------------------------------------------------------- cancel() and flags


def test_cancel_scope_cancel_ends_the_block_and_is_caught(every: Any) -> None:
    """scope.cancel() stops the block at its wait; the scope swallows its own Cancelled."""
    # trio test_run.py::test_cancel_edge_cases, test_basic_timeout (cancel part)

    def main() -> Body:
        with rocket.CancelScope() as scope:
            before = scope.cancel_called
            scope.cancel()
            yield from _forever()
            raise AssertionError("not reached")
        return before, scope.cancel_called, scope.cancelled_caught

    assert rocket.run(main(), engine=every) == (False, True, True)


def test_cancel_scope_not_cancelled_reports_nothing(every: Any) -> None:
    """A scope nobody cancels leaves cancel_called and cancelled_caught False."""

    async def main() -> tuple[bool, bool]:
        with rocket.CancelScope() as scope:
            await rocket.sleep(0)
        return scope.cancel_called, scope.cancelled_caught

    assert rocket.run(main(), engine=every) == (False, False)


def test_cancel_before_enter_cancels_the_block_at_once(every: Any) -> None:
    """A scope cancelled before it is entered cancels its block at the first wait."""
    # trio test_run.py::test_cancel_edge_cases ("cancel before entering")

    async def main() -> bool:
        scope = rocket.CancelScope()
        scope.cancel()
        with scope:
            await rocket.sleep(10)
            raise AssertionError("not reached")
        return scope.cancelled_caught

    assert rocket.run(main(), engine=every) is True


def test_cancel_after_exit_does_nothing(every: Any) -> None:
    """Cancelling a scope after its block ended never hits the fiber."""

    def main() -> Body:
        with rocket.CancelScope() as scope:
            yield rocket.sleep(0)
        scope.cancel()
        yield rocket.sleep(0.001)
        return scope.cancelled_caught

    assert rocket.run(main(), engine=every) is False


def test_cancel_scope_from_another_fiber(every: Any) -> None:
    """Another fiber may cancel a scope; only the block ends, the fiber goes on."""

    def main() -> Body:
        scopes: list[rocket.CancelScope] = []

        def canceller() -> Body:
            yield rocket.sleep(1)
            scopes[0].cancel()

        yield rocket.spawn(canceller())
        with rocket.CancelScope() as scope:
            scopes.append(scope)
            yield from _forever()
        yield rocket.sleep(0)  # the fiber is not cancelled after the block
        return scope.cancelled_caught

    assert rocket.run(main(), engine=every) is True


def test_outer_scope_cancel_passes_through_inner_scope(every: Any) -> None:
    """An outer scope's Cancelled passes an inner scope, which has cancelled_caught False."""
    # trio test_run.py::test_cancel_scope_nesting

    async def main() -> tuple[bool, bool]:
        with rocket.CancelScope() as outer, rocket.CancelScope() as inner:
            outer.cancel()
            await rocket.sleep(10)
        return inner.cancelled_caught, outer.cancelled_caught

    assert rocket.run(main(), engine=every) == (False, True)


def test_scope_cannot_be_entered_twice(every: Any) -> None:
    """Entering a scope a second time is a RuntimeError that says to make a new one."""

    def main() -> Body:
        scope = rocket.CancelScope()
        with scope:
            yield rocket.sleep(0)
        with pytest.raises(RuntimeError, match="only once; make a new one"), scope:
            pass

    rocket.run(main(), engine=every)


def test_cancel_scope_outside_a_fiber_is_a_clear_error() -> None:
    """A CancelScope used outside rocket.run raises RuntimeError naming the problem."""
    with pytest.raises(RuntimeError, match="inside a rocket fiber"), rocket.CancelScope():
        pass


def test_cancel_scope_checks_its_arguments() -> None:
    """A deadline that is not a number, or a shield that is not a bool, is a TypeError."""
    with pytest.raises(TypeError, match="deadline"):
        rocket.CancelScope(deadline="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deadline"):
        rocket.CancelScope(deadline=math.nan)
    with pytest.raises(TypeError, match="shield"):
        rocket.CancelScope(shield=1)  # type: ignore[arg-type]


def test_misnested_scopes_raise_a_clear_error(every: Any) -> None:
    """Exiting an outer scope while an inner one is open raises RuntimeError saying so."""
    # trio test_run.py::test_cancel_scope_misnesting

    def main() -> Body:
        outer, inner = rocket.CancelScope(), rocket.CancelScope()
        outer.__enter__()
        inner.__enter__()
        with pytest.raises(RuntimeError, match="out of order"):
            outer.__exit__(None, None, None)
        inner.__exit__(None, None, None)
        yield rocket.sleep(0)
        return "went on"

    assert rocket.run(main(), engine=every) == "went on"


def test_scope_exited_by_another_fiber_is_a_clear_error(every: Any) -> None:
    """A scope exited in a fiber other than the one that entered it raises RuntimeError."""

    def main() -> Body:
        scope = rocket.CancelScope()
        scope.__enter__()

        def other() -> Body:
            with pytest.raises(RuntimeError, match="exited by the fiber that entered it"):
                scope.__exit__(None, None, None)
            yield rocket.sleep(0)

        yield rocket.join((yield rocket.spawn(other())))
        scope.__exit__(None, None, None)

    rocket.run(main(), engine=every)


# ------------------------------------------------------------------ deadlines


def test_deadline_cancels_the_block(every: Any) -> None:
    """A scope with a deadline ends its block when the executor's clock passes it."""
    # trio test_run.py::test_basic_timeout

    def main() -> Body:
        start = rocket.current_time()
        with rocket.CancelScope(deadline=start + 0.05) as scope:
            yield from _forever()
        return scope.cancelled_caught, rocket.current_time() - start >= 0.05

    assert rocket.run(main(), engine=every) == (True, True)


def test_deadline_can_be_moved_later_and_earlier(every: Any) -> None:
    """Moving a deadline later postpones the cancel; moving it into the past cancels now."""
    # trio test_run.py::test_basic_timeout (deadline moved while open)

    def main() -> Body:
        start = rocket.current_time()
        with rocket.CancelScope(deadline=start + 0.02) as scope:
            scope.deadline = start + 0.1
            yield rocket.sleep(0.05)  # the first deadline would have ended this
            late = rocket.current_time()
            scope.deadline = -math.inf
            yield rocket.sleep(10)
            raise AssertionError("not reached")
        return scope.cancelled_caught, late - start >= 0.05, scope.deadline

    assert rocket.run(main(), engine=every) == (True, True, -math.inf)


def test_fail_after_is_a_cancel_scope_with_a_movable_deadline(every: Any) -> None:
    """fail_after returns a CancelScope whose deadline can be pushed back."""

    async def main() -> bool:
        with rocket.fail_after(0.02) as scope:
            assert isinstance(scope, rocket.CancelScope)
            scope.deadline += 10
            await rocket.sleep(0.05)
        return scope.cancelled_caught

    assert rocket.run(main(), engine=every) is False


def test_move_on_after_sets_cancelled_caught(every: Any) -> None:
    """move_on_after's scope reports cancelled_caught (and timed_out) when time ran out."""

    def main() -> Body:
        with rocket.move_on_after(0.01) as scope:
            yield from _forever()
        return scope.cancelled_caught, scope.timed_out, scope.cancel_called

    assert rocket.run(main(), engine=every) == (True, True, True)


def test_current_effective_deadline(every: Any) -> None:
    """current_effective_deadline is the nearest deadline, -inf once cancelled, inf outside."""
    # trio test_run.py::test_current_effective_deadline

    def main() -> Body:
        seen = [rocket.current_effective_deadline()]
        with rocket.CancelScope(deadline=rocket.current_time() + 100) as outer:
            seen.append(rocket.current_effective_deadline() - outer.deadline)
            with rocket.CancelScope(deadline=outer.deadline + 50):
                seen.append(rocket.current_effective_deadline() - outer.deadline)
                with rocket.CancelScope(shield=True) as shielded:
                    seen.append(rocket.current_effective_deadline())
                    shielded.deadline = outer.deadline + 1
                    seen.append(rocket.current_effective_deadline() - outer.deadline)
            with rocket.CancelScope() as cancelled:
                cancelled.cancel()
                seen.append(rocket.current_effective_deadline())
                yield rocket.sleep(0)
        seen.append(rocket.current_effective_deadline())
        return seen

    assert rocket.run(main(), engine=every) == [
        math.inf,
        0.0,
        0.0,
        math.inf,
        1.0,
        -math.inf,
        math.inf,
    ]


# --------------------------------------------------------------------- shield


def test_shield_keeps_a_plain_cancel_out_until_the_block_ends(every: Any) -> None:
    """A shielded block finishes its waits; the fiber's cancel lands at the next one after."""
    # trio test_run.py::test_cancel_shielding

    def main() -> Body:
        steps: list[str] = []

        def worker() -> Body:
            try:
                yield rocket.sleep(10)
            except rocket.Cancelled:
                with rocket.CancelScope(shield=True):
                    yield rocket.sleep(0.05)  # cleanup that must finish
                    steps.append("cleanup done")
                raise

        def cleanup_twice() -> Body:
            with rocket.CancelScope(shield=True):
                yield rocket.sleep(0.05)
                steps.append("shielded sleep done")
            steps.append("after the shield")
            yield rocket.sleep(10)
            steps.append("not reached")

        first = yield rocket.spawn(worker())
        second = yield rocket.spawn(cleanup_twice())
        yield rocket.sleep(0.01)
        first.cancel()
        second.cancel()
        for handle in (first, second):
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
        return steps

    assert sorted(rocket.run(main(), engine=every)) == [
        "after the shield",
        "cleanup done",
        "shielded sleep done",
    ]


def test_shield_keeps_an_outer_deadline_out(every: Any) -> None:
    """An outer scope's deadline does not cut a shielded block; it lands right after it."""

    async def main() -> list[str]:
        steps = []
        with rocket.move_on_after(0.01) as outer:
            with rocket.CancelScope(shield=True):
                await rocket.sleep(0.05)
                steps.append("shielded done")
            steps.append("between")
            await rocket.sleep(10)
            steps.append("not reached")
        steps.append(f"caught={outer.cancelled_caught}")
        return steps

    assert rocket.run(main(), engine=every) == ["shielded done", "between", "caught=True"]


def test_shielded_scope_can_still_cancel_itself(every: Any) -> None:
    """shield=True keeps out cancels from outside, not the scope's own (or an inner one's)."""

    def main() -> Body:
        with rocket.CancelScope(shield=True, deadline=rocket.current_time() + 0.01) as scope:
            yield from _forever()
        with rocket.CancelScope(shield=True), rocket.move_on_after(0.01) as inner:
            yield from _forever()
        return scope.cancelled_caught, inner.cancelled_caught

    assert rocket.run(main(), engine=every) == (True, True)


def test_shield_taken_away_lets_the_held_cancel_in(every: Any) -> None:
    """Setting shield = False inside the block delivers the cancel that was held back."""

    def main() -> Body:
        def worker() -> Body:
            with rocket.CancelScope(shield=True) as scope:
                yield rocket.sleep(0.05)
                scope.shield = False
                yield rocket.sleep(10)
                return "not reached"

        handle = yield rocket.spawn(worker())
        yield rocket.sleep(0.01)
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return "cancelled after the shield went"

    assert rocket.run(main(), engine=every) == "cancelled after the shield went"


def test_shield_entered_with_a_cancel_pending_holds_it(every: Any) -> None:
    """A cancel asked for just before a shielded block waits until the block has ended."""

    def main() -> Body:
        me = yield rocket.current()
        me.cancel()  # pending: would be thrown at the next request
        with rocket.CancelScope(shield=True):
            yield rocket.sleep(0.01)  # not interrupted
        try:
            yield rocket.sleep(10)
        except rocket.Cancelled:
            return "cancelled after the shield"
        return "not cancelled"

    assert rocket.run(main(), engine=every) == "cancelled after the shield"


# ----------------------------------------------------------- cancel messages


@pytest.mark.parametrize("state", ["parked", "blocked", "runnable"])
def test_cancel_message_reaches_the_cancelled_fiber_and_its_joiner(every: Any, state: str) -> None:
    """handle.cancel(msg=...) puts the message into the Cancelled, wherever the fiber waits."""
    # asyncio test_tasks.py::test_cancel_with_message_then_future_result

    def main() -> Body:
        seen: list[str] = []

        def child() -> Body:
            try:
                if state == "parked":
                    yield from _forever()
                elif state == "blocked":
                    yield rocket.sleep(10)
                else:
                    yield rocket.yield_now()
                    yield rocket.yield_now()
            except rocket.Cancelled as exc:
                seen.append(str(exc))
                raise

        handle = yield rocket.spawn(child())
        if state != "runnable":
            yield rocket.sleep(0.001)
        handle.cancel(msg="shutting down")
        with pytest.raises(rocket.Cancelled, match="shutting down"):
            yield rocket.join(handle)
        return seen

    assert rocket.run(main(), engine=every) == ["shutting down"]


def test_cancel_message_must_be_a_string(engine: str) -> None:
    """handle.cancel(msg=...) with a non-string is a TypeError."""

    def main() -> Body:
        handle = yield rocket.spawn(_forever())
        with pytest.raises(TypeError, match="msg must be a str"):
            handle.cancel(msg=42)
        handle.cancel()

    rocket.run(main(), engine=engine)


def test_shield_around_a_taskgroup_keeps_its_children_running(every: Any) -> None:
    """A fiber cancelled inside a shielded TaskGroup does not cancel the group's children."""

    async def child(log: list[str]) -> None:
        await rocket.sleep(0.05)
        log.append("child finished")

    async def worker(log: list[str]) -> None:
        with rocket.CancelScope(shield=True):
            async with rocket.TaskGroup() as tg:
                tg.spawn(child, log)
        log.append("group done")
        await rocket.sleep(10)

    async def main() -> list[str]:
        log: list[str] = []
        handle = await rocket.spawn(worker, log)
        await rocket.sleep(0.01)
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            await rocket.join(handle)
        return log

    assert rocket.run(main(), engine=every) == ["child finished", "group done"]


def test_cancel_scope_repr_says_its_state(every: Any) -> None:
    """A scope's repr tells whether it is unentered, active or cancelled, and its shield."""
    # trio test_run.py::test_cancel_scope_repr

    def main() -> Body:
        scope = rocket.CancelScope(shield=True)
        seen = [repr(scope)]
        with scope:
            seen.append(repr(scope))
            scope.cancel()
            seen.append(repr(scope))
            yield rocket.sleep(0)
        return seen

    first, active, cancelled = rocket.run(main(), engine=every)
    assert "unentered" in first
    assert "shield" in first
    assert "active" in active
    assert "cancelled" in cancelled


def test_shield_turned_on_in_the_block_holds_a_pending_cancel(every: Any) -> None:
    """scope.shield = True inside the block holds back a cancel that was not thrown yet."""

    async def main() -> str:
        me = await rocket.current()
        with rocket.CancelScope() as scope:
            me.cancel()
            scope.shield = True
            await rocket.sleep(0.01)  # not interrupted
        try:
            await rocket.sleep(10)
        except rocket.Cancelled:
            return "cancelled after the block"
        return "not cancelled"

    assert rocket.run(main(), engine=every) == "cancelled after the block"
