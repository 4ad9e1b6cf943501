"""Fiber switches per second: two fibers passing the turn with ``yield_now``.

Beside it, the same ping-pong on asyncio (two tasks, ``await asyncio.sleep(0)``),
in the same run, and the ratio. Prints figures; asserts nothing.

Run it: ``python benchmarks/fiber_switches.py [--switches N]``
"""

from __future__ import annotations

import argparse
import asyncio
import time

import rocket
from rocket.bench.micro import SWITCH


def _rocket(switches: int, engine: str) -> float:
    # The same two-fiber ping-pong that ``python -m rocket bench switch`` runs.
    return SWITCH[f"rocket-{engine}"](switches)


def _asyncio(switches: int) -> float:
    async def player() -> None:
        for _ in range(switches // 2):
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(player(), player())

    started = time.perf_counter()
    asyncio.run(main())
    return switches / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=400_000)
    args = parser.parse_args()
    baseline = max(_asyncio(args.switches) for _ in range(3))
    print(f"asyncio sleep(0)       {baseline:12,.0f} switches/s")
    for engine in ("io_uring", "selector"):
        try:
            rate = max(_rocket(args.switches, engine) for _ in range(3))
        except rocket.EngineUnavailable as exc:
            print(f"rocket {engine:<15} unavailable: {exc}")
            continue
        print(f"rocket {engine:<15} {rate:12,.0f} switches/s  ({rate / baseline:.2f}x asyncio)")


if __name__ == "__main__":
    main()
