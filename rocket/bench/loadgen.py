"""The echo load generator: the C program, compiled on first use and cached.

``loadgen.c`` ships inside the package. The first run compiles it with the
system's C compiler (``$CC``, ``cc`` or ``gcc``) into
``$XDG_CACHE_HOME/rocket`` (default ``~/.cache/rocket``), keyed by a hash of
the source. Without a compiler, :func:`python_loadgen` does the same job in
Python, with a lower ceiling (the report says so).
"""

from __future__ import annotations

import hashlib
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

__all__ = ["SOURCE", "c_loadgen", "python_loadgen"]

SOURCE = Path(__file__).with_name("loadgen.c")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "rocket"


def c_loadgen() -> Path | None:
    """The compiled load generator, building it if needed; None without a compiler."""
    source = SOURCE.read_bytes()
    binary = _cache_dir() / f"loadgen-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run(
        [compiler, "-O2", "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(f"rocket bench: compiling the load generator failed:\n{result.stderr}")
        return None
    partial.replace(binary)
    return binary


def python_loadgen(
    host: str, port: int, clients: int, size: int, warmup: float, duration: float
) -> None:
    """The same protocol as loadgen.c, in Python (run as a subprocess by the bench)."""
    sel = selectors.DefaultSelector()
    got: dict[socket.socket, int] = {}
    seq: dict[socket.socket, int] = {}

    def message(sock: socket.socket, n: int) -> bytes:
        return bytes((n + i + sock.fileno()) & 0xFF for i in range(size))

    for _ in range(clients):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        got[sock], seq[sock] = 0, 0
        sel.register(sock, selectors.EVENT_READ)
        sock.sendall(message(sock, 0))
    requests = errors = 0
    measuring = False
    cpu_start = 0.0
    phase_end = time.monotonic() + warmup
    while True:
        if time.monotonic() >= phase_end:
            if measuring:
                break
            measuring, requests, errors = True, 0, 0
            cpu_start = time.process_time()
            print("go", flush=True)
            phase_end = time.monotonic() + duration
        for key, _ in sel.select(0.1):
            peer = key.fileobj
            assert isinstance(peer, socket.socket)
            sock = peer
            data = sock.recv(size - got[sock])
            if not data:
                sys.exit("connection lost")
            expected = message(sock, seq[sock])
            if data != expected[got[sock] : got[sock] + len(data)]:
                errors += 1
            got[sock] += len(data)
            if got[sock] == size:
                got[sock], seq[sock] = 0, (seq[sock] + 1) & 0xFF
                requests += 1
                sock.sendall(message(sock, seq[sock]))
    cpu_us = int((time.process_time() - cpu_start) * 1e6)
    print(f"requests={requests} errors={errors} cpu_us={cpu_us}", flush=True)
    # Drain as loadgen.c does: wait (at most 2 s) for the echoes on their way, then
    # close, so that the server sees EOF rather than a reset.
    drain_end = time.monotonic() + 2.0
    while got and time.monotonic() < drain_end:
        for key, _ in sel.select(0.1):
            sock = cast("socket.socket", key.fileobj)
            data = sock.recv(size - got[sock])
            got[sock] += len(data)
            if not data or got[sock] == size:
                sel.unregister(sock)
                del got[sock]
                sock.close()
    for sock in got:
        sock.close()


if __name__ == "__main__":
    host, port, clients, size, warmup, duration = sys.argv[1:7]
    python_loadgen(host, int(port), int(clients), int(size), float(warmup), float(duration))
