"""Tracing: watch the runnable queue and the blocked table change, step by step.

Two fibers each open, read and close a file. ``rocket.run(..., trace=True)``
prints every scheduling step: which fiber ran, which request it yielded, the
token the request was submitted under, and the runnable queue and blocked
table after each step. Read it from the top:

1. ``main`` spawns ``first`` and ``second`` (both runnable) and joins them
   (``main`` is parked: it waits for a fiber, not for the engine).
2. ``first`` runs until it yields ``open``: it is *blocked* under a token.
   Then ``second`` does the same. Both opens are in flight together -- the
   io_uring engine hands both to the kernel in one system call.
3. Completions arrive; each wakes the fiber blocked under its token, which
   runs until its next request (``read``, then ``close``).

The second half does the same work with ordinary blocking calls: the second
file is not even opened until the first one is closed. That is the
difference fibers make: while one waits, the other runs.

Run it: ``python examples/trace_files.py``
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Generator
from typing import Any

import rocket


def show(line: str) -> None:
    print(line, flush=True)


def read_file(name: str, path: str) -> Generator[Any, Any, bytes]:
    """Open, read and close one file, announcing each request."""
    show(f">>> {name}: open")
    fd = yield rocket.open(path)
    show(f">>> {name}: read")
    data: bytes = yield rocket.read(fd)
    show(f">>> {name}: close")
    yield rocket.close(fd)
    return data


def with_fibers(paths: list[str]) -> Generator[Any, Any, list[bytes]]:
    first = yield rocket.spawn(read_file("first", paths[0]), name="first")
    second = yield rocket.spawn(read_file("second", paths[1]), name="second")
    return [(yield rocket.join(first)), (yield rocket.join(second))]


def blocking(paths: list[str]) -> list[bytes]:
    """The same work with blocking calls: strictly one file after the other."""
    results = []
    for name, path in zip(["first", "second"], paths, strict=True):
        show(f">>> {name}: open")
        fd = os.open(path, os.O_RDONLY)
        show(f">>> {name}: read")
        results.append(os.read(fd, 65536))
        show(f">>> {name}: close")
        os.close(fd)
    return results


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        paths = [os.path.join(folder, name) for name in ("a.txt", "b.txt")]
        for path, text in zip(paths, [b"contents of a\n", b"contents of b\n"], strict=True):
            with open(path, "wb") as f:
                f.write(text)
        show("== with fibers (trace=True) ==")
        with contextlib.redirect_stderr(sys.stdout):  # the trace goes to stderr
            results = rocket.run(with_fibers(paths), trace=True)
        show(f"results: {results}")
        show("== with blocking calls ==")
        show(f"results: {blocking(paths)}")


if __name__ == "__main__":
    main()
