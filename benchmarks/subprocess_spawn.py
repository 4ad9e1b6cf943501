"""Wall time of N concurrent subprocesses (``true``): rocket.run_process vs asyncio.

Each contender starts ``--processes`` children of ``true`` at once, one fiber
(or asyncio task) each, waits for every exit status, and captures nothing.
rocket waits on each child's pidfd (polled by the engine, no thread per
child); asyncio uses ``create_subprocess_exec`` and its child watcher. Each
is run ``--repeat`` times and the best time is printed. Prints figures;
asserts nothing. On a shared machine the figures are noisy: compare them
within one run only.

Run it: ``python benchmarks/subprocess_spawn.py [--processes 200] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from collections.abc import Callable, Generator
from typing import Any

import rocket
from rocket.engines import available_engines

TRUE = shutil.which("true") or "/bin/true"


def _rocket(processes: int, engine: str) -> float:
    def one() -> Generator[Any, Any, int]:
        done = yield rocket.run_process([TRUE], capture=False)
        return int(done.returncode)

    def main() -> Generator[Any, Any, list[int]]:
        handles = []
        for _ in range(processes):
            handles.append((yield rocket.spawn(one())))
        codes = []
        for handle in handles:
            codes.append((yield rocket.join(handle)))
        return codes

    started = time.perf_counter()
    codes = rocket.run(main(), engine=engine)
    elapsed = time.perf_counter() - started
    assert codes == [0] * processes
    return elapsed


def _asyncio(processes: int) -> float:
    async def one() -> int:
        proc = await asyncio.create_subprocess_exec(TRUE)
        return await proc.wait()

    async def main() -> list[int]:
        return list(await asyncio.gather(*(one() for _ in range(processes))))

    started = time.perf_counter()
    codes = asyncio.run(main())
    elapsed = time.perf_counter() - started
    assert codes == [0] * processes
    return elapsed


def _best(run: Callable[[], float], repeat: int) -> float:
    return min(run() for _ in range(repeat))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.processes
    print(f"{n} concurrent '{TRUE}' processes, best of {args.repeat} (wall time)")
    base = _best(lambda: _asyncio(n), args.repeat)
    print(f"  {'asyncio create_subprocess_exec':34} {base * 1000:8.1f} ms")
    for engine in available_engines():
        took = _best(lambda: _rocket(n, engine), args.repeat)  # noqa: B023 - called at once
        label = f"rocket run_process ({engine})"
        print(f"  {label:34} {took * 1000:8.1f} ms   ({base / took:.2f}x asyncio's speed)")


if __name__ == "__main__":
    main()
