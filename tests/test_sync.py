"""Event, Lock, Semaphore, Condition, Queue: behaviour, fairness, cancellation, bad use."""

from __future__ import annotations

import queue as stdlib_queue
from collections.abc import Generator
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]


def _run_all(engine: str, *bodies: Any) -> list[Any]:
    """Run the bodies as fibers started in this order; return their results."""

    def main() -> Body:
        return (yield rocket.gather(*bodies))

    result: list[Any] = rocket.run(main(), engine=engine)
    return result


# ------------------------------------------------------------------ Event


def test_event_wakes_every_waiter_in_arrival_order(engine: str) -> None:
    """set() wakes all waiters, first come first served; waiting on a set event returns at once."""
    event = rocket.Event()
    order: list[int] = []

    def waiter(i: int) -> Body:
        yield event.wait()
        order.append(i)

    def setter() -> Body:
        for _ in range(3):
            yield rocket.yield_now()
        assert not event.is_set()
        event.set()
        assert event.is_set()
        yield event.wait()  # already set: no wait
        event.clear()
        assert not event.is_set()

    _run_all(engine, *(waiter(i) for i in range(5)), setter())
    assert order == [0, 1, 2, 3, 4]


def test_event_wait_in_async_fiber(engine: str) -> None:
    """await event.wait() works in an async def fiber."""
    event = rocket.Event()

    async def waiter() -> str:
        await event.wait()
        return "woken"

    async def setter() -> None:
        await rocket.sleep(0.001)
        event.set()

    assert _run_all(engine, waiter(), setter()) == ["woken", None]


def test_waiting_forever_on_an_event_is_a_deadlock(engine: str) -> None:
    """An event nobody sets: run raises Deadlock naming event.wait() instead of hanging."""

    def main() -> Body:
        yield rocket.Event().wait()

    with pytest.raises(rocket.Deadlock, match=r"event\.wait\(\)"):
        rocket.run(main(), engine=engine)


# ------------------------------------------------------------------- Lock


def test_lock_excludes_and_serves_in_arrival_order(engine: str) -> None:
    """Holders never overlap, even across I/O, and get the lock in the order they asked."""
    lock = rocket.Lock()
    inside: list[int] = []
    order: list[int] = []

    def worker(i: int) -> Body:
        with (yield lock.acquire()):
            inside.append(i)
            assert len(inside) == 1
            order.append(i)
            yield rocket.sleep(0.001)
            inside.remove(i)

    _run_all(engine, *(worker(i) for i in range(6)))
    assert order == list(range(6))
    assert not lock.locked()


def test_async_with_lock(engine: str) -> None:
    """async with lock takes and releases it around the block."""
    lock = rocket.Lock()

    async def worker(i: int) -> bool:
        async with lock:
            await rocket.sleep(0.001)
            return lock.locked()

    assert _run_all(engine, worker(1), worker(2)) == [True, True]
    assert not lock.locked()


def test_lock_misuse_raises_runtimeerror(engine: str) -> None:
    """Releasing a lock one does not hold, re-acquiring it, or 'with lock' without acquire fail."""
    lock = rocket.Lock()
    errors: list[str] = []

    def holder() -> Body:
        yield lock.acquire()
        try:
            yield lock.acquire()
        except RuntimeError as exc:
            errors.append(str(exc))
        yield rocket.sleep(0.01)
        lock.release()

    def intruder() -> Body:
        yield rocket.yield_now()
        try:
            lock.release()
        except RuntimeError as exc:
            errors.append(str(exc))
        try:
            with lock:
                pass
        except RuntimeError as exc:
            errors.append(str(exc))

    _run_all(engine, holder(), intruder())
    assert "not reentrant" in errors[0]
    assert "cannot release a lock held by" in errors[1]
    assert "take the lock first" in errors[2]


def test_cancelled_lock_waiter_leaves_and_next_one_gets_it(engine: str) -> None:
    """A fiber cancelled while waiting for the lock never gets it; the next waiter does."""
    lock = rocket.Lock()
    got: list[str] = []

    def worker(name: str) -> Body:
        with (yield lock.acquire()):
            got.append(name)
            yield rocket.sleep(0.005)

    def main() -> Body:
        first = yield rocket.spawn(worker("first"))
        second = yield rocket.spawn(worker("second"))
        third = yield rocket.spawn(worker("third"))
        yield rocket.yield_now()
        second.cancel()
        yield rocket.join(first)
        yield rocket.join(third)
        return second.cancelled()

    assert rocket.run(main(), engine=engine) is True
    assert got == ["first", "third"]
    assert not lock.locked()


def test_lock_handed_to_a_fiber_cancelled_before_it_ran_is_released(engine: str) -> None:
    """Cancelled after being handed the lock: it holds it, Cancelled comes, 'with' releases it."""
    lock = rocket.Lock()
    log: list[str] = []

    def waiter() -> Body:
        with (yield lock.acquire()):
            log.append("got the lock")
            yield rocket.yield_now()  # Cancelled is raised here
            log.append("not reached")

    def main() -> Body:
        yield lock.acquire()
        handle = yield rocket.spawn(waiter())
        yield rocket.yield_now()
        lock.release()  # handed to the waiter, which has not run yet
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return lock.locked()

    assert rocket.run(main(), engine=engine) is False
    assert log == ["got the lock"]


# -------------------------------------------------------------- Semaphore


def test_semaphore_bounds_concurrency_and_is_fifo(engine: str) -> None:
    """At most 2 holders at once, served in arrival order."""
    sem = rocket.Semaphore(2)
    active: list[int] = []
    peak: list[int] = []
    order: list[int] = []

    def worker(i: int) -> Body:
        with (yield sem.acquire()):
            order.append(i)
            active.append(i)
            peak.append(len(active))
            yield rocket.sleep(0.002)
            active.remove(i)

    _run_all(engine, *(worker(i) for i in range(7)))
    assert max(peak) == 2
    assert order == list(range(7))
    assert sem.value == 2


def test_semaphore_is_bounded_and_checks_arguments(engine: str) -> None:
    """Releasing more than acquired is a ValueError; bad initial values are refused."""
    sem = rocket.Semaphore(1)

    def main() -> Body:
        yield sem.acquire()
        sem.release()
        with pytest.raises(ValueError, match="released more times than acquired"):
            sem.release()

    rocket.run(main(), engine=engine)
    with pytest.raises(ValueError, match=">= 0"):
        rocket.Semaphore(-1)
    with pytest.raises(TypeError, match="must be an int"):
        rocket.Semaphore(1.5)  # type: ignore[arg-type]


# -------------------------------------------------------------- Condition


def test_condition_notify_wakes_in_order_holding_the_lock(engine: str) -> None:
    """notify(1) wakes the oldest waiter, which returns holding the lock; notify_all the rest."""
    cond = rocket.Condition()
    woke: list[tuple[int, bool]] = []

    def waiter(i: int) -> Body:
        with (yield cond.acquire()):
            yield cond.wait()
            woke.append((i, cond.lock.locked()))

    def notifier() -> Body:
        yield rocket.sleep(0.001)
        with (yield cond.acquire()):
            cond.notify()
        yield rocket.sleep(0.001)
        assert [i for i, _ in woke] == [0]
        with (yield cond.acquire()):
            cond.notify_all()

    _run_all(engine, *(waiter(i) for i in range(4)), notifier())
    assert woke == [(0, True), (1, True), (2, True), (3, True)]
    assert not cond.lock.locked()


def test_condition_wait_for_predicate_async(engine: str) -> None:
    """await cond.wait_for(pred) returns once pred() is true after a notify."""
    cond = rocket.Condition()
    items: list[int] = []

    async def consumer() -> int:
        async with cond:
            await cond.wait_for(lambda: len(items) >= 3)
            return sum(items)

    async def producer() -> None:
        for i in range(1, 4):
            await rocket.sleep(0.001)
            async with cond:
                items.append(i)
                cond.notify_all()

    assert _run_all(engine, consumer(), producer()) == [6, None]


def test_condition_cancelled_waiter_retakes_lock_before_raising(engine: str) -> None:
    """Cancelled in cond.wait(): the fiber holds the lock when Cancelled reaches it."""
    cond = rocket.Condition()
    seen: list[bool] = []

    def waiter() -> Body:
        with (yield cond.acquire()):
            try:
                yield cond.wait()
            except rocket.Cancelled:
                seen.append(cond.lock.locked())
                raise

    def main() -> Body:
        handle = yield rocket.spawn(waiter())
        yield rocket.yield_now()
        with (yield cond.acquire()):  # the waiter released it in wait()
            handle.cancel()
            yield rocket.sleep(0.002)
            assert seen == []  # it must wait for the lock first
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return cond.lock.locked()

    assert rocket.run(main(), engine=engine) is False
    assert seen == [True]


def test_condition_needs_the_lock(engine: str) -> None:
    """wait() or notify() without holding the lock raise RuntimeError."""

    def main() -> Body:
        cond = rocket.Condition(rocket.Lock())
        with pytest.raises(RuntimeError, match="needs the lock"):
            yield cond.wait()
        with pytest.raises(RuntimeError, match="needs the lock"):
            cond.notify()

    rocket.run(main(), engine=engine)
    with pytest.raises(TypeError, match=r"rocket\.Lock"):
        rocket.Condition(object())  # type: ignore[arg-type]


# ------------------------------------------------------------------ Queue


def test_bounded_queue_keeps_order_and_blocks_producer(engine: str) -> None:
    """A maxsize-2 queue delivers 0..19 in order; the producer never runs more than 2 ahead."""
    q: rocket.Queue[int | None] = rocket.Queue(2)
    ahead: list[int] = []

    def producer() -> Body:
        for i in range(20):
            yield q.put(i)
            ahead.append(q.qsize())
        yield q.put(None)

    def consumer() -> Body:
        out = []
        while (item := (yield q.get())) is not None:
            out.append(item)
            yield rocket.sleep(0.0005)
        return out

    assert _run_all(engine, producer(), consumer())[1] == list(range(20))
    assert max(ahead) <= 2


def test_queue_getters_are_served_in_order(engine: str) -> None:
    """Items go to waiting getters first come first served."""
    q: rocket.Queue[str] = rocket.Queue()

    def getter() -> Body:
        return (yield q.get())

    def putter() -> Body:
        yield rocket.yield_now()
        for item in "abc":
            q.put_nowait(item)

    assert _run_all(engine, getter(), getter(), getter(), putter()) == ["a", "b", "c", None]


def test_queue_nowait_raises_stdlib_full_and_empty(engine: str) -> None:
    """put_nowait on a full queue raises queue.Full; get_nowait on an empty one queue.Empty."""

    def main() -> Body:
        q: rocket.Queue[int] = rocket.Queue(1)
        with pytest.raises(stdlib_queue.Empty):
            q.get_nowait()
        q.put_nowait(1)
        assert q.full()
        with pytest.raises(stdlib_queue.Full):
            q.put_nowait(2)
        yield rocket.yield_now()
        return q.get_nowait(), q.empty()

    assert rocket.run(main(), engine=engine) == (1, True)
    with pytest.raises(ValueError, match=">= 0"):
        rocket.Queue(-1)


def test_cancelled_getter_takes_no_item_and_cancelled_putter_adds_none(engine: str) -> None:
    """Cancelled waiters leave the queue untouched."""
    q: rocket.Queue[str] = rocket.Queue(1)

    def getter() -> Body:
        return (yield q.get())

    def putter(item: str) -> Body:
        yield q.put(item)

    def main() -> Body:
        g = yield rocket.spawn(getter())
        yield rocket.yield_now()
        g.cancel()
        q.put_nowait("first")  # the cancelled getter must not take it
        p = yield rocket.spawn(putter("second"))
        yield rocket.yield_now()  # parked: the queue is full
        p.cancel()
        yield rocket.yield_now()
        items = [q.get_nowait()]
        return items, q.empty(), g.cancelled(), p.cancelled()

    assert rocket.run(main(), engine=engine) == (["first"], True, True, True)


def test_item_handed_to_cancelled_getter_is_delivered_not_lost(engine: str) -> None:
    """A getter handed an item, then cancelled before it ran, still receives the item."""
    q: rocket.Queue[str] = rocket.Queue()
    received: list[str] = []

    def getter() -> Body:
        received.append((yield q.get()))
        yield rocket.yield_now()  # Cancelled is raised here

    def main() -> Body:
        handle = yield rocket.spawn(getter())
        yield rocket.yield_now()
        q.put_nowait("precious")
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)

    rocket.run(main(), engine=engine)
    assert received == ["precious"]


# --------------------------------------- notify and bound rules (issue 10)


def test_notify_taken_by_a_waiter_cancelled_at_once_passes_to_the_next(engine: str) -> None:
    """A notified waiter cancelled before it re-took the lock hands the notify on."""
    cond = rocket.Condition()
    woke: list[str] = []

    def waiter(name: str) -> Body:
        with (yield cond.acquire()):
            yield cond.wait()
            woke.append(name)

    def main() -> Body:
        first = yield rocket.spawn(waiter("first"))
        yield rocket.spawn(waiter("second"))
        third = yield rocket.spawn(waiter("third"))
        yield rocket.yield_now()  # all three wait
        with (yield cond.acquire()):
            cond.notify()  # for "first" ...
            first.cancel()  # ... which is cancelled before it can take the lock
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(first)
        for _ in range(3):
            yield rocket.yield_now()
        assert woke == ["second"]  # exactly one notify: "third" still waits
        third.cancel()

    rocket.run(main(), engine=engine)
    assert woke == ["second"]


def test_notify_to_a_waiter_timed_out_at_once_passes_to_the_next(engine: str) -> None:
    """A waiter whose move_on_after fires after it was notified does not swallow the notify."""
    cond = rocket.Condition()
    log: list[str] = []

    def waiter(name: str, timeout: float) -> Body:
        with (yield cond.acquire()):
            with rocket.move_on_after(timeout) as scope:
                yield cond.wait()
            log.append(f"{name} timed out" if scope.timed_out else f"{name} notified")

    def main() -> Body:
        yield rocket.spawn(waiter("first", 0.02))
        second = yield rocket.spawn(waiter("second", 30))
        yield rocket.yield_now()
        with (yield cond.acquire()):
            cond.notify()
            yield rocket.sleep(0.05)  # holding the lock past first's deadline
        with rocket.fail_after(2):
            yield rocket.join(second)

    rocket.run(main(), engine=engine)
    assert log == ["first timed out", "second notified"]


def test_semaphore_over_release_with_waiters_queued_is_a_valueerror(engine: str) -> None:
    """Releasing twice what one acquire took raises, even when the first release woke a waiter."""
    sem = rocket.Semaphore(1)
    inside: list[str] = []

    def waiter(name: str) -> Body:
        with (yield sem.acquire()):
            inside.append(name)
            yield rocket.sleep(0.01)
            inside.remove(name)

    def main() -> Body:
        yield sem.acquire()
        a = yield rocket.spawn(waiter("a"))
        b = yield rocket.spawn(waiter("b"))
        yield rocket.yield_now()
        sem.release()  # hands the slot to "a"
        with pytest.raises(ValueError, match="released more times than acquired"):
            sem.release()  # nothing left to release: "b" must not get in too
        yield rocket.yield_now()
        assert inside == ["a"]
        yield rocket.gather(a, b)
        return sem.value

    assert rocket.run(main(), engine=engine) == 1


def test_semaphore_release_by_a_fiber_holding_no_slot_is_a_valueerror(engine: str) -> None:
    """Only a fiber that acquired a slot can release one; the holder's slot stays taken."""
    sem = rocket.Semaphore(2)

    def intruder() -> Body:
        sem.release()
        yield rocket.yield_now()

    def main() -> Body:
        yield sem.acquire()
        with pytest.raises(ValueError, match="holds no slot"):
            yield rocket.join((yield rocket.spawn(intruder())))
        assert sem.value == 1
        sem.release()
        return sem.value

    assert rocket.run(main(), engine=engine) == 2


def test_plain_with_semaphore_without_acquire_is_a_runtimeerror(engine: str) -> None:
    """'with sem:' without acquiring raises RuntimeError: no body run, no slot freed."""
    sem = rocket.Semaphore(1)
    ran: list[bool] = []

    def holder(go: rocket.Event) -> Body:
        with (yield sem.acquire()):
            yield go.wait()

    def main() -> Body:
        go = rocket.Event()
        handle = yield rocket.spawn(holder(go))
        yield rocket.yield_now()
        with pytest.raises(RuntimeError, match=r"with \(yield sem\.acquire\(\)\)"), sem:
            ran.append(True)
        assert sem.value == 0  # the holder's slot was not released
        go.set()
        yield rocket.join(handle)
        with (yield sem.acquire()):  # acquiring first works
            ran.append(False)
        async_ok = yield rocket.spawn(_async_with_sem(sem))
        yield rocket.join(async_ok)
        return sem.value

    assert rocket.run(main(), engine=engine) == 1
    assert ran == [False]


async def _async_with_sem(sem: rocket.Semaphore) -> None:
    async with sem:
        assert sem.value == 0
