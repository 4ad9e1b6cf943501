"""The bare trampoline: the ceiling that every rocket echo figure is reported against.

This is NOT part of rocket's runtime and imports none of it: only the ``liburing``
package and the standard library, so that ``python rocket/bench/trampoline.py``
runs without the rocket package being imported at all. It is the least a
generator-based io_uring server can do from Python:

* fibers are generators yielding plain tuples: ``("accept", fd)``,
  ``("recv", fd, buf)``, ``("send", fd, data)`` or ``("spawn", generator)``;
* one dict of in-flight operations ``{user_data: generator}``;
* one SQE per request, one ``io_uring_submit_and_wait`` per pass, ``CqeIter`` reaping;
* no cancellation, no timeouts, no argument checks, no error types (a failed
  operation's result is ``-errno``).

Whatever rocket's executor costs on top of this loop is the price of its features;
the benchmark's "x trampoline" column shows that price. Buffers stay referenced until
their completion is reaped because the generator that owns them is suspended inside
the in-flight dict, with the buffer in a local variable (the liburing wrapper keeps
no reference of its own).

Run it: ``python rocket/bench/trampoline.py`` prints ``ready PORT`` and echoes until killed.
"""

from __future__ import annotations

import os
import socket
import sys
from collections import deque
from collections.abc import Generator
from typing import Any

import liburing as _lu

__all__ = ["Op", "echo", "run", "serve"]

#: What a trampoline fiber yields, and what it is sent back (an int result or None).
Op = tuple[Any, ...]
Fiber = Generator[Op, Any, None]


def echo(fd: int) -> Fiber:
    """Send back everything the peer sends on ``fd`` until it closes, then close ``fd``."""
    buf = bytearray(65536)  # reused for every recv on this connection
    while True:
        n = yield ("recv", fd, buf)
        if n <= 0:  # EOF or -errno (the load generator went away)
            break
        data = bytes(buf[:n])  # send takes bytes, not a memoryview
        while data:
            sent = yield ("send", fd, data)
            if sent <= 0:
                break
            data = data[sent:]  # a short send: send the rest
        if data:
            break
    os.close(fd)


def serve(listen_fd: int) -> Fiber:
    """Accept forever; spawn one :func:`echo` fiber per connection."""
    while True:
        fd = yield ("accept", listen_fd)
        if fd >= 0:
            yield ("spawn", echo(fd))


def run(main: Fiber, entries: int = 4096) -> None:
    """Run ``main`` and the fibers it spawns until they have all finished."""
    ring, cqe = _lu.Ring(), _lu.Cqe()
    _lu.io_uring_queue_init(entries, ring)
    inflight: dict[int, Fiber] = {}  # Invariant: a fiber here has exactly one SQE in flight
    runnable: deque[tuple[Fiber, Any]] = deque([(main, None)])
    next_id = 1
    try:
        while True:
            while runnable:
                fiber, value = runnable.popleft()
                try:
                    op = fiber.send(value)
                except StopIteration:
                    continue
                if op[0] == "spawn":
                    runnable.append((op[1], None))
                    runnable.append((fiber, None))
                    continue
                sqe = _lu.io_uring_get_sqe(ring)
                if sqe is None:  # the SQ is full: hand it to the kernel, then take one
                    _lu.io_uring_submit(ring)
                    sqe = _lu.io_uring_get_sqe(ring)
                if op[0] == "recv":
                    _lu.io_uring_prep_recv(sqe, op[1], op[2])
                elif op[0] == "send":
                    _lu.io_uring_prep_send(sqe, op[1], op[2])
                else:  # "accept"; no address (passing a Sockaddr fails with EFAULT)
                    _lu.io_uring_prep_accept(sqe, op[1])
                sqe.user_data = next_id
                inflight[next_id] = fiber
                next_id += 1
            if not inflight:  # every fiber has finished
                break
            _lu.io_uring_submit_and_wait(ring, 1)
            reaped = 0
            for _ in _lu.CqeIter(ring, cqe):
                c = cqe[0]  # only cqe[0] is updated by the iterator
                try:
                    res = c.res
                except OSError as exc:  # the wrapper raises for a negative result
                    res = -(exc.errno or 1)
                runnable.append((inflight.pop(c.user_data), res))
                reaped += 1
            _lu.io_uring_cq_advance(ring, reaped)
    finally:
        _lu.io_uring_queue_exit(ring)


def main() -> None:
    """Listen on 127.0.0.1 (a free port, or ``argv[1]``), print ``ready PORT``, echo."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted ones inherit it
    listener.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    listener.listen(4096)
    print(f"ready {listener.getsockname()[1]}", flush=True)
    run(serve(listener.fileno()))


if __name__ == "__main__":
    main()
