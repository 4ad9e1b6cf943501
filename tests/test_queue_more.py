"""Queue: maxsize counting handed items, task_done/join, LifoQueue, PriorityQueue, shutdown.

Ported in meaning from CPython's ``Lib/test/test_asyncio/test_queues.py``
(asyncio 3.13) and curio's ``tests/test_queue.py``; each test names the peer
test it follows. ``rocket.yield_now()`` stands in for ``asyncio.sleep(0)``.
"""

from __future__ import annotations

import queue as stdlib_queue
import weakref
from collections.abc import Generator
from typing import Any

import pytest
from fiber_helpers import do, settle

import rocket

Body = Generator[Any, Any, Any]


# ------------------------------------------------------------ maxsize rule


def test_an_item_handed_to_a_waiting_getter_counts_until_it_runs(engine: str) -> None:
    """Queue(1): an item handed to a parked getter fills the queue until that getter runs."""
    # asyncio QueuePutTests.test_put_with_waiting_getters / test_nonblocking_put: the item
    # sits in the queue until the woken getter takes it (curio counts it the same way).
    q: rocket.Queue[str] = rocket.Queue(maxsize=1)

    def main() -> Body:
        getter = yield rocket.spawn(do(q.get()))
        yield from settle()
        q.put_nowait("a")  # handed to the getter
        assert q.qsize() == 1
        assert q.full()
        with pytest.raises(stdlib_queue.Full):
            q.put_nowait("b")
        assert (yield rocket.join(getter)) == "a"
        assert q.qsize() == 0
        q.put_nowait("b")
        return q.get_nowait()

    assert rocket.run(main(), engine=engine) == "b"


def test_a_putter_waiting_behind_a_handed_item_goes_in_when_the_getter_runs(
    engine: str,
) -> None:
    """A put that waits because a handed item fills the queue goes in once the getter took it."""
    # asyncio QueuePutTests.test_why_are_putters_waiting
    q: rocket.Queue[str] = rocket.Queue(maxsize=1)
    log: list[str] = []

    def getter() -> Body:
        item = yield q.get()
        log.append(f"got {item}")
        yield rocket.sleep(3600)  # never asks again

    def putter() -> Body:
        yield q.put("b")
        log.append("put b")

    def main() -> Body:
        g = yield rocket.spawn(getter())
        yield from settle()
        p = yield rocket.spawn(putter())  # runs before the getter, and finds the queue full:
        q.put_nowait("a")  # "a" is handed to the getter, still counted
        yield from settle()
        assert log == ["got a", "put b"]
        yield rocket.join(p)
        g.cancel()
        return q.get_nowait()

    assert rocket.run(main(), engine=engine) == "b"


def test_two_getters_and_a_waiting_putter_each_get_one_item(engine: str) -> None:
    """Queue(1) with two parked getters: the second item goes to the second getter."""
    # asyncio QueueGetTests.test_why_are_getters_waiting
    q: rocket.Queue[int] = rocket.Queue(maxsize=1)

    def main() -> Body:
        g1 = yield rocket.spawn(do(q.get()))
        g2 = yield rocket.spawn(do(q.get()))
        yield from settle()
        yield q.put(1)
        yield q.put(2)  # waits until g1 took 1, then goes to g2
        return (yield rocket.gather(g1, g2)), q.qsize()

    assert rocket.run(main(), engine=engine) == ([1, 2], 0)


# ------------------------------------------------------- task_done / join


def test_join_returns_once_every_item_is_marked_done(engine: str) -> None:
    """join() waits until task_done() was called once for every item put."""
    # asyncio _QueueJoinTestMixin.test_task_done; curio test_queue_join
    q: rocket.Queue[int] = rocket.Queue()
    total: list[int] = []

    def worker() -> Body:
        while True:
            item = yield q.get()
            total.append(item)
            yield rocket.yield_now()
            q.task_done()

    def main() -> Body:
        for i in range(100):
            q.put_nowait(i)
        workers = []
        for _ in range(2):
            workers.append((yield rocket.spawn(worker())))
        yield q.join()
        for w in workers:
            w.cancel()
        return sum(total)

    assert rocket.run(main(), engine=engine) == sum(range(100))


def test_join_on_a_queue_with_nothing_unfinished_returns_at_once(engine: str) -> None:
    """join() with no item put, or every item done, returns without waiting."""
    # asyncio _QueueJoinTestMixin.test_join_empty_queue

    async def main() -> str:
        q: rocket.Queue[int] = rocket.Queue()
        await q.join()
        await q.put(1)
        await q.get()
        q.task_done()
        await q.join()
        return "done"

    assert rocket.run(main(), engine=engine) == "done"


def test_task_done_more_often_than_put_is_a_valueerror(engine: str) -> None:
    """task_done() with nothing unfinished raises ValueError that says why."""
    # asyncio _QueueJoinTestMixin.test_task_done_underflow
    q: rocket.Queue[int] = rocket.Queue()
    with pytest.raises(ValueError, match="more times than"):
        q.task_done()


def test_join_is_cancellable_and_keeps_counting(engine: str) -> None:
    """A cancelled join() raises Cancelled; a later join still waits for the unfinished item."""
    # asyncio _QueueJoinTestMixin.test_join_cancelled (meaning)
    q: rocket.Queue[int] = rocket.Queue()

    def main() -> Body:
        q.put_nowait(1)
        joiner = yield rocket.spawn(do(q.join()))
        yield from settle()
        joiner.cancel()
        with pytest.raises(rocket.Cancelled):
            yield rocket.join(joiner)
        second = yield rocket.spawn(do(q.join()))
        yield from settle()
        assert not second.done()
        q.get_nowait()
        q.task_done()
        yield rocket.join(second)
        return q.statistics().unfinished

    assert rocket.run(main(), engine=engine) == 0


# ------------------------------------------------------- LIFO and priority


def test_lifo_queue_returns_the_newest_item_first(engine: str) -> None:
    """LifoQueue.get() returns the item put last."""
    # asyncio LifoQueueTests.test_order

    def main() -> Body:
        q: rocket.LifoQueue[int] = rocket.LifoQueue()
        for i in (1, 3, 2):
            yield q.put(i)
        got = []
        for _ in range(3):
            got.append((yield q.get()))
        return got

    assert rocket.run(main(), engine=engine) == [2, 3, 1]


def test_priority_queue_returns_the_smallest_item_first(engine: str) -> None:
    """PriorityQueue.get() returns the smallest item; a waiting getter gets the first put."""
    # asyncio PriorityQueueTests.test_order; curio test_priority_queue

    def main() -> Body:
        q: rocket.PriorityQueue[tuple[int, str]] = rocket.PriorityQueue(maxsize=3)
        waiter = yield rocket.spawn(do(q.get()))
        yield from settle()
        yield q.put((5, "only"))
        assert (yield rocket.join(waiter)) == (5, "only")
        for item in [(3, "c"), (1, "a"), (2, "b")]:
            yield q.put(item)
        assert q.full()
        got = []
        for _ in range(3):
            got.append((yield q.get()))
        return got

    assert rocket.run(main(), engine=engine) == [(1, "a"), (2, "b"), (3, "c")]


# ------------------------------------------------------------------ shutdown


def test_shutdown_fails_waiting_putters_and_getters_with_queueshutdown(engine: str) -> None:
    """shutdown() wakes every waiting put and get with QueueShutDown; later puts raise it."""
    # asyncio _QueueShutdownTestMixin.test_shutdown_empty / test_shutdown_nonempty
    full: rocket.Queue[int] = rocket.Queue(maxsize=1)
    empty: rocket.Queue[int] = rocket.Queue()

    def main() -> Body:
        full.put_nowait(0)
        putter = yield rocket.spawn(do(full.put(1)))
        getter = yield rocket.spawn(do(empty.get()))
        yield from settle()
        full.shutdown()
        empty.shutdown()
        for handle in (putter, getter):
            with pytest.raises(rocket.QueueShutDown):
                yield rocket.join(handle)
        with pytest.raises(rocket.QueueShutDown, match="shut down"):
            yield full.put(2)
        with pytest.raises(rocket.QueueShutDown):
            full.put_nowait(2)
        return full.qsize()

    assert rocket.run(main(), engine=engine) == 1


def test_after_shutdown_get_drains_the_items_then_raises(engine: str) -> None:
    """A shut-down queue still gives its items to get(), then raises QueueShutDown."""
    # asyncio _QueueShutdownTestMixin.test_shutdown_nonempty

    async def main() -> list[int]:
        q: rocket.Queue[int] = rocket.Queue()
        for i in range(3):
            await q.put(i)
        q.shutdown()
        got = [await q.get(), q.get_nowait(), await q.get()]
        with pytest.raises(rocket.QueueShutDown):
            await q.get()
        with pytest.raises(rocket.QueueShutDown):
            q.get_nowait()
        return got

    assert rocket.run(main(), engine=engine) == [0, 1, 2]


def test_shutdown_immediate_drops_the_items_and_releases_join(engine: str) -> None:
    """shutdown(immediate=True) drops the queued items, counts them done, and ends join()."""
    # asyncio _QueueShutdownTestMixin.test_shutdown_immediate / test_shutdown_all_methods
    q: rocket.Queue[int] = rocket.Queue()

    def main() -> Body:
        for i in range(3):
            q.put_nowait(i)
        q.get_nowait()  # taken but not marked done: still unfinished
        joiner = yield rocket.spawn(do(q.join()))
        yield from settle()
        q.shutdown(immediate=True)
        assert q.empty()
        yield from settle()
        assert not joiner.done()
        q.task_done()
        yield rocket.join(joiner)
        with pytest.raises(rocket.QueueShutDown):
            yield q.get()
        return q.statistics().unfinished

    assert rocket.run(main(), engine=engine) == 0


# ------------------------------------------------------------ the rest


def test_queue_statistics_name_the_waiters(engine: str) -> None:
    """statistics() reports size, bound, unfinished items and waiting getters and putters."""
    # trio MemoryChannel statistics (meaning)
    q: rocket.Queue[int] = rocket.Queue(maxsize=1)
    e: rocket.Queue[int] = rocket.Queue()

    def main() -> Body:
        q.put_nowait(1)
        yield rocket.spawn(do(q.put(2)))
        yield rocket.spawn(do(e.get()))
        yield from settle()
        s, t = q.statistics(), e.statistics()
        q.get_nowait()
        e.put_nowait(0)
        return (s.qsize, s.maxsize, s.unfinished, s.putters_waiting), t.getters_waiting

    assert rocket.run(main(), engine=engine) == ((1, 1, 1, 1), 1)


def test_every_queue_can_be_weakly_referenced(engine: str) -> None:
    """Queue, LifoQueue and PriorityQueue support weakref.ref."""
    for cls in (rocket.Queue, rocket.LifoQueue, rocket.PriorityQueue):
        q: rocket.Queue[int] = cls()
        assert weakref.ref(q)() is q
