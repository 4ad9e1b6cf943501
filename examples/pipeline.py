"""A pipeline: a producer, three workers, a bounded Queue, a TaskGroup, timeouts.

The producer puts work in a ``rocket.Queue(maxsize=4)``: when the queue is
full, ``put`` waits, so the producer never runs far ahead of the workers. Each
worker takes an item and hashes it in a worker thread with ``rocket.to_thread``
(a blocking call: the loop keeps running the other fibers meanwhile). An
``async with rocket.TaskGroup()`` starts them all and ends only when every one
has finished; if one failed, the others would be cancelled and its error
raised here.

Then two ways to bound time: ``rocket.move_on_after`` gives up on a whole
block (``scope.timed_out`` says it did), ``rocket.timeout`` on one request.

Run it: ``python examples/pipeline.py``
"""

from __future__ import annotations

import hashlib

import rocket

WORKERS = 3
ITEMS = 12


async def producer(queue: rocket.Queue[bytes | None]) -> None:
    """Put ITEMS pieces of work, then one stop marker per worker."""
    for i in range(ITEMS):
        await queue.put(f"item {i}".encode())  # waits while the queue is full
    for _ in range(WORKERS):
        await queue.put(None)


async def worker(queue: rocket.Queue[bytes | None], digests: dict[bytes, str]) -> None:
    """Hash items in a thread until the stop marker comes."""
    while (item := await queue.get()) is not None:
        digests[item] = (await rocket.to_thread(hashlib.sha256, item)).hexdigest()[:8]


async def main() -> None:
    queue: rocket.Queue[bytes | None] = rocket.Queue(maxsize=4)
    digests: dict[bytes, str] = {}
    async with rocket.TaskGroup() as tg:
        tg.spawn(producer(queue), name="producer")
        for n in range(WORKERS):
            tg.spawn(worker(queue, digests), name=f"worker-{n}")
    print(f"hashed {len(digests)} items with {WORKERS} workers")
    print(f"item 0 -> {digests[b'item 0']}")

    with rocket.move_on_after(0.05) as scope:
        await rocket.sleep(10)  # far too slow: cut short
    print(f"slow block cut short: {scope.timed_out}")

    try:
        await rocket.timeout(0.05, rocket.sleep(10))
    except TimeoutError as exc:
        print(f"timeout: {exc}")


if __name__ == "__main__":
    rocket.run(main())
