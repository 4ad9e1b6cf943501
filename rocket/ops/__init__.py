"""Every request an engine performs: one small class per operation, and its verb.

Users call lowercase verbs (``read``, ``recv``, ``sleep``...) that return request
objects (``Read``, ``Recv``, ``Sleep``...). A request only holds its checked
arguments; every engine knows every request class here and translates it
(io_uring: one SQE; readiness engine: a non-blocking call or a worker thread).
This package is the floor the engines stand on: it imports on any platform and
never touches an engine, and an engine imports nothing above it (not ``net``,
``threads``, ``timeouts``, ``sync`` or ``group``, which build on these requests).

* :mod:`~rocket.ops.files` -- open, read, readinto, write, close, fsync, stat, wait_readable;
* :mod:`~rocket.ops.sockets` -- accept, connect, recv, stream_recv, recv_into, send, sendall,
  shutdown;
* :mod:`~rocket.ops.datagrams` -- sendto, recvfrom;
* :mod:`~rocket.ops.sendfile` -- SendFile (a file to a socket; users call ``rocket.sendfile``);
* :mod:`~rocket.ops.timers` -- sleep, and timeout (a time limit on one request);
* :mod:`~rocket.ops.threads` -- to_thread.
"""

from __future__ import annotations

from rocket.ops._base import DEFAULT_SIZE
from rocket.ops.datagrams import DATAGRAM_SIZE, RecvFrom, SendTo, recvfrom, sendto
from rocket.ops.files import (
    Close,
    Fsync,
    Open,
    Read,
    ReadInto,
    Stat,
    StatResult,
    WaitReadable,
    Write,
    close,
    fsync,
    open,  # noqa: A004 - mirrors os.open
    read,
    readinto,
    stat,
    wait_readable,
    write,
)
from rocket.ops.sendfile import SendFile
from rocket.ops.sockets import (
    Accept,
    Connect,
    Recv,
    RecvInto,
    Send,
    SendAll,
    Shutdown,
    StreamRecv,
    accept,
    accepted_socket,
    connect,
    recv,
    recv_into,
    send,
    sendall,
    shutdown,
    stream_recv,
)
from rocket.ops.threads import ToThread, to_thread
from rocket.ops.timers import Sleep, Timeout, sleep, timed_out, timeout

__all__ = [
    "DATAGRAM_SIZE",
    "DEFAULT_SIZE",
    "Accept",
    "Close",
    "Connect",
    "Fsync",
    "Open",
    "Read",
    "ReadInto",
    "Recv",
    "RecvFrom",
    "RecvInto",
    "Send",
    "SendAll",
    "SendFile",
    "SendTo",
    "Shutdown",
    "Sleep",
    "Stat",
    "StatResult",
    "StreamRecv",
    "Timeout",
    "ToThread",
    "WaitReadable",
    "Write",
    "accept",
    "accepted_socket",
    "close",
    "connect",
    "fsync",
    "open",
    "read",
    "readinto",
    "recv",
    "recv_into",
    "recvfrom",
    "send",
    "sendall",
    "sendto",
    "shutdown",
    "sleep",
    "stat",
    "stream_recv",
    "timed_out",
    "timeout",
    "to_thread",
    "wait_readable",
    "write",
]
