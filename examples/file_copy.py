"""Copy a large file with several reads in flight at once.

A single fiber that reads, then writes, then reads again keeps only one
request in the kernel at a time. Here ``WORKERS`` fibers share the file: each
takes the next chunk's offset, reads it with ``read(fd, size, offset)`` and
writes it at the same offset with ``write(fd, data, offset)``. Explicit offsets
mean the fibers never fight over a file position, so their requests can be in
flight together -- on io_uring they go to the kernel in one batch.

Run it: ``python examples/file_copy.py SOURCE DEST`` (with no arguments it
copies an 8 MiB demo file and checks the copy).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import tempfile
from collections.abc import Generator, Iterator
from typing import Any

import rocket

CHUNK = 256 * 1024
WORKERS = 4


def copier(source: int, dest: int, offsets: Iterator[int], size: int) -> Generator[Any, Any, int]:
    """Copy chunks until the shared offset iterator passes the end; return bytes copied."""
    copied = 0
    for offset in offsets:  # the fibers share this iterator: each chunk goes to one fiber
        if offset >= size:
            return copied
        data: bytes = yield rocket.read(source, CHUNK, offset)
        while data:  # a write may take fewer bytes than asked
            written: int = yield rocket.write(dest, data, offset)
            data, offset, copied = data[written:], offset + written, copied + written
    return copied


def copy(source_path: str, dest_path: str) -> Generator[Any, Any, int]:
    """Copy ``source_path`` to ``dest_path`` with WORKERS fibers; return the size."""
    info = yield rocket.stat(source_path)
    source = yield rocket.open(source_path)
    dest = yield rocket.open(dest_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        offsets = itertools.count(0, CHUNK)
        handles = []
        for _ in range(WORKERS):
            handles.append((yield rocket.spawn(copier(source, dest, offsets, info.size))))
        total = 0
        for handle in handles:
            total += yield rocket.join(handle)
        yield rocket.fsync(dest)
        return total
    finally:
        yield rocket.close(source)
        yield rocket.close(dest)


def _digest(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def demo() -> None:
    with tempfile.TemporaryDirectory() as folder:
        source, dest = os.path.join(folder, "source"), os.path.join(folder, "copy")
        with open(source, "wb") as file:
            file.write(os.urandom(8 * 1024 * 1024 + 12345))  # not a multiple of CHUNK
        total = rocket.run(copy(source, dest))
        same = _digest(source) == _digest(dest)
        print(f"copied {total} bytes with {WORKERS} reads in flight; checksums match: {same}")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(f"copied {rocket.run(copy(sys.argv[1], sys.argv[2]))} bytes")
    elif len(sys.argv) == 1:
        demo()
    else:
        sys.exit("usage: python examples/file_copy.py [SOURCE DEST]")
