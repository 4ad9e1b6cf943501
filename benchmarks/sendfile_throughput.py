"""MB/s of one big file sent to a local socket: rocket.sendfile vs read + write.

A file of ``--size`` MiB is written in a temporary directory (and deleted at the
end); it is then in the page cache, so this measures the CPU path, not the
disk. For each engine, a rocket server accepts one connection on 127.0.0.1 and
sends the whole file, either with ``rocket.sendfile`` (io_uring: splice
through a pipe; readiness engine: ``os.sendfile``) or by reading 256 KiB
chunks (``rocket.read`` at an offset) and writing each with ``Stream.write``
(what sendfile itself does over TLS). The reader is a separate process that
drains the socket into one reused buffer and reports how many bytes came.
Prints figures; asserts nothing. The machine may be shared: figures are noisy.

Run it: ``python benchmarks/sendfile_throughput.py [--size 512] [--engine io_uring]``
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import rocket
from rocket.engines import available_engines

CHUNK = 256 * 1024

_DRAIN = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
buf, total = bytearray(1 << 20), 0
while n := sock.recv_into(buf):
    total += n
print(total)
"""


def _send(path: Path, mode: str, engine: str) -> tuple[float, int]:
    """Serve the file once to a draining subprocess; (seconds to send, bytes it got)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    drain = subprocess.Popen(
        [sys.executable, "-c", _DRAIN, str(port)], stdout=subprocess.PIPE, text=True
    )

    def main() -> Generator[Any, Any, float]:
        sock, _ = yield rocket.accept(listener)
        stream = rocket.Stream(sock)
        f = yield rocket.open_file(path)
        with stream, f:
            started = time.perf_counter()
            if mode == "sendfile":
                yield rocket.sendfile(stream, f)
            else:
                offset = 0
                while data := (yield rocket.read(f.fileno(), CHUNK, offset)):
                    yield stream.write(data)
                    offset += len(data)
            return time.perf_counter() - started

    try:
        with listener:
            took = rocket.run(main(), engine=engine)
        out, _ = drain.communicate(timeout=120)
        return took, int(out)
    finally:
        if drain.poll() is None:
            drain.kill()
            drain.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="file size in MiB")
    parser.add_argument("--engine", choices=["io_uring", "selector"], help="only this engine")
    args = parser.parse_args(argv)
    size = args.size << 20
    with tempfile.TemporaryDirectory(prefix="rocket-sendfile-") as directory:
        path = Path(directory) / "big.bin"
        block = os.urandom(1 << 20)
        with open(path, "wb") as out:
            for _ in range(args.size):
                out.write(block)
        print(f"one {args.size} MiB file to one local TCP connection")
        for engine in [args.engine] if args.engine else available_engines():
            results = {}
            for mode in ("sendfile", "read/write"):
                took, got = _send(path, mode, engine)
                assert got == size, f"the reader got {got} bytes of {size}"
                results[mode] = size / took / 1e6
            ratio = results["sendfile"] / results["read/write"]
            print(
                f"  {engine:9} sendfile {results['sendfile']:8.0f} MB/s   "
                f"read/write ({CHUNK >> 10} KiB) {results['read/write']:8.0f} MB/s   "
                f"({ratio:.2f}x)"
            )


if __name__ == "__main__":
    main()
