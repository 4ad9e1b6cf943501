"""Fibers from scratch: the whole idea behind rocket in 40 lines, without rocket.

A fiber is a generator. When it needs I/O it *yields a request* and stops
right there, its local variables intact, until someone resumes it with the
result. A trampoline runs the fibers with two data structures:

* the **runnable list**: fibers ready to run, each with the value to send in;
* the **blocked table**: ``{token: fiber}``, the fibers waiting for the device.

The fake I/O device below plays the kernel: ``submit`` takes a request under a
token, and each tick reports the requests that have finished (io_uring's
submission and completion queues). One pass of the loop runs every runnable
fiber until it yields, then moves the fibers whose requests completed from
the blocked table back to the runnable list. There are no threads and no
locks: a fiber loses control only where it writes ``yield``.

The C project did this with hand-written assembly context switches; Python's
generators already are resumable functions, so the trampoline is all we need.

Run it: ``python examples/fibers_from_scratch.py``
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Generator
from typing import Any

Request = tuple[str, str, int]  # (operation, file name, ticks it takes)
FiberGen = Generator[Request, str, None]


class Device:
    """A fake disk: a request completes ``ticks`` ticks after it is submitted."""

    def __init__(self) -> None:
        self.now = 0
        self.pending: list[tuple[int, int, Request]] = []  # (done_at, token, request)

    def submit(self, token: int, request: Request) -> None:
        self.pending.append((self.now + request[2], token, request))

    def tick(self) -> list[tuple[int, str]]:
        """Advance time by one tick; return ``(token, result)`` for what finished."""
        self.now += 1
        done = [(token, f"<{req[1]}>") for at, token, req in self.pending if at <= self.now]
        self.pending = [p for p in self.pending if p[0] > self.now]
        return done


def run(fibers: dict[str, FiberGen]) -> None:
    """The trampoline: run every fiber to the end."""
    name = {id(gen): name for name, gen in fibers.items()}
    runnable: deque[tuple[FiberGen, Any]] = deque((gen, None) for gen in fibers.values())
    blocked: dict[int, FiberGen] = {}
    device, tokens = Device(), itertools.count(1)
    while runnable or blocked:
        while runnable:  # run each runnable fiber until it yields a request
            fiber, value = runnable.popleft()
            try:
                request = fiber.send(value)
            except StopIteration:
                continue  # the fiber returned: it is finished
            token = next(tokens)
            blocked[token] = fiber
            device.submit(token, request)
        if blocked:
            print(f"    blocked table: { {t: name[id(f)] for t, f in blocked.items()} }")
        for token, result in device.tick():  # completions wake blocked fibers
            fiber = blocked.pop(token)
            runnable.append((fiber, result))
            print(f"    tick {device.now}: token {token} done -> {name[id(fiber)]} runnable")


def reader(name: str, files: list[tuple[str, int]]) -> FiberGen:
    """A fiber: reads each file in turn, as if the calls were blocking."""
    for path, ticks in files:
        print(f"{name}: read {path} ({ticks} ticks)")
        data = yield ("read", path, ticks)  # frozen here until the device is done
        print(f"{name}: got {data}")


if __name__ == "__main__":
    run(
        {
            "A": reader("A", [("a1.txt", 3), ("a2.txt", 1)]),
            "B": reader("B", [("b1.txt", 1), ("b2.txt", 1)]),
        }
    )
