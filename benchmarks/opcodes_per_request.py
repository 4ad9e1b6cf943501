"""Python work per echoed request, counted: opcodes and Python calls, not time.

Timings on a shared 2-core machine vary by 10-20% from run to run, more than
most single changes to the hot path are worth. This counts instead, with
``sys.settrace``, every bytecode instruction and every Python-level call that
runs per request while fiber pairs echo 64-byte messages over socketpairs in one
process (an echoing fiber and a sending fiber per pair; each round trip is four
requests). The count is the same on every run and every machine with the same
CPython, so an A/B of two trees needs one run each.

Three styles: ``recv`` (``rocket.recv`` / ``rocket.sendall``, the echo example's),
``streams`` (``Stream.read`` / ``Stream.write``, plain ``yield``), and
``trampoline``: the same loop on the bare generator + liburing trampoline's terms
(tuples, one dict, no features), the ceiling. Calls into C (``bytes``, the
``liburing`` package, the kernel) are not counted: this measures the runtime's
own Python, not the system calls that every style shares. Prints figures;
asserts nothing.

Run it: ``python benchmarks/opcodes_per_request.py [--style recv|streams|trampoline]
[--engine io_uring|selector] [--by-function]``
"""

from __future__ import annotations

import argparse
import collections
import socket
import sys
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import rocket

PAIRS, ROUND_TRIPS = 20, 500
Body = Generator[Any, Any, None]
PairBodies = Callable[[socket.socket, socket.socket], tuple[Body, Body]]


def _rocket_recv(a: socket.socket, b: socket.socket) -> tuple[Body, Body]:
    def sender() -> Body:
        for _ in range(ROUND_TRIPS):
            yield rocket.sendall(a, b"x" * 64)
            yield rocket.recv(a, 65536)
        a.close()

    def echo() -> Body:
        while data := (yield rocket.recv(b, 65536)):
            yield rocket.sendall(b, data)

    return sender(), echo()


def _rocket_streams(a: socket.socket, b: socket.socket) -> tuple[Body, Body]:
    ours, theirs = rocket.Stream(a), rocket.Stream(b)

    def sender() -> Body:
        for _ in range(ROUND_TRIPS):
            yield ours.write(b"x" * 64)
            yield ours.read(65536)
        ours.close()

    def echo() -> Body:
        while data := (yield theirs.read(65536)):
            yield theirs.write(data)

    return sender(), echo()


def _run_rocket(pair_bodies: PairBodies, engine: str) -> Callable[[], None]:
    def run() -> None:
        pairs = [socket.socketpair() for _ in range(PAIRS)]

        def main() -> Body:  # (when main returns, the run cancels what is left)
            fibers = []
            for a, b in pairs:
                for body in pair_bodies(a, b):
                    fibers.append((yield rocket.spawn(body)))
            for fiber in fibers:
                yield rocket.join(fiber)

        try:
            rocket.run(main(), engine=engine)
        finally:
            for a, b in pairs:
                a.close()
                b.close()

    return run


def _run_trampoline() -> None:
    from rocket.bench.trampoline import run

    pairs = [socket.socketpair() for _ in range(PAIRS)]

    def sender(fd: int) -> Generator[Any, Any, None]:
        buf = bytearray(65536)
        for _ in range(ROUND_TRIPS):
            yield ("send", fd, b"x" * 64)
            n = yield ("recv", fd, buf)
            bytes(buf[:n])
        socket.socket(fileno=fd).close()

    def echo(fd: int) -> Generator[Any, Any, None]:
        buf = bytearray(65536)
        while (n := (yield ("recv", fd, buf))) > 0:
            yield ("send", fd, bytes(buf[:n]))

    def main() -> Generator[Any, Any, None]:
        for a, b in pairs:
            yield ("spawn", sender(a.detach()))
            yield ("spawn", echo(b.fileno()))

    try:
        run(main())
    finally:
        for _, b in pairs:
            b.close()


def count(run: Callable[[], None]) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """``(opcodes, calls)`` per function's qualified name while ``run()`` runs."""
    opcodes: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_qualname
        if event == "call":
            calls[name] += 1
            frame.f_trace_opcodes = True
        elif event == "opcode":
            opcodes[name] += 1
        return trace

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
    return opcodes, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", choices=["recv", "streams", "trampoline"], default="recv")
    parser.add_argument("--engine", choices=["io_uring", "selector"], default="io_uring")
    parser.add_argument("--by-function", action="store_true", help="the 15 costliest functions")
    args = parser.parse_args()
    if args.style == "trampoline":
        run = _run_trampoline
    else:
        run = _run_rocket(_rocket_recv if args.style == "recv" else _rocket_streams, args.engine)
    opcodes, calls = count(run)
    requests = PAIRS * ROUND_TRIPS * 4
    where = "" if args.style == "trampoline" else f" on {args.engine}"
    print(
        f"{args.style}{where}: {sum(opcodes.values()) / requests:.1f} opcodes and "
        f"{sum(calls.values()) / requests:.2f} Python calls per request "
        f"({PAIRS} pairs x {ROUND_TRIPS} round trips of 64 B, 4 requests each)"
    )
    if args.by_function:
        for name, n in opcodes.most_common(15):
            print(f"  {n / requests:7.1f} opcodes {calls[name] / requests:5.2f} calls  {name}")


if __name__ == "__main__":
    main()
