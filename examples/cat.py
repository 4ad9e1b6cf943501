"""cat: print files using rocket's file operations.

Each file is opened, read in chunks and closed with requests the engine
performs (io_uring: openat, read and close go through the ring). The fiber
looks sequential; while it waits for the disk, other fibers could run.

Run it: ``python examples/cat.py FILE...``
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import rocket

CHUNK = 65536


def cat(paths: list[str]) -> Generator[Any, Any, int]:
    """Copy each file to stdout; return the number of bytes copied."""
    total = 0
    for path in paths:
        fd = yield rocket.open(path)
        try:
            while True:
                data = yield rocket.read(fd, CHUNK)
                if not data:  # end of file
                    break
                sys.stdout.buffer.write(data)
                total += len(data)
        finally:
            yield rocket.close(fd)
    sys.stdout.buffer.flush()
    return total


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python examples/cat.py FILE...")
    try:
        rocket.run(cat(sys.argv[1:]))
    except OSError as exc:
        sys.exit(f"cat: {exc}")
