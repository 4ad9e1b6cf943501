"""RLock, Barrier, CapacityLimiter, unbounded Semaphore, acquire_nowait/statistics/locked, weakrefs.

Ported in meaning from CPython's ``Lib/test/test_asyncio/test_locks.py``
(asyncio) and trio's ``src/trio/_tests/test_sync.py``; each test names the
peer test it follows. ``rocket.testing.wait_all_blocked()`` stands in for
trio's ``wait_all_tasks_blocked()``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Generator
from typing import Any

import pytest
from fiber_helpers import do

import rocket
from rocket.testing import wait_all_blocked

Body = Generator[Any, Any, Any]


# ------------------------------------------------- nowait, locked, statistics


def test_lock_acquire_nowait_locked_and_statistics(engine: str) -> None:
    """Lock.acquire_nowait takes a free lock and raises WouldBlock on a held one."""
    # trio test_Lock_and_StrictFIFOLock
    lock = rocket.Lock()

    def main() -> Body:
        me = yield rocket.current()
        lock.acquire_nowait()
        assert lock.locked()
        stats = lock.statistics()
        assert (stats.locked, stats.owner, stats.fibers_waiting) == (True, me, 0)
        other = yield rocket.spawn(do(lock.acquire()))
        yield wait_all_blocked()
        assert lock.statistics().fibers_waiting == 1
        lock.release()
        yield rocket.join(other)
        with pytest.raises(rocket.WouldBlock, match="held by"):
            lock.acquire_nowait()

    rocket.run(main(), engine=engine)


def test_semaphore_acquire_nowait_locked_and_statistics(engine: str) -> None:
    """Semaphore.acquire_nowait takes a slot or raises WouldBlock; locked() when none is left."""
    # trio test_Semaphore; asyncio SemaphoreTests.test_acquire (locked)
    sem = rocket.Semaphore(2)

    def main() -> Body:
        sem.acquire_nowait()
        assert not sem.locked()
        sem.acquire_nowait()
        assert sem.locked()
        with pytest.raises(rocket.WouldBlock, match="no free slot"):
            sem.acquire_nowait()
        waiter = yield rocket.spawn(do(sem.acquire()))
        yield wait_all_blocked()
        stats = sem.statistics()
        sem.release()
        yield rocket.join(waiter)
        sem.release()
        return stats.value, stats.fibers_waiting

    assert rocket.run(main(), engine=engine) == (0, 1)


def test_unbounded_semaphore_is_released_by_any_fiber_and_grows(engine: str) -> None:
    """Semaphore(0, bounded=False): another fiber's release() lets a waiter in; value may grow."""
    # trio test_Semaphore (release by another task); asyncio SemaphoreTests.test_release_no_waiters
    sem = rocket.Semaphore(0, bounded=False)

    def main() -> Body:
        waiter = yield rocket.spawn(do(sem.acquire()))
        yield wait_all_blocked()
        sem.release()  # main holds no slot: allowed on an unbounded semaphore
        yield rocket.join(waiter)
        sem.release()
        sem.release()
        return sem.value

    assert rocket.run(main(), engine=engine) == 2


def test_event_and_condition_statistics(engine: str) -> None:
    """Event and Condition report their waiters; Condition.locked() is its lock's."""
    # trio test_Event (statistics), test_Condition (statistics); asyncio ConditionTests.test_wait
    event = rocket.Event()
    cond = rocket.Condition()

    def cond_waiter() -> Body:
        with (yield cond.acquire()):
            yield cond.wait()

    def main() -> Body:
        e = yield rocket.spawn(do(event.wait()))
        c = yield rocket.spawn(cond_waiter())
        yield wait_all_blocked()
        es, cs = event.statistics(), cond.statistics()
        with (yield cond.acquire()):
            assert cond.locked()
            cond.notify()
        event.set()
        yield rocket.gather(e, c)
        return es.fibers_waiting, cs.fibers_waiting, cs.lock.locked, cond.locked()

    assert rocket.run(main(), engine=engine) == (1, 1, False, False)


def test_condition_acquire_nowait_takes_its_lock(engine: str) -> None:
    """Condition.acquire_nowait takes the lock, and raises WouldBlock while another holds it."""
    # trio test_Condition (acquire_nowait)
    cond = rocket.Condition()

    def main() -> Body:
        cond.acquire_nowait()
        assert cond.lock.locked()
        attempt = yield rocket.spawn(_nowait(cond))
        with pytest.raises(rocket.WouldBlock):
            yield rocket.join(attempt)
        cond.release()
        return cond.locked()

    assert rocket.run(main(), engine=engine) is False


# ------------------------------------------------------------------- RLock


def test_rlock_is_reentrant_and_released_as_often_as_taken(engine: str) -> None:
    """The owner may take an RLock again; it is free only after as many releases."""
    # asyncio has no RLock; threading.RLock's meaning, trio-style owner checks
    rlock = rocket.RLock()
    order: list[str] = []

    def other() -> Body:
        with (yield rlock.acquire()):
            order.append("other")

    def main() -> Body:
        with (yield rlock.acquire()):
            with (yield rlock.acquire()):
                rlock.acquire_nowait()
                handle = yield rocket.spawn(other())
                yield wait_all_blocked()
                rlock.release()
            assert rlock.locked()
            yield wait_all_blocked()
            order.append("main")
        yield rocket.join(handle)
        return order

    assert rocket.run(main(), engine=engine) == ["main", "other"]


def test_rlock_release_by_another_fiber_is_a_runtimeerror(engine: str) -> None:
    """Only the owner can release an RLock, and releasing a free one is an error."""
    rlock = rocket.RLock()

    def main() -> Body:
        with pytest.raises(RuntimeError, match="cannot release"):
            rlock.release()
        yield rlock.acquire()

        def stranger() -> Body:
            rlock.release()
            yield rocket.sleep(0)

        with pytest.raises(RuntimeError, match="cannot release"):
            yield rocket.join((yield rocket.spawn(stranger())))
        with pytest.raises(rocket.WouldBlock):
            yield rocket.join((yield rocket.spawn(do(_nowait(rlock)))))
        rlock.release()
        return rlock.locked()

    assert rocket.run(main(), engine=engine) is False


def _nowait(primitive: Any) -> Body:
    """Call acquire_nowait() in a fiber of its own."""
    primitive.acquire_nowait()
    yield rocket.sleep(0)


def test_rlock_cancelled_waiter_takes_nothing(engine: str) -> None:
    """A fiber cancelled while waiting for an RLock leaves; the next waiter gets it."""
    # asyncio LockTests.test_cancel_race (meaning)
    rlock = rocket.RLock()

    def main() -> Body:
        yield rlock.acquire()
        first = yield rocket.spawn(do(rlock.acquire()))
        second = yield rocket.spawn(do(rlock.acquire()))
        yield wait_all_blocked()
        first.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(first)
        rlock.release()
        yield rocket.join(second)
        return rlock.statistics().owner is second

    assert rocket.run(main(), engine=engine) is True


# ----------------------------------------------------------------- Barrier


def test_barrier_releases_all_parties_with_distinct_indexes(engine: str) -> None:
    """wait() returns once `parties` fibers arrived; each gets its arrival index."""
    # asyncio BarrierTests.test_barrier, test_wait_task_multi, test_wait_return_index
    barrier = rocket.Barrier(3)

    async def party() -> int:
        return await barrier.wait()

    def main() -> Body:
        a = yield rocket.spawn(party())
        b = yield rocket.spawn(party())
        yield wait_all_blocked()
        assert barrier.n_waiting == 2
        last = yield barrier.wait()
        first_round = [(yield rocket.join(a)), (yield rocket.join(b)), last]
        second = yield rocket.gather(party(), party(), party())
        return first_round, second, barrier.n_waiting, barrier.broken

    assert rocket.run(main(), engine=engine) == ([0, 1, 2], [0, 1, 2], 0, False)


def test_barrier_abort_breaks_it_for_waiters_and_later_arrivals(engine: str) -> None:
    """abort() makes every waiter and every later wait() raise BrokenBarrierError."""
    # asyncio BarrierTests.test_abort_barrier
    barrier = rocket.Barrier(3)

    def main() -> Body:
        waiter = yield rocket.spawn(do(barrier.wait()))
        yield wait_all_blocked()
        barrier.abort()
        assert barrier.broken
        with pytest.raises(rocket.BrokenBarrierError):
            yield rocket.join(waiter)
        with pytest.raises(rocket.BrokenBarrierError, match="reset"):
            yield barrier.wait()
        barrier.reset()
        return barrier.broken, (yield rocket.gather(*(do(barrier.wait()) for _ in range(3))))

    assert rocket.run(main(), engine=engine) == (False, [0, 1, 2])


def test_barrier_reset_breaks_the_current_round_only(engine: str) -> None:
    """reset() wakes the waiters with BrokenBarrierError and the barrier works again."""
    # asyncio BarrierTests.test_reset_barrier, test_reset_barrier_while_tasks_waiting
    barrier = rocket.Barrier(2)

    def main() -> Body:
        waiter = yield rocket.spawn(do(barrier.wait()))
        yield wait_all_blocked()
        barrier.reset()
        with pytest.raises(rocket.BrokenBarrierError):
            yield rocket.join(waiter)
        assert not barrier.broken
        return (yield rocket.gather(do(barrier.wait()), do(barrier.wait())))

    assert rocket.run(main(), engine=engine) == [0, 1]


def test_barrier_cancelled_waiter_no_longer_counts(engine: str) -> None:
    """A waiter cancelled before the barrier filled leaves it; the round still needs `parties`."""
    # asyncio BarrierTests.test_filling_task_cancelled
    barrier = rocket.Barrier(2)

    def main() -> Body:
        leaver = yield rocket.spawn(do(barrier.wait()))
        yield wait_all_blocked()
        leaver.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(leaver)
        assert barrier.n_waiting == 0
        stays = yield rocket.spawn(do(barrier.wait()))
        yield wait_all_blocked()
        assert not stays.done()
        return (yield barrier.wait()), (yield rocket.join(stays))

    assert rocket.run(main(), engine=engine) == (1, 0)


def test_barrier_needs_at_least_one_party(engine: str) -> None:
    """Barrier(0) and Barrier("2") are refused with a message that says what to pass."""
    # asyncio BarrierTests.test_barrier_parties
    with pytest.raises(ValueError, match=">= 1"):
        rocket.Barrier(0)
    with pytest.raises(TypeError, match="must be an int"):
        rocket.Barrier("2")  # type: ignore[arg-type]
    assert rocket.run(do(rocket.Barrier(1).wait()), engine=engine) == 0


# -------------------------------------------------------- CapacityLimiter


def test_capacity_limiter_tokens_borrowers_and_errors(engine: str) -> None:
    """Tokens are lent one per borrower, waiters queue, and misuse says what was wrong."""
    # trio test_CapacityLimiter
    limiter = rocket.CapacityLimiter(2)

    def main() -> Body:
        me = yield rocket.current()
        assert (limiter.total_tokens, limiter.available_tokens) == (2, 2)
        limiter.acquire_nowait()
        assert (limiter.borrowed_tokens, limiter.available_tokens) == (1, 1)
        with pytest.raises(RuntimeError, match="already holds"):
            limiter.acquire_nowait()
        limiter.acquire_on_behalf_of_nowait("job")
        with pytest.raises(rocket.WouldBlock):
            limiter.acquire_on_behalf_of_nowait("other job")
        waiter = yield rocket.spawn(do(limiter.acquire()))
        yield wait_all_blocked()
        stats = limiter.statistics()
        assert (stats.borrowed_tokens, stats.total_tokens, stats.fibers_waiting) == (2, 2, 1)
        assert set(stats.borrowers) == {me, "job"}
        with pytest.raises(RuntimeError, match="does not hold"):
            limiter.release_on_behalf_of("nobody")
        limiter.release_on_behalf_of("job")
        yield rocket.join(waiter)
        assert limiter.statistics().borrowers == [me, waiter]
        limiter.release()
        return limiter.borrowed_tokens

    assert rocket.run(main(), engine=engine) == 1


def test_capacity_limiter_raising_total_tokens_lets_waiters_in(engine: str) -> None:
    """Setting total_tokens higher wakes as many waiters; lower never takes tokens back."""
    # trio test_CapacityLimiter_change_total_tokens
    limiter = rocket.CapacityLimiter(1)
    inside: list[int] = []

    async def worker(i: int, release: rocket.Event) -> None:
        async with limiter:
            inside.append(i)
            await release.wait()

    def main() -> Body:
        release = rocket.Event()
        handles = []
        for i in range(4):
            handles.append((yield rocket.spawn(worker(i, release))))
        yield wait_all_blocked()
        assert inside == [0]
        limiter.total_tokens = 3
        yield wait_all_blocked()
        assert inside == [0, 1, 2]
        limiter.total_tokens = 1
        assert limiter.available_tokens == 0
        with pytest.raises(ValueError, match=">= 1"):
            limiter.total_tokens = 0
        with pytest.raises(TypeError, match=r"int or math\.inf"):
            limiter.total_tokens = 1.5
        release.set()
        yield rocket.gather(*handles)
        limiter.total_tokens = float("inf")
        return inside, limiter.available_tokens

    assert rocket.run(main(), engine=engine) == ([0, 1, 2, 3], float("inf"))


def test_capacity_limiter_cancelled_waiter_is_forgotten(engine: str) -> None:
    """A borrower cancelled while waiting holds no token and is not remembered."""
    # trio test_CapacityLimiter_memleak_548
    limiter = rocket.CapacityLimiter(1)

    def main() -> Body:
        yield limiter.acquire()
        waiter = yield rocket.spawn(do(limiter.acquire_on_behalf_of("late")))
        yield wait_all_blocked()
        waiter.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(waiter)
        limiter.release()
        return limiter.statistics()

    stats = rocket.run(main(), engine=engine)
    assert (stats.borrowed_tokens, stats.borrowers, stats.fibers_waiting) == (0, [], 0)


def test_to_thread_with_a_limiter_runs_one_call_at_a_time(engine: str) -> None:
    """to_thread(..., limiter=CapacityLimiter(1)): the second call waits for the first's token."""
    # trio test_threads.py test_run_in_worker_thread_limiter (meaning)
    limiter = rocket.CapacityLimiter(1)
    gate = threading.Event()
    running = threading.Event()
    started: list[str] = []

    def blocking(name: str) -> str:
        started.append(name)
        if name == "first":
            running.set()
            gate.wait(10)
        return name

    def main() -> Body:
        first = yield rocket.spawn(do(rocket.to_thread(blocking, "first", limiter=limiter)))
        yield rocket.to_thread(running.wait, 10)  # the first thread runs: its token is lent
        second = yield rocket.spawn(do(rocket.to_thread(blocking, "second", limiter=limiter)))
        yield wait_all_blocked()
        stats = limiter.statistics()
        gate.set()
        results = yield rocket.gather(first, second)
        return (
            stats.borrowed_tokens,
            stats.fibers_waiting,
            started,
            results,
            limiter.borrowed_tokens,
        )

    assert rocket.run(main(), engine=engine) == (
        1,
        1,
        ["first", "second"],
        ["first", "second"],
        0,
    )


def test_to_thread_with_a_limiter_gives_the_token_back_when_cancelled(engine: str) -> None:
    """A to_thread cancelled while waiting for a token, or while running, leaves no token lent."""
    limiter = rocket.CapacityLimiter(1)
    gate = threading.Event()
    running = threading.Event()

    def blocking() -> str:
        running.set()
        gate.wait(10)
        return "ran"

    def then_sleep() -> Body:
        yield rocket.to_thread(blocking, limiter=limiter)
        yield rocket.sleep(0)  # the call finished anyway: Cancelled comes here

    def main() -> Body:
        busy = yield rocket.spawn(then_sleep())
        yield rocket.to_thread(running.wait, 10)
        queued = yield rocket.spawn(do(rocket.to_thread(blocking, limiter=limiter)))
        yield wait_all_blocked()
        queued.cancel()
        busy.cancel()
        gate.set()
        for handle in (queued, busy):
            with pytest.raises(rocket.Cancelled):
                yield rocket.join(handle)
        return limiter.borrowed_tokens, limiter.statistics().fibers_waiting

    assert rocket.run(main(), engine=engine) == (0, 0)


def test_to_thread_handed_a_token_and_cancelled_before_it_ran_gives_it_back(engine: str) -> None:
    """A to_thread cancelled right after it was handed the token never runs and returns it."""
    limiter = rocket.CapacityLimiter(1)
    ran: list[str] = []

    def main() -> Body:
        yield limiter.acquire()
        job = yield rocket.spawn(do(rocket.to_thread(ran.append, "ran", limiter=limiter)))
        yield wait_all_blocked()
        limiter.release()  # the token goes to the job's borrower...
        job.cancel()  # ...which is cancelled before its fiber runs again
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(job)
        return ran, limiter.borrowed_tokens

    assert rocket.run(main(), engine=engine) == ([], 0)


def test_to_thread_limiter_must_be_a_capacity_limiter(engine: str) -> None:
    """to_thread(limiter=<something else>) is a TypeError naming what to pass."""
    with pytest.raises(TypeError, match="CapacityLimiter"):
        rocket.to_thread(print, limiter=rocket.Semaphore(1))  # type: ignore[call-overload]


# ------------------------------------------------------------------ weakref


def test_every_primitive_can_be_weakly_referenced(engine: str) -> None:
    """weakref.ref works on every synchronization primitive."""
    # trio test_sync.py test_generic_lock_* (weakref), asyncio's primitives are weakref-able
    lock = rocket.Lock()
    things: list[object] = [
        rocket.Event(),
        lock,
        rocket.RLock(),
        rocket.Condition(lock),
        rocket.Semaphore(1),
        rocket.Semaphore(0, bounded=False),
        rocket.Barrier(2),
        rocket.CapacityLimiter(1),
    ]
    for thing in things:
        assert weakref.ref(thing)() is thing


# ------------------------------------------------------- the virtual engine


def test_the_new_primitives_work_on_the_virtual_engine() -> None:
    """Barrier, RLock, CapacityLimiter with to_thread and a bounded Queue run on VirtualEngine."""
    from rocket.testing import VirtualEngine

    engine = VirtualEngine()
    barrier, rlock, limiter = rocket.Barrier(2), rocket.RLock(), rocket.CapacityLimiter(1)
    q: rocket.Queue[int] = rocket.Queue(maxsize=1)

    def party() -> Body:
        yield rocket.sleep(3)  # virtual seconds
        return (yield barrier.wait())

    def main() -> Body:
        handle = yield rocket.spawn(party())
        first = yield barrier.wait()
        with (yield rlock.acquire()), (yield rlock.acquire()):
            doubled = yield rocket.to_thread(lambda x: 2 * x, 21, limiter=limiter)
        getter = yield rocket.spawn(do(q.get()))
        yield wait_all_blocked()
        q.put_nowait(1)
        with rocket.move_on_after(10) as scope:
            yield q.put(2)  # waits until the getter took 1
        got = yield rocket.join(getter)
        return first, (yield rocket.join(handle)), doubled, got, scope.timed_out, engine.now

    assert rocket.run(main(), engine=engine) == (0, 1, 42, 1, False, 3.0)
