"""Odd and even: two fibers take turns, with no lock.

The classic interview question from the C project: one worker prints the even
numbers, another the odd ones, together 0..9 in order.

With threads, the two workers run at the same time, so they need a mutex and a
condition variable to take turns (``threaded()`` below). With fibers, only one
runs at a time and it runs until it *chooses* to yield: ``yield_now()`` hands
the turn to the other fiber. No lock, no condition, no race: cooperative
switching makes the order part of the program.

Run it: ``python examples/odd_even.py``
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import rocket

LIMIT = 10


def worker(parity: int, out: list[int]) -> Generator[Any, Any, None]:
    """Append the numbers of one parity, yielding the turn after each."""
    for n in range(parity, LIMIT, 2):
        out.append(n)
        yield rocket.yield_now()  # the other fiber runs now


def fibers() -> Generator[Any, Any, list[int]]:
    out: list[int] = []
    even = yield rocket.spawn(worker(0, out), name="even")
    odd = yield rocket.spawn(worker(1, out), name="odd")
    yield rocket.join(even)
    yield rocket.join(odd)
    return out


def threaded() -> list[int]:
    """The same with threads: a mutex and a condition variable enforce turns."""
    out: list[int] = []
    turn = threading.Condition()

    def run(parity: int) -> None:
        for n in range(parity, LIMIT, 2):
            with turn:
                turn.wait_for(lambda: len(out) % 2 == parity)
                out.append(n)
                turn.notify_all()

    threads = [threading.Thread(target=run, args=(p,)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


if __name__ == "__main__":
    print("fibers: ", *rocket.run(fibers()))
    print("threads:", *threaded())
