"""The ``files`` and ``switch`` benchmarks: rocket against threads and asyncio.

``files``: N workers each loop C times over open, write S bytes, read them back,
close (the C project's file benchmark). ``switch``: two workers pass the turn
back and forth (the odd/even ping-pong). Each returns operations per second.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import rocket

__all__ = ["FILES", "SWITCH"]


def _rocket_files(engine: str) -> Callable[[str, int, int, int], float]:
    def bench(folder: str, workers: int, loops: int, size: int) -> float:
        payload = os.urandom(size)

        def worker(n: int) -> Generator[Any, Any, None]:
            path = os.path.join(folder, f"rocket-{n}")
            for _ in range(loops):
                fd = yield rocket.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
                yield rocket.write(fd, payload, 0)
                data = yield rocket.read(fd, size, 0)
                assert len(data) == size
                yield rocket.close(fd)

        def main() -> Generator[Any, Any, None]:
            handles = []
            for n in range(workers):
                handles.append((yield rocket.spawn(worker(n))))
            for handle in handles:
                yield rocket.join(handle)

        started = time.perf_counter()
        rocket.run(main(), engine=engine)
        return workers * loops / (time.perf_counter() - started)

    return bench


def _threads_files(folder: str, workers: int, loops: int, size: int) -> float:
    payload = os.urandom(size)

    def worker(n: int) -> None:
        path = os.path.join(folder, f"thread-{n}")
        for _ in range(loops):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            os.pwrite(fd, payload, 0)
            assert len(os.pread(fd, size, 0)) == size
            os.close(fd)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return workers * loops / (time.perf_counter() - started)


def _asyncio_files(folder: str, workers: int, loops: int, size: int) -> float:
    payload = os.urandom(size)

    async def worker(n: int) -> None:
        path = os.path.join(folder, f"asyncio-{n}")
        for _ in range(loops):  # what aiofiles does: each call in a thread
            fd = await asyncio.to_thread(os.open, path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            await asyncio.to_thread(os.pwrite, fd, payload, 0)
            assert len(await asyncio.to_thread(os.pread, fd, size, 0)) == size
            await asyncio.to_thread(os.close, fd)

    async def main() -> None:
        await asyncio.gather(*(worker(n) for n in range(workers)))

    started = time.perf_counter()
    asyncio.run(main())
    return workers * loops / (time.perf_counter() - started)


def files(name: str, workers: int, loops: int, size: int) -> float:
    """Run the files benchmark for ``name``; file iterations per second."""
    with tempfile.TemporaryDirectory(prefix="rocket-bench-") as folder:
        return FILES[name](folder, workers, loops, size)


FILES: dict[str, Callable[[str, int, int, int], float]] = {
    "rocket-io_uring": _rocket_files("io_uring"),
    "rocket-selector": _rocket_files("selector"),
    "threads": _threads_files,
    "asyncio-to_thread": _asyncio_files,
}


def _rocket_switch(engine: str) -> Callable[[int], float]:
    def bench(switches: int) -> float:
        def player() -> Generator[Any, Any, None]:
            for _ in range(switches // 2):
                yield rocket.yield_now()

        def main() -> Generator[Any, Any, None]:
            a = yield rocket.spawn(player())
            b = yield rocket.spawn(player())
            yield rocket.join(a)
            yield rocket.join(b)

        started = time.perf_counter()
        rocket.run(main(), engine=engine)
        return switches / (time.perf_counter() - started)

    return bench


def _threads_switch(switches: int) -> float:
    turn = threading.Condition()
    state = {"next": 0}

    def player(me: int) -> None:
        for _ in range(switches // 2):
            with turn:
                turn.wait_for(lambda: state["next"] == me)
                state["next"] = 1 - me
                turn.notify()

    threads = [threading.Thread(target=player, args=(n,)) for n in (0, 1)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return switches / (time.perf_counter() - started)


def _asyncio_switch(switches: int) -> float:
    async def main() -> None:
        events = [asyncio.Event(), asyncio.Event()]

        async def player(me: int) -> None:
            for _ in range(switches // 2):
                await events[me].wait()
                events[me].clear()
                events[1 - me].set()

        events[0].set()
        await asyncio.gather(player(0), player(1))

    started = time.perf_counter()
    asyncio.run(main())
    return switches / (time.perf_counter() - started)


def _greenlet_switch(switches: int) -> float:
    from greenlet import greenlet

    def player() -> None:
        other = None
        for _ in range(switches // 2):
            other = players[1 - players.index(greenlet.getcurrent())]
            other.switch()

    players = [greenlet(player), greenlet(player)]
    started = time.perf_counter()
    players[0].switch()
    return switches / (time.perf_counter() - started)


SWITCH: dict[str, Callable[[int], float]] = {
    "rocket-io_uring": _rocket_switch("io_uring"),
    "rocket-selector": _rocket_switch("selector"),
    "threads": _threads_switch,
    "asyncio": _asyncio_switch,
    "greenlet": _greenlet_switch,
}
