"""Timeouts and cancellation: stopping a fiber at the point where it waits.

A fiber can only be stopped where it waits, at a ``yield`` (or ``await``). So
cancelling it means: the executor throws :class:`rocket.Cancelled` into it at
that point. If it waits on I/O, the engine first cancels the request in the
kernel and the fiber resumes only once the kernel is done with its buffer.
The exception unwinds the fiber, so its ``finally`` blocks run (and may even
do I/O); a fiber may also catch ``Cancelled`` and go on.

Timeouts are cancellation with a clock: ``fail_after(s)`` cancels the block
when time runs out and turns that into ``TimeoutError``; ``move_on_after(s)``
just leaves the block and records ``scope.timed_out``.

Run it: ``python examples/timeouts_and_cancellation.py``
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import rocket


def slow_job(log: list[str]) -> Generator[Any, Any, str]:
    """Sleeps for a minute unless someone cancels it; always cleans up."""
    try:
        log.append("job: started, sleeping 60 s")
        yield rocket.sleep(60)
        return "finished"
    except rocket.Cancelled:
        log.append("job: cancelled while sleeping")
        raise
    finally:
        yield rocket.sleep(0.001)  # cleanup may wait on I/O too
        log.append("job: cleanup done")


def main() -> Generator[Any, Any, list[str]]:
    log: list[str] = []

    # 1. cancel(): Cancelled is thrown where the fiber waits.
    job = yield rocket.spawn(slow_job(log))
    yield rocket.sleep(0.01)
    job.cancel()
    try:
        yield rocket.join(job)
    except rocket.Cancelled:
        log.append(f"main: joining the job raised Cancelled (cancelled={job.cancelled()})")

    # 2. fail_after: the block is cut short and TimeoutError is raised.
    try:
        with rocket.fail_after(0.05):
            yield rocket.sleep(10)
    except TimeoutError:
        log.append("main: fail_after(0.05) raised TimeoutError")

    # 3. move_on_after: the block is left quietly; the scope says so.
    with rocket.move_on_after(0.05) as scope:
        yield rocket.sleep(10)
    log.append(f"main: move_on_after(0.05) left the block, timed_out={scope.timed_out}")

    # 4. A block that finishes in time is not disturbed.
    with rocket.move_on_after(5) as scope:
        yield rocket.sleep(0.01)
    log.append(f"main: a quick block under move_on_after(5), timed_out={scope.timed_out}")
    return log


if __name__ == "__main__":
    for line in rocket.run(main()):
        print(line)
