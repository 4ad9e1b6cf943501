"""Rocket: asynchronous I/O with generator fibers on io_uring.

A fiber is a plain generator (or ``async def`` coroutine) that yields requests;
the executor runs fibers until they yield, hands the requests to an engine
(io_uring, or epoll/kqueue where io_uring is missing), and resumes each fiber
with its result::

    import rocket

    def main():
        fd = yield rocket.open("/etc/hostname")
        data = yield rocket.read(fd)
        yield rocket.close(fd)
        return data

    print(rocket.run(main()))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rocket._scope import CancelScope, current_effective_deadline, current_time
from rocket.barrier import Barrier, BrokenBarrierError
from rocket.errors import Cancelled, Deadlock, EngineUnavailable, RocketError
from rocket.fiber import Fiber
from rocket.files import File, open_file
from rocket.fs import listdir, mkdir, read_file, rename, scandir, unlink, write_file
from rocket.group import gather, race
from rocket.introspect import FiberInfo, format_snapshot, snapshot
from rocket.limiter import CapacityLimiter
from rocket.loop_handle import LoopHandle, current_loop
from rocket.net import (
    IncompleteReadError,
    LimitOverrunError,
    PipeStream,
    Server,
    Stream,
    open_connection,
    open_unix_connection,
    recvfrom,
    sendto,
    serve_tcp,
    serve_unix,
    stdin,
    stdout,
)
from rocket.net.sendfile import sendfile
from rocket.ops import (
    StatResult,
    accept,
    close,
    connect,
    fsync,
    open,  # noqa: A004 - rocket.open mirrors os.open
    read,
    readinto,
    recv,
    recv_into,
    send,
    sendall,
    shutdown,
    sleep,
    stat,
    stream_recv,
    wait_readable,
    write,
)
from rocket.process import DEVNULL, PIPE, STDOUT, Process, run_process, spawn_process
from rocket.queue import LifoQueue, PriorityQueue, Queue, QueueShutDown
from rocket.request import Composite, FiberBody, IORequest, Request
from rocket.rlock import RLock
from rocket.runner import run
from rocket.sched import current, join, spawn, yield_now
from rocket.semaphore import Semaphore
from rocket.signals import signal
from rocket.sync import Condition, Event, Lock, WouldBlock
from rocket.taskgroup import TaskGroup, TaskStatus
from rocket.threads import getaddrinfo, to_thread
from rocket.timeouts import TimeoutScope, fail_after, move_on_after, timeout
from rocket.workers import WorkerInfo, WorkersFailed, run_workers, worker_info, worker_ready

if TYPE_CHECKING:
    from rocket.net.tls import TLSStream

__all__ = [
    "Cancelled",
    "Composite",
    "Deadlock",
    "EngineUnavailable",
    "Fiber",
    "FiberBody",
    "IORequest",
    "Request",
    "RocketError",
    "StatResult",
    "accept",
    "close",
    "connect",
    "current",
    "fsync",
    "join",
    "open",
    "read",
    "readinto",
    "recv",
    "recv_into",
    "stream_recv",
    "run",
    "send",
    "sendall",
    "shutdown",
    "sleep",
    "spawn",
    "stat",
    "wait_readable",
    "write",
    "yield_now",
    # files (rocket.files)
    "File",
    "listdir",
    "mkdir",
    "open_file",
    "read_file",
    "rename",
    "scandir",
    "unlink",
    "write_file",
    # networking (rocket.net)
    "IncompleteReadError",
    "LimitOverrunError",
    "Server",
    "Stream",
    "TLSStream",
    "open_connection",
    "open_unix_connection",
    "recvfrom",
    "sendfile",
    "sendto",
    "serve_tcp",
    "serve_unix",
    # pipes and subprocesses (rocket.net.pipes, rocket.process)
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "PipeStream",
    "Process",
    "run_process",
    "spawn_process",
    "stdin",
    "stdout",
    # synchronization (rocket.sync, semaphore, rlock, barrier, limiter, queue)
    "Barrier",
    "BrokenBarrierError",
    "CapacityLimiter",
    "Condition",
    "Event",
    "Lock",
    "RLock",
    "WouldBlock",
    "LifoQueue",
    "PriorityQueue",
    "Queue",
    "QueueShutDown",
    "Semaphore",
    "CancelScope",
    "TaskGroup",
    "TaskStatus",
    "TimeoutScope",
    "current_effective_deadline",
    "current_time",
    "fail_after",
    "gather",
    "move_on_after",
    "race",
    "FiberInfo",
    "format_snapshot",
    "signal",
    "snapshot",
    "getaddrinfo",
    "timeout",
    "to_thread",
    # threads into rocket (rocket.loop_handle)
    "LoopHandle",
    "current_loop",
    # all cores (rocket.workers)
    "WorkerInfo",
    "WorkersFailed",
    "run_workers",
    "worker_info",
    "worker_ready",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``TLSStream`` and ``rocket.asyncio`` on first use: only programs that use TLS
    pay for importing ``ssl``, only those that use guest mode for ``asyncio``."""
    if name == "TLSStream":
        from rocket.net.tls import TLSStream

        return TLSStream
    if name == "asyncio":
        import rocket.asyncio

        return rocket.asyncio
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
