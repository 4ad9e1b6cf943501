"""I/O round trips per second: many fibers each doing 1-byte reads from a pipe.

``--fibers`` pairs of fibers: a writer writes one byte, its reader reads it, and
again. Each read and write is one request to the engine (on io_uring, one SQE).
Beside it, the same workload with asyncio streams over the same pipes, in the
same run, and the ratio. Prints figures; asserts nothing.

Run it: ``python benchmarks/pipe_round_trips.py [--fibers N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Generator
from typing import Any

import rocket


def _pipes(n: int) -> list[tuple[int, int]]:
    return [os.pipe() for _ in range(n)]


def _close(pipes: list[tuple[int, int]]) -> None:
    for r, w in pipes:
        os.close(r)
        os.close(w)


def _rocket(fibers: int, rounds: int, engine: str) -> float:
    pipes = _pipes(fibers)

    def reader(fd: int) -> Generator[Any, Any, None]:
        for _ in range(rounds):
            yield rocket.read(fd, 1)

    def writer(fd: int) -> Generator[Any, Any, None]:
        for _ in range(rounds):
            yield rocket.write(fd, b"x")

    def main() -> Generator[Any, Any, None]:
        handles = []
        for r, w in pipes:
            handles.append((yield rocket.spawn(reader(r))))
            handles.append((yield rocket.spawn(writer(w))))
        for handle in handles:
            yield rocket.join(handle)

    started = time.perf_counter()
    try:
        rocket.run(main(), engine=engine)
    finally:
        _close(pipes)
    return fibers * rounds / (time.perf_counter() - started)


def _asyncio(fibers: int, rounds: int) -> float:
    pipes = _pipes(fibers)

    async def pair(r: int, w: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", 0)
        )
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(w, "wb", 0)
        )
        stream = asyncio.StreamWriter(transport, protocol, None, loop)
        for _ in range(rounds):
            stream.write(b"x")
            await stream.drain()
            await reader.readexactly(1)
        transport.close()

    async def main() -> None:
        await asyncio.gather(*(pair(r, w) for r, w in pipes))

    started = time.perf_counter()
    asyncio.run(main())  # the transports own (and close) the pipe fds
    return fibers * rounds / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fibers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args()
    baseline = _asyncio(args.fibers, args.rounds)
    print(f"asyncio streams        {baseline:12,.0f} round trips/s")
    for engine in ("io_uring", "selector"):
        try:
            rate = _rocket(args.fibers, args.rounds, engine)
        except rocket.EngineUnavailable as exc:
            print(f"rocket {engine:<15} unavailable: {exc}")
            continue
        print(f"rocket {engine:<15} {rate:12,.0f} round trips/s  ({rate / baseline:.2f}x asyncio)")


if __name__ == "__main__":
    main()
