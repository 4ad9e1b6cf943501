"""The peers' own checks of Event, Lock, Semaphore, Condition and Queue, run against rocket.

Each test says which peer test it follows: CPython ``Lib/test/test_asyncio/
test_locks.py`` and ``test_queues.py`` (asyncio), curio ``tests/test_sync.py``
and ``tests/test_queue.py``, trio ``src/trio/_tests/test_sync.py``. They are
ported in meaning, in rocket's terms: ``asyncio.sleep(0)`` / trio's
``wait_all_tasks_blocked()`` become ``rocket.yield_now()`` (every fiber
waiting on a primitive has parked by then), and tasks become fibers.

Where rocket deliberately differs, the test checks rocket's rule and says so
(``Differs:``): a lock or semaphore slot is released only by the fiber that
holds it; a released lock, slot or item is handed straight to the first
waiter; the releasing fiber runs on until its next request.
"""

from __future__ import annotations

import queue as stdlib_queue
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import pytest
from fiber_helpers import do, settle

import rocket

Body = Generator[Any, Any, Any]


# ------------------------------------------------------------------ Event


def test_event_set_wakes_waiters_and_a_late_waiter_returns_at_once(engine: str) -> None:
    """Two parked waiters and one started just before set() all return; the late one first."""
    # asyncio EventTests.test_wait; trio test_Event
    event = rocket.Event()
    result: list[int] = []

    def waiter(i: int) -> Body:
        yield event.wait()
        result.append(i)

    def main() -> Body:
        t1 = yield rocket.spawn(waiter(1))
        t2 = yield rocket.spawn(waiter(2))
        yield from settle()
        assert result == []
        t3 = yield rocket.spawn(waiter(3))
        event.set()
        yield rocket.gather(t1, t2, t3)
        return result

    assert rocket.run(main(), engine=engine) == [3, 1, 2]


def test_event_clear_after_set_still_wakes_the_waiter(engine: str) -> None:
    """set() then clear() before the waiter ran: it was woken and returns; no waiter is left."""
    # asyncio EventTests.test_clear_with_waiters
    event = rocket.Event()

    def main() -> Body:
        handle = yield rocket.spawn(do(event.wait()))
        yield from settle()
        event.set()
        event.clear()
        assert not event.is_set()
        event.set()
        event.set()
        yield rocket.join(handle)
        return repr(event)

    assert "waiters=0" in rocket.run(main(), engine=engine)


def test_event_wait_cancelled_and_timed_out_leave_no_waiter(engine: str) -> None:
    """A cancelled or timed-out event.wait() raises and leaves the wait list."""
    # asyncio EventTests.test_wait_cancel; curio TestEvent.test_event_wait_cancel,
    # test_event_wait_timeout
    event = rocket.Event()

    def main() -> Body:
        handle = yield rocket.spawn(do(event.wait()))
        yield from settle()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        with rocket.move_on_after(0.01) as scope:
            yield event.wait()
        assert scope.timed_out
        return repr(event)

    assert "waiters=0" in rocket.run(main(), engine=engine)


def test_event_wait_with_a_timeout_that_does_not_fire(engine: str) -> None:
    """A wait under a long timeout returns when set; after clear() it waits again."""
    # curio TestEvent.test_event_wait_notimeout
    event = rocket.Event()
    log: list[str] = []

    def waiter() -> Body:
        with rocket.fail_after(5):
            yield event.wait()
        log.append("got event")
        event.clear()
        yield event.wait()
        log.append("got event again")

    def main() -> Body:
        handle = yield rocket.spawn(waiter())
        yield from settle()
        event.set()
        yield from settle()
        assert log == ["got event"]
        event.set()
        yield rocket.join(handle)

    rocket.run(main(), engine=engine)
    assert log == ["got event", "got event again"]


# ------------------------------------------------------------------- Lock


def test_lock_is_handed_to_waiters_in_fifo_order(engine: str) -> None:
    """Each release gives the lock to the oldest waiter, one at a time."""
    # asyncio LockTests.test_acquire. Differs: each waiter releases its own lock
    # (asyncio's test releases them from the main task; rocket forbids that).
    lock = rocket.Lock()
    result: list[int] = []
    go = {i: rocket.Event() for i in (1, 2, 3)}

    def worker(i: int) -> Body:
        with (yield lock.acquire()):
            result.append(i)
            yield go[i].wait()

    def main() -> Body:
        yield lock.acquire()
        t1 = yield rocket.spawn(worker(1))
        t2 = yield rocket.spawn(worker(2))
        yield from settle()
        assert result == []
        lock.release()
        yield from settle()
        assert result == [1]
        t3 = yield rocket.spawn(worker(3))
        go[1].set()
        yield from settle()
        assert result == [1, 2]
        go[2].set()
        yield from settle()
        assert result == [1, 2, 3]
        go[3].set()
        yield rocket.gather(t1, t2, t3)
        return lock.locked()

    assert rocket.run(main(), engine=engine) is False


def test_lock_cancelled_waiter_leaves_the_wait_list(engine: str) -> None:
    """A cancelled acquire raises Cancelled and leaves no waiter behind."""
    # asyncio LockTests.test_acquire_cancel; curio TestLock.test_lock_acquire_cancel
    lock = rocket.Lock()

    def main() -> Body:
        with (yield lock.acquire()):
            handle = yield rocket.spawn(do(lock.acquire()))
            yield from settle()
            handle.cancel()
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
            assert "waiters=0" in repr(lock)
        return lock.locked()

    assert rocket.run(main(), engine=engine) is False


def test_lock_acquire_timeout(engine: str) -> None:
    """An acquire cut short by a timeout takes nothing; the holder keeps the lock."""
    # curio TestLock.test_lock_acquire_timeout
    lock = rocket.Lock()
    log: list[str] = []

    def worker() -> Body:
        with rocket.move_on_after(0.01) as scope:
            yield lock.acquire()
            log.append("never here")
        if scope.timed_out:
            log.append("lock_timeout")

    def main() -> Body:
        with (yield lock.acquire()):
            yield rocket.join((yield rocket.spawn(worker())))
            assert lock.locked()
        return log

    assert rocket.run(main(), engine=engine) == ["lock_timeout"]


def test_lock_waiter_cancelled_as_the_lock_is_released_passes_it_on(engine: str) -> None:
    """B is cancelled and A releases at once: C gets the lock, and in the end it is free."""
    # asyncio LockTests.test_cancel_race and test_finished_waiter_cancelled
    lock = rocket.Lock()
    got: list[str] = []

    def lockit(name: str, blocker: rocket.Event | None) -> Body:
        with (yield lock.acquire()):
            got.append(name)
            if blocker is not None:
                yield blocker.wait()

    def main() -> Body:
        fa = rocket.Event()
        ta = yield rocket.spawn(lockit("A", fa))
        yield from settle()
        tb = yield rocket.spawn(lockit("B", None))
        tc = yield rocket.spawn(lockit("C", None))
        yield from settle()
        fa.set()
        tb.cancel()
        yield rocket.join(ta)
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(tb)
        yield rocket.join(tc)
        return got, lock.locked()

    assert rocket.run(main(), engine=engine) == (["A", "C"], False)


def test_lock_cancel_and_release_together_let_exactly_one_waiter_in(engine: str) -> None:
    """Cancel the first of three waiters and release in one step: only the second gets it."""
    # asyncio LockTests.test_cancel_release_race (bpo-32734)
    lock = rocket.Lock()
    counts = {"calls": 0, "locked": 0}

    def lockit() -> Body:
        counts["calls"] += 1
        yield lock.acquire()
        counts["locked"] += 1

    def main() -> Body:
        yield lock.acquire()
        t1 = yield rocket.spawn(lockit())
        t2 = yield rocket.spawn(lockit())
        t3 = yield rocket.spawn(lockit())
        yield from settle()
        t1.cancel()
        lock.release()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(t1)
        yield rocket.join(t2)
        yield from settle()
        assert counts == {"calls": 3, "locked": 1}
        assert not t3.done()
        t3.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(t3)

    rocket.run(main(), engine=engine)


def test_lock_misuse_is_a_runtimeerror(engine: str) -> None:
    """Releasing an unheld lock, re-acquiring it, releasing another's, plain 'with' all raise."""
    # asyncio LockTests.test_release_not_acquired, test_context_manager_no_yield (3.4);
    # trio test_Lock_and_StrictFIFOLock
    lock = rocket.Lock()

    def holder(go: rocket.Event) -> Body:
        with (yield lock.acquire()):
            yield go.wait()

    def main() -> Body:
        with pytest.raises(RuntimeError):
            lock.release()
        with pytest.raises(RuntimeError), lock:
            pytest.fail("the body of a plain 'with lock:' ran")
        assert not lock.locked()
        yield lock.acquire()
        with pytest.raises(RuntimeError):
            yield lock.acquire()  # not reentrant
        lock.release()
        go = rocket.Event()
        handle = yield rocket.spawn(holder(go))
        yield from settle()
        assert lock.locked()
        with pytest.raises(RuntimeError):
            lock.release()  # someone else's
        go.set()
        yield rocket.join(handle)
        return lock.locked()

    assert rocket.run(main(), engine=engine) is False


def test_lock_sequence_of_three_workers(engine: str) -> None:
    """Three workers take the lock in turn, in the order they asked."""
    # curio TestLock.test_lock_sequence. Differs: rocket's releasing fiber runs on
    # ("work1 release") before the next holder runs ("work2 acquire").
    lock = rocket.Lock()
    results: list[Any] = []

    async def worker(label: str) -> None:
        results.append(label + " wait")
        results.append(lock.locked())
        async with lock:
            results.append(label + " acquire")
            await rocket.sleep(0.01)
        results.append(label + " release")

    async def main() -> None:
        await rocket.gather(worker("work1"), worker("work2"), worker("work3"))

    rocket.run(main(), engine=engine)
    assert results == [
        "work1 wait",
        False,
        "work1 acquire",
        "work2 wait",
        True,
        "work3 wait",
        True,
        "work1 release",
        "work2 acquire",
        "work2 release",
        "work3 acquire",
        "work3 release",
    ]


# -------------------------------------------- generic lock tests (trio's)


def _lock_factories() -> list[Callable[[], Any]]:
    return [rocket.Lock, lambda: rocket.Semaphore(1), rocket.Condition]


@pytest.mark.parametrize("factory", _lock_factories(), ids=["Lock", "Semaphore(1)", "Condition"])
def test_generic_lock_exclusion(engine: str, factory: Callable[[], Any]) -> None:
    """Five workers taking the lock ten times each: never two inside at once."""
    # trio test_generic_lock_exclusion
    lock_like = factory()
    state: dict[str, Any] = {"inside": False, "acquires": 0}

    async def worker() -> None:
        for _ in range(10):
            async with lock_like:
                state["acquires"] += 1
                assert not state["inside"]
                state["inside"] = True
                await rocket.yield_now()
                await rocket.yield_now()
                assert state["inside"]
                state["inside"] = False

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            for _ in range(5):
                tg.spawn(worker())

    rocket.run(main(), engine=engine)
    assert state == {"inside": False, "acquires": 50}


@pytest.mark.parametrize("factory", _lock_factories(), ids=["Lock", "Semaphore(1)", "Condition"])
def test_generic_lock_fifo_fairness(engine: str, factory: Callable[[], Any]) -> None:
    """Workers looping on one lock get it round-robin, in their starting order."""
    # trio test_generic_lock_fifo_fairness. Differs: taking a free rocket lock is not
    # a schedule point (as in asyncio; trio's acquire is a checkpoint), so each
    # worker yields once inside, letting the others queue up.
    lock_like = factory()
    initial_order: list[int] = []
    record: list[int] = []

    async def loopy(name: int) -> None:
        initial_order.append(name)
        for _ in range(5):
            async with lock_like:
                record.append(name)
                await rocket.yield_now()

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            for name in (1, 2, 3):
                tg.spawn(loopy(name))

    rocket.run(main(), engine=engine)
    for i in range(5):
        assert record[3 * i : 3 * (i + 1)] == initial_order


@pytest.mark.parametrize("factory", _lock_factories(), ids=["Lock", "Semaphore(1)", "Condition"])
def test_generic_lock_taken_blocks_acquire(engine: str, factory: Callable[[], Any]) -> None:
    """While main holds the lock, another fiber's acquire waits until it is released."""
    # trio test_generic_lock_acquire_nowait_blocks_acquire
    lock_like = factory()
    record: list[str] = []

    async def lock_taker() -> None:
        record.append("started")
        async with lock_like:
            pass
        record.append("finished")

    async def main() -> None:
        await lock_like.acquire()
        handle = await rocket.spawn(lock_taker())
        for _ in range(3):
            await rocket.yield_now()
        assert record == ["started"]
        lock_like.release()
        await rocket.join(handle)

    rocket.run(main(), engine=engine)
    assert record == ["started", "finished"]


# -------------------------------------------------------------- Semaphore


def test_semaphore_hands_freed_slots_to_waiters_without_barging(engine: str) -> None:
    """Semaphore(3): two taken, one more fiber gets in, the rest wait; releases hand slots over."""
    # asyncio SemaphoreTests.test_acquire; trio test_Semaphore (fairness).
    # Differs: the last waiter is cancelled at the end instead of being let in by a
    # release from a fiber holding no slot.
    sem = rocket.Semaphore(3)
    result: list[int] = []

    def taker(i: int) -> Body:
        yield sem.acquire()
        result.append(i)

    def main() -> Body:
        yield sem.acquire()
        yield sem.acquire()
        assert sem.value == 1
        t1 = yield rocket.spawn(taker(1))
        t2 = yield rocket.spawn(taker(2))
        t3 = yield rocket.spawn(taker(3))
        yield from settle()
        assert result == [1]
        assert sem.value == 0
        assert "waiters=2" in repr(sem)
        t4 = yield rocket.spawn(taker(4))
        sem.release()
        sem.release()
        assert sem.value == 0  # handed over: a newcomer cannot barge in
        yield rocket.gather(t1, t2, t3)
        assert result == [1, 2, 3]
        assert "waiters=1" in repr(sem)
        t4.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(t4)
        return sem.value

    assert rocket.run(main(), engine=engine) == 0


def test_semaphore_cancelled_waiters_take_no_slot(engine: str) -> None:
    """Waiters cancelled before a release take nothing: the next live waiter gets the slot."""
    # asyncio SemaphoreTests.test_acquire_cancel, test_acquire_cancel_before_awoken,
    # test_acquire_hang, test_acquire_fifo_order_3. Differs: the slot comes from a
    # fiber holding it (rocket's Semaphore(0) can never be released).
    sem = rocket.Semaphore(1)
    result: list[int] = []

    def taker(i: int) -> Body:
        yield sem.acquire()
        result.append(i)

    def main() -> Body:
        yield sem.acquire()
        tasks = []
        for i in (1, 2, 3, 4):
            tasks.append((yield rocket.spawn(taker(i))))
        yield from settle()
        tasks[0].cancel()
        tasks[1].cancel()
        sem.release()
        yield from settle()
        assert result == [3]
        assert not tasks[3].done()
        assert sem.value == 0
        tasks[3].cancel()
        outcomes = []
        for task in tasks:
            try:
                yield rocket.join(task)
                outcomes.append("done")
            except rocket.Cancelled:
                outcomes.append("cancelled")
        return outcomes, repr(sem)

    outcomes, text = rocket.run(main(), engine=engine)
    assert outcomes == ["cancelled", "cancelled", "done", "cancelled"]
    assert "waiters=0" in text


def test_semaphore_no_hang_after_a_waiter_is_cancelled(engine: str) -> None:
    """A holder cancels the fiber waiting for its slot; afterwards acquire works at once."""
    # asyncio SemaphoreTests.test_acquire_no_hang; curio TestSemaphore.test_sema_acquire_cancel
    sem = rocket.Semaphore(1)

    async def c1(other: list[rocket.Fiber[Any]]) -> None:
        async with sem:
            await rocket.yield_now()
            other[0].cancel()

    async def c2() -> None:
        async with sem:
            pytest.fail("c2 got the semaphore")

    async def main() -> None:
        other: list[rocket.Fiber[Any]] = []
        t1 = await rocket.spawn(c1(other))
        t2 = await rocket.spawn(c2())
        other.append(t2)
        await rocket.join(t1)
        with pytest.raises(rocket.Cancelled):
            await rocket.join(t2)
        with rocket.fail_after(1):
            await sem.acquire()
        sem.release()

    rocket.run(main(), engine=engine)


def test_semaphore_acquire_timeout(engine: str) -> None:
    """An acquire cut short by a timeout takes no slot."""
    # curio TestSemaphore.test_sema_acquire_timeout
    sem = rocket.Semaphore()

    def worker() -> Body:
        with rocket.move_on_after(0.01) as scope:
            yield sem.acquire()
        return scope.timed_out

    def main() -> Body:
        with (yield sem.acquire()):
            timed_out = yield rocket.join((yield rocket.spawn(worker())))
            assert sem.value == 0
        return timed_out, sem.value

    assert rocket.run(main(), engine=engine) == (True, 1)


def test_semaphore_over_release_is_a_valueerror(engine: str) -> None:
    """Releasing a semaphore nobody acquired raises ValueError and changes nothing."""
    # asyncio SemaphoreTests.test_release_not_acquired (BoundedSemaphore);
    # trio test_Semaphore_bounded; curio TestSemaphore.test_bounded.
    # Differs: every rocket Semaphore is bounded by its initial value.
    sem = rocket.Semaphore(1)

    def main() -> Body:
        with pytest.raises(ValueError):
            sem.release()
        assert sem.value == 1
        yield sem.acquire()
        assert sem.value == 0
        sem.release()
        return sem.value

    assert rocket.run(main(), engine=engine) == 1


def test_semaphore_constructor_checks(engine: str) -> None:
    """A negative value is a ValueError, a float a TypeError."""
    # asyncio SemaphoreTests.test_semaphore_value; trio test_Semaphore
    with pytest.raises(ValueError):
        rocket.Semaphore(-1)
    with pytest.raises(TypeError):
        rocket.Semaphore(1.0)  # type: ignore[arg-type]


def test_semaphore_nested_async_with_and_plain_with(engine: str) -> None:
    """Nested 'async with' takes two slots and gives both back; plain 'with' raises."""
    # asyncio SemaphoreTests.test_context_manager, test_context_manager_no_yield (3.4)
    sem = rocket.Semaphore(2)

    async def main() -> int:
        async with sem:
            assert sem.value == 1
            async with sem:
                assert sem.value == 0
        with pytest.raises(RuntimeError), sem:
            pytest.fail("the body of a plain 'with sem:' ran")
        return sem.value

    assert rocket.run(main(), engine=engine) == 2


def test_semaphore_fifo_order_over_two_rounds(engine: str) -> None:
    """Three fibers taking Semaphore(1) twice each are served round-robin."""
    # asyncio SemaphoreTests.test_acquire_fifo_order
    sem = rocket.Semaphore(1)
    result: list[str] = []

    async def coro(tag: str) -> None:
        for round_ in (1, 2):
            await sem.acquire()
            result.append(f"{tag}_{round_}")
            await rocket.sleep(0.001)
            sem.release()

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            for tag in ("c1", "c2", "c3"):
                tg.spawn(coro(tag))

    rocket.run(main(), engine=engine)
    assert result == ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]


def test_semaphore_two_slots_sequence(engine: str) -> None:
    """Semaphore(2): the first two workers get in at once, the third when one leaves."""
    # curio TestSemaphore.test_sema_sequence2
    sem = rocket.Semaphore(2)
    results: list[Any] = []

    async def worker(label: str, seconds: float) -> None:
        results.append(label + " wait")
        results.append(sem.value == 0)
        async with sem:
            results.append(label + " acquire")
            await rocket.sleep(seconds)
        results.append(label + " release")

    async def main() -> None:
        await rocket.gather(worker("work1", 0.01), worker("work2", 0.03), worker("work3", 0.05))

    rocket.run(main(), engine=engine)
    assert results == [
        "work1 wait",
        False,
        "work1 acquire",
        "work2 wait",
        False,
        "work2 acquire",
        "work3 wait",
        True,
        "work1 release",
        "work3 acquire",
        "work2 release",
        "work3 release",
    ]


# -------------------------------------------------------------- Condition


def test_condition_notify_waits_for_the_release(engine: str) -> None:
    """A notified waiter runs only once the notifier releases the lock, holding it then."""
    # asyncio ConditionTests.test_wait, test_notify. Differs: each waiter releases the
    # lock itself (asyncio's test releases it from the main task).
    cond = rocket.Condition()
    result: list[int] = []

    def waiter(i: int) -> Body:
        with (yield cond.acquire()):
            yield cond.wait()
            result.append(i)
            assert cond.lock.locked()

    def main() -> Body:
        tasks = []
        for i in (1, 2, 3):
            tasks.append((yield rocket.spawn(waiter(i))))
        yield from settle()
        assert result == []
        assert not cond.lock.locked()
        with (yield cond.acquire()):
            cond.notify()
            yield from settle()
            assert result == []  # it needs the lock first
        yield from settle()
        assert result == [1]
        with (yield cond.acquire()):
            cond.notify(1)
            cond.notify(2048)
        yield rocket.gather(*tasks)
        return result, cond.lock.locked()

    assert rocket.run(main(), engine=engine) == ([1, 2, 3], False)


def test_condition_notify_all(engine: str) -> None:
    """notify_all() wakes every waiter, in order; the notifier runs on first."""
    # asyncio ConditionTests.test_notify_all; curio TestCondition.test_cond_notify_all.
    # Differs: rocket's notifier runs on ("done") before the woken waiters run.
    cond = rocket.Condition()
    results: list[str] = []

    async def worker() -> None:
        async with cond:
            results.append("cond_wait")
            await cond.wait()
            results.append("wait_done")

    async def main() -> None:
        tasks = [await rocket.spawn(worker()) for _ in range(3)]
        for _ in range(3):
            await rocket.yield_now()
        async with cond:
            results.append("notify")
            cond.notify_all()
        results.append("done")
        await rocket.gather(*tasks)

    rocket.run(main(), engine=engine)
    assert results == ["cond_wait"] * 3 + ["notify", "done"] + ["wait_done"] * 3


def test_condition_wait_cancelled_keeps_the_lock(engine: str) -> None:
    """A wait cancelled before any notify raises Cancelled holding the lock; no waiter is left."""
    # asyncio ConditionTests.test_wait_cancel; trio test_Condition (still holds the lock);
    # curio TestCondition.test_cond_wait_cancel
    cond = rocket.Condition()

    def waiter() -> Body:
        yield cond.acquire()
        yield cond.wait()

    def main() -> Body:
        handle = yield rocket.spawn(waiter())
        yield from settle()
        handle.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return repr(cond), cond.lock.locked()

    text, locked = rocket.run(main(), engine=engine)
    assert "waiters=0>" in text
    assert locked  # the cancelled fiber re-took the lock (and ended holding it)


def test_condition_wait_cancelled_after_notify_while_lock_is_contested(engine: str) -> None:
    """Notified, then cancelled before it re-took the lock: it raises Cancelled holding it."""
    # asyncio ConditionTests.test_wait_cancel_contested, test_wait_cancel_after_notify
    # (bpo-32841). Differs: asyncio may let the wait return; rocket raises Cancelled
    # at the wait (its notify passes on to the next waiter, if any).
    cond = rocket.Condition()
    waited: list[bool] = []

    def wait_on_cond() -> Body:
        with (yield cond.acquire()):
            waited.append(True)
            try:
                yield cond.wait()
            finally:
                waited.append(cond.lock.locked())

    def main() -> Body:
        handle = yield rocket.spawn(wait_on_cond())
        yield from settle()
        yield cond.acquire()
        cond.notify()
        yield from settle()
        handle.cancel()
        yield from settle()
        cond.release()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(handle)
        return cond.lock.locked()

    assert rocket.run(main(), engine=engine) is False
    assert waited == [True, True]


def test_condition_wait_for_predicate(engine: str) -> None:
    """wait_for() returns only once the predicate is true after a notify."""
    # asyncio ConditionTests.test_wait_for
    cond = rocket.Condition()
    state = {"ready": False}
    result: list[int] = []

    def waiter() -> Body:
        with (yield cond.acquire()):
            if (yield from cond.wait_for(lambda: state["ready"])):
                result.append(1)

    def main() -> Body:
        handle = yield rocket.spawn(waiter())
        yield from settle()
        with (yield cond.acquire()):
            cond.notify()
        yield from settle()
        assert result == []
        state["ready"] = True
        with (yield cond.acquire()):
            cond.notify()
        yield rocket.join(handle)
        return result

    assert rocket.run(main(), engine=engine) == [1]


def test_condition_wait_for_true_predicate_needs_no_lock(engine: str) -> None:
    """wait_for() with a predicate already true returns its value; a false one needs the lock."""
    # asyncio ConditionTests.test_wait_for_unacquired
    cond = rocket.Condition()

    def main() -> Body:
        value = yield from cond.wait_for(lambda: [1, 2, 3])
        with pytest.raises(RuntimeError):
            yield from cond.wait_for(lambda: False)
        return value

    assert rocket.run(main(), engine=engine) == [1, 2, 3]


def test_condition_needs_its_lock_and_a_real_lock(engine: str) -> None:
    """wait/notify/notify_all without the lock raise RuntimeError; Condition(sem) TypeError."""
    # asyncio ConditionTests.test_wait_unacquired, test_notify_unacquired,
    # test_notify_all_unacquired; trio test_Condition
    cond = rocket.Condition()

    def main() -> Body:
        with pytest.raises(RuntimeError):
            yield cond.wait()
        with pytest.raises(RuntimeError):
            cond.notify()
        with pytest.raises(RuntimeError):
            cond.notify_all()
        with pytest.raises(RuntimeError), cond:
            pytest.fail("the body of a plain 'with cond:' ran")

    rocket.run(main(), engine=engine)
    with pytest.raises(TypeError):
        rocket.Condition(rocket.Semaphore(1))  # type: ignore[arg-type]


def test_condition_with_an_explicit_lock(engine: str) -> None:
    """Condition(lock) uses that lock: 'async with cond' and 'async with lock' are one."""
    # asyncio ConditionTests.test_explicit_lock, test_context_manager
    lock = rocket.Lock()
    cond = rocket.Condition(lock)

    async def main() -> None:
        assert cond.lock is lock
        async with cond:
            assert lock.locked()
        assert not lock.locked()
        async with lock:
            assert cond.lock.locked()
        assert not lock.locked()

    rocket.run(main(), engine=engine)


def test_condition_timeout_in_block(engine: str) -> None:
    """A wait under fail_after raises TimeoutError, and the block still holds the lock."""
    # asyncio ConditionTests.test_timeout_in_block; curio TestCondition.test_cond_wait_timeout
    cond = rocket.Condition()

    async def main() -> bool:
        async with cond:
            with pytest.raises(TimeoutError), rocket.fail_after(0.01):
                await cond.wait()
            return cond.lock.locked()

    assert rocket.run(main(), engine=engine) is True


@pytest.mark.parametrize("where", ["waiting for a notify", "re-taking the lock"])
def test_condition_cancelled_error_is_reraised_unchanged(engine: str, where: str) -> None:
    """The Cancelled raised out of wait_for is the very one the fiber gets, wherever it hit."""
    # asyncio ConditionTests.test_cancelled_error_wakeup, test_cancelled_error_re_aquire
    cond = rocket.Condition()
    state = {"wake": False}
    raised: list[BaseException] = []

    async def func() -> None:
        async with cond:
            try:
                await cond.wait_for(lambda: state["wake"])
            except rocket.Cancelled as error:
                raised.append(error)
                raise

    async def main() -> None:
        task = await rocket.spawn(func())
        await rocket.yield_now()
        if where == "re-taking the lock":
            await cond.acquire()
            state["wake"] = True
            cond.notify()
            await rocket.yield_now()
            task.cancel()
            cond.release()
        else:
            task.cancel()
        with pytest.raises(rocket.Cancelled) as info:
            await rocket.join(task)
        assert info.value is raised[0]

    rocket.run(main(), engine=engine)


@pytest.mark.parametrize("settle", [False, True], ids=["at-once", "after-yield"])
def test_condition_cancelled_wakeup_is_not_lost(engine: str, settle: bool) -> None:
    """A consumer cancelled as it is notified does not swallow the wake-up: the other consumes."""
    # asyncio ConditionTests.test_cancelled_wakeup (settle False) and
    # test_cancelled_wakeup_relock (settle True)
    cond = rocket.Condition()
    state = {"n": 0}

    async def consumer() -> None:
        async with cond:
            while True:
                await cond.wait_for(lambda: state["n"] != 0)
                if state["n"] < 0:
                    return
                state["n"] -= 1

    async def main() -> None:
        c = [await rocket.spawn(consumer()) for _ in range(2)]
        await rocket.yield_now()
        async with cond:
            state["n"] += 1
            cond.notify(1)
            if settle:
                await rocket.yield_now()
            c[0].cancel()
            with rocket.move_on_after(0.05):
                await cond.wait_for(lambda: state["n"] == 0)
            assert state["n"] == 0
            state["n"] = -1
            cond.notify_all()
        await rocket.join(c[1])
        with pytest.raises(rocket.Cancelled):
            await rocket.join(c[0])

    rocket.run(main(), engine=engine)


def test_condition_producer_consumer_sequence(engine: str) -> None:
    """Two consumers and one producer alternate exactly as notify hands items over."""
    # curio TestCondition.test_cond_sequence
    cond = rocket.Condition()
    q: deque[int | None] = deque()
    results: list[Any] = []

    async def consumer(label: str) -> None:
        while True:
            async with cond:
                if not q:
                    results.append(label + " wait")
                    await cond.wait()
                item = q.popleft()
                if item is None:
                    break
                results.append((label, item))
        results.append(label + " done")

    async def producer(count: int, nconsumers: int) -> None:
        for n in range(count):
            async with cond:
                q.append(n)
                results.append(("producing", n))
                cond.notify()
            await rocket.sleep(0.005)
        for n in range(nconsumers):
            async with cond:
                q.append(None)
                results.append(("ending", n))
                cond.notify()
            await rocket.sleep(0.005)

    async def main() -> None:
        await rocket.gather(consumer("cons1"), consumer("cons2"), producer(4, 2))

    rocket.run(main(), engine=engine)
    assert results == [
        "cons1 wait",
        "cons2 wait",
        ("producing", 0),
        ("cons1", 0),
        "cons1 wait",
        ("producing", 1),
        ("cons2", 1),
        "cons2 wait",
        ("producing", 2),
        ("cons1", 2),
        "cons1 wait",
        ("producing", 3),
        ("cons2", 3),
        "cons2 wait",
        ("ending", 0),
        "cons1 done",
        ("ending", 1),
        "cons2 done",
    ]


def test_condition_wait_for_with_two_consumers(engine: str) -> None:
    """wait_for(len(q) > 2): one consumer returns at the third item, the other at the fourth."""
    # curio TestCondition.test_cond_waitfor
    cond = rocket.Condition()
    q: deque[int] = deque()
    results: list[Any] = []

    async def consumer(label: str) -> None:
        async with cond:
            results.append(label + " waitfor")
            await cond.wait_for(lambda: len(q) > 2)
            results.append((label, len(q)))
        results.append(label + " done")

    async def producer(count: int) -> None:
        for n in range(count):
            async with cond:
                q.append(n)
                results.append(("producing", n))
                cond.notify()
            await rocket.sleep(0.005)

    async def main() -> None:
        await rocket.gather(consumer("cons1"), consumer("cons2"), producer(4))

    rocket.run(main(), engine=engine)
    assert results == [
        "cons1 waitfor",
        "cons2 waitfor",
        ("producing", 0),
        ("producing", 1),
        ("producing", 2),
        ("cons1", 3),
        "cons1 done",
        ("producing", 3),
        ("cons2", 4),
        "cons2 done",
    ]


# ------------------------------------------------------------------ Queue


def test_queue_empty_full_and_order(engine: str) -> None:
    """empty(), full() and FIFO order behave as in asyncio."""

    # asyncio QueueBasicTests.test_empty, test_full, test_order
    def main() -> Body:
        q: rocket.Queue[int] = rocket.Queue()
        assert q.empty()
        yield q.put(1)
        assert not q.empty()
        assert (yield q.get()) == 1
        assert q.empty()
        assert not q.full()
        bounded: rocket.Queue[int] = rocket.Queue(maxsize=1)
        yield bounded.put(1)
        assert bounded.full()
        for i in (1, 3, 2):
            yield q.put(i)
        items = []
        for _ in range(3):
            items.append((yield q.get()))
        return items

    assert rocket.run(main(), engine=engine) == [1, 3, 2]


def test_queue_maxsize_blocks_the_putter(engine: str) -> None:
    """With maxsize 2 the putter stops after two items and goes on after each get."""
    # asyncio QueueBasicTests.test_maxsize; curio test_queue_bounded (without join)
    q: rocket.Queue[int] = rocket.Queue(maxsize=2)
    have_been_put: list[int] = []

    def putter() -> Body:
        for i in range(3):
            yield q.put(i)
            have_been_put.append(i)
        return True

    def main() -> Body:
        handle = yield rocket.spawn(putter())
        yield from settle()
        assert have_been_put == [0, 1]
        assert (yield q.get()) == 0
        yield from settle()
        assert have_been_put == [0, 1, 2]
        assert (yield q.get()) == 1
        assert (yield q.get()) == 2
        return (yield rocket.join(handle))

    assert rocket.run(main(), engine=engine) is True


def test_queue_get_waits_for_a_put(engine: str) -> None:
    """A get on an empty queue waits for the put of another fiber, and a put for a get."""
    # asyncio QueueGetTests.test_blocking_get_wait, QueuePutTests.test_blocking_put_wait,
    # test_put_with_waiting_getters
    q: rocket.Queue[int] = rocket.Queue(maxsize=1)

    def putter() -> Body:
        yield q.put(1)
        yield q.put(2)
        return "finished"

    def main() -> Body:
        getter = yield rocket.spawn(do(q.get()))
        yield from settle()
        assert not getter.done()
        q.put_nowait(7)
        assert (yield rocket.join(getter)) == 7
        handle = yield rocket.spawn(putter())
        yield from settle()
        assert not handle.done()
        assert q.get_nowait() == 1
        return (yield rocket.join(handle)), q.get_nowait()

    assert rocket.run(main(), engine=engine) == ("finished", 2)


def test_queue_nowait_exceptions(engine: str) -> None:
    """get_nowait on an empty queue and put_nowait on a full one raise queue.Empty/Full."""
    # asyncio QueueGetTests.test_nonblocking_get_exception,
    # QueuePutTests.test_nonblocking_put_exception. Differs: rocket raises the
    # standard library's queue.Empty/queue.Full (asyncio: QueueEmpty/QueueFull).
    q: rocket.Queue[int] = rocket.Queue(maxsize=1)
    with pytest.raises(stdlib_queue.Empty):
        q.get_nowait()
    q.put_nowait(1)
    with pytest.raises(stdlib_queue.Full):
        q.put_nowait(2)
    assert q.get_nowait() == 1


def test_queue_cancelled_getter_does_not_take_the_next_item(engine: str) -> None:
    """Of two getters, the cancelled one leaves; the item goes to the other."""
    # asyncio QueueGetTests.test_get_cancelled_race, curio test_queue_get_cancel
    q: rocket.Queue[str] = rocket.Queue()

    def main() -> Body:
        t1 = yield rocket.spawn(do(q.get()))
        t2 = yield rocket.spawn(do(q.get()))
        yield from settle()
        t1.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(t1)
        yield q.put("a")
        return (yield rocket.join(t2))

    assert rocket.run(main(), engine=engine) == "a"


def test_queue_get_with_waiting_putters(engine: str) -> None:
    """Putters waiting on a full queue go in, in order, as items are taken."""
    # asyncio QueueGetTests.test_get_with_waiting_putters, test_why_are_getters_waiting
    q: rocket.Queue[str] = rocket.Queue(maxsize=1)

    def main() -> Body:
        yield rocket.spawn(do(q.put("a")))
        yield rocket.spawn(do(q.put("b")))
        return (yield q.get()), (yield q.get())

    assert rocket.run(main(), engine=engine) == ("a", "b")


def test_queue_producer_and_consumer_through_a_one_slot_queue(engine: str) -> None:
    """A producer and a consumer of five items through maxsize 1 both finish."""
    # asyncio QueueGetTests.test_why_are_getters_waiting, QueuePutTests.test_why_are_putters_waiting
    q: rocket.Queue[int] = rocket.Queue(1)
    got: list[int] = []

    async def consumer(n: int) -> None:
        for _ in range(n):
            got.append(await q.get())

    async def producer(n: int) -> None:
        for i in range(n):
            await q.put(i)

    async def main() -> None:
        async with rocket.TaskGroup() as tg:
            tg.spawn(producer(5))
            tg.spawn(consumer(5))

    rocket.run(main(), engine=engine)
    assert got == [0, 1, 2, 3, 4]


def test_queue_timed_out_and_cancelled_waiters_are_not_kept(engine: str) -> None:
    """A timed-out get, and a cancelled or timed-out put, leave no waiter in the queue."""
    # asyncio test_cancelled_getters_not_being_held_in_self_getters,
    # test_cancelled_puts_not_being_held_in_self_putters; curio test_queue_get_timeout,
    # test_queue_put_timeout, test_queue_put_cancel
    q: rocket.Queue[int] = rocket.Queue(maxsize=1)

    def main() -> Body:
        with rocket.move_on_after(0.01) as scope:
            yield q.get()
        assert scope.timed_out
        assert "getters=0" in repr(q)
        q.put_nowait(1)
        put_task = yield rocket.spawn(do(q.put(2)))
        yield from settle()
        assert "putters=1" in repr(q)
        put_task.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(put_task)
        with rocket.move_on_after(0.01) as scope:
            yield q.put(3)
        assert scope.timed_out
        return repr(q), q.qsize()

    text, size = rocket.run(main(), engine=engine)
    assert "putters=0" in text
    assert size == 1


def test_queue_getter_cancelled_after_items_arrived_loses_none(engine: str) -> None:
    """Items put while a getter is being cancelled are each delivered exactly once."""
    # asyncio QueuePutTests.test_get_cancel_drop_one_pending_reader and
    # test_get_cancel_drop_many_pending_readers. Differs: rocket hands item 1 to the
    # first reader at the put, so that reader returns it although it was cancelled
    # (asyncio's reader raises CancelledError and leaves the item in the queue).
    q: rocket.Queue[int] = rocket.Queue()

    def main() -> Body:
        reader1 = yield rocket.spawn(do(q.get()))
        reader2 = yield rocket.spawn(do(q.get()))
        reader3 = yield rocket.spawn(do(q.get()))
        yield from settle()
        q.put_nowait(1)
        q.put_nowait(2)
        reader1.cancel()
        got = [(yield rocket.join(reader1)), (yield rocket.join(reader2))]
        yield from settle()
        assert not reader3.done()
        reader3.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(reader3)
        return got, q.qsize()

    assert rocket.run(main(), engine=engine) == ([1, 2], 0)


def test_queue_putter_cancelled_after_its_item_went_in_loses_none(engine: str) -> None:
    """A waiting put whose item went in before its cancel landed counts: the item is there once."""
    # asyncio QueuePutTests.test_put_cancel_drop,
    # test_cancelled_put_silence_value_error_exception. Differs: the put completed
    # when get_nowait() made room, so rocket's putter finishes normally (asyncio's may
    # raise CancelledError).
    q: rocket.Queue[int] = rocket.Queue(1)

    def main() -> Body:
        q.put_nowait(1)
        writer = yield rocket.spawn(do(q.put(2)))
        yield from settle()
        assert q.get_nowait() == 1
        writer.cancel()
        yield rocket.join(writer)
        assert q.get_nowait() == 2
        return q.qsize()

    assert rocket.run(main(), engine=engine) == 0


def test_queue_cancelled_putter_never_puts(engine: str) -> None:
    """Of three putters on a full queue, the cancelled one's item never goes in."""
    # asyncio QueuePutTests.test_put_cancelled_race, test_put_cancelled
    q: rocket.Queue[str] = rocket.Queue(maxsize=1)

    def main() -> Body:
        put_a = yield rocket.spawn(do(q.put("a")))
        put_b = yield rocket.spawn(do(q.put("b")))
        put_c = yield rocket.spawn(do(q.put("X")))
        yield from settle()
        assert put_a.done()
        assert not put_b.done()
        put_c.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(put_c)
        first = q.get_nowait()
        yield rocket.join(put_b)
        return first, q.get_nowait(), q.qsize()

    assert rocket.run(main(), engine=engine) == ("a", "b", 0)


def test_queue_two_consumers_share_the_items_in_turn(engine: str) -> None:
    """Two consumers waiting on one queue take the items alternately, oldest waiter first."""
    # curio test_queue_simple (without task_done/join, which rocket's Queue lacks)
    q: rocket.Queue[int | None] = rocket.Queue()
    results: list[Any] = []

    async def consumer(label: str) -> None:
        while True:
            item = await q.get()
            if item is None:
                break
            results.append((label, item))
        results.append(label + " done")

    async def producer() -> None:
        for n in range(4):
            await q.put(n)
            await rocket.sleep(0.005)
        for _ in range(2):
            await q.put(None)

    async def main() -> None:
        await rocket.gather(consumer("cons1"), consumer("cons2"), producer())

    rocket.run(main(), engine=engine)
    assert results == [
        ("cons1", 0),
        ("cons2", 1),
        ("cons1", 2),
        ("cons2", 3),
        "cons1 done",
        "cons2 done",
    ]


def test_queue_rejects_a_float_maxsize(engine: str) -> None:
    """Queue(maxsize=1.3) is a TypeError."""
    # asyncio QueuePutTests.test_float_maxsize. Differs: asyncio accepts a float
    # maxsize; rocket takes only an int.
    with pytest.raises(TypeError):
        rocket.Queue(maxsize=1.3)  # type: ignore[arg-type]
