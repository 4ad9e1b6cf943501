"""Finishers of the io_uring engine: how each request's CQE becomes its result.

A finisher is called as ``finish(res, keep)`` once the CQE has been reaped (so
the kernel is done with every buffer in ``keep``); ``res`` is never negative
here (errors go through ``UringEngine._failed``). A finisher that returns
:data:`AGAIN` has more to do: the engine prepares the request's next SQE under
the same token (the rest of a ``sendall``, a datagram poll that lost its
datagram). Also here: the helpers that prepare file work the ring cannot do
(a FIFO open that must wait for a peer, a path that is not UTF-8).
"""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import _liburing
from rocket.engines._workers import BlockingCall

__all__ = [
    "AGAIN",
    "SEND_CHUNK",
    "Sending",
    "accepted",
    "blocking_done",
    "blocking_open",
    "blocking_stat",
    "copy_into",
    "copy_out",
    "count",
    "empty",
    "fresh_bytes",
    "is_fifo",
    "may_wait_for_peer",
    "nothing",
    "received_from",
    "received_into",
    "sent_first",
    "sent_some",
    "statx_result",
    "written_here",
]


def is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:  # let the open report it
        return False


def fresh_bytes(res: int, keep: tuple[bytes, Any]) -> bytes:
    """A big read went straight into a fresh ``bytes`` (see ``_read``): no copy if full."""
    buf = keep[0]
    return buf if res == len(buf) else bytes(memoryview(buf)[:res])


def copy_out(res: int, buf: bytearray) -> bytes:
    """The first ``res`` bytes of ``buf``, as ``bytes``."""
    if res <= 2048:  # a slice copies twice, but costs less than a memoryview here
        return bytes(buf[:res])
    return bytes(buf) if res == len(buf) else bytes(memoryview(buf)[:res])


def received_into(free: list[bytearray], limit: int) -> Callable[[int, bytearray], bytes]:
    """The finisher of receives into buffers from ``free``: copy out, put the buffer back.

    It closes over the list, not the engine (no reference cycle), and is called
    only once the CQE is reaped, so the kernel is done with the buffer. Reuse
    spares a fresh 64 KiB allocation per receive, which profiling showed to cost
    more than everything else in an echo server.
    """

    def received(res: int, buf: bytearray) -> bytes:
        if res <= 2048:  # copy_out, inlined: once per receive
            data = bytes(buf[:res])
        else:
            data = bytes(buf) if res == len(buf) else bytes(memoryview(buf)[:res])
        if len(free) < limit:
            free.append(buf)
        return data

    return received


def empty(res: int, keep: Any) -> bytes:
    return b""


def written_here(res: int, keep: tuple[int, int]) -> int:
    """A write at the current position: after a short one, move the position ourselves.

    The kernel (checked on Linux 6.18) does not advance the position after a
    short write at offset -1 to a regular file, though it does after a full one
    (see LIBURING_NOTES.md); os.write would have advanced it by ``res``. With
    O_APPEND the position belongs at the end of the file. Pipes and sockets
    have no position. Only short writes pay for the fstat.
    """
    fd, size = keep
    if 0 < res < size:
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode) or stat.S_ISBLK(mode):
                if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
                    os.lseek(fd, 0, os.SEEK_END)
                else:
                    os.lseek(fd, res, os.SEEK_CUR)
        except OSError:  # closed meanwhile: nothing to fix
            pass
    return res


def blocking_done(res: int, call: BlockingCall) -> Any:
    return call.result()


def count(res: int, keep: Any) -> int:
    return res


def nothing(res: int, keep: Any) -> None:
    return None


def copy_into(res: int, keep: tuple[Any, bytearray]) -> int:
    target, scratch = keep
    memoryview(target).cast("B")[:res] = memoryview(scratch)[:res]
    return res


def may_wait_for_peer(flags: int) -> bool:
    """Whether opening a FIFO with ``flags`` waits for the other end (as os.open does)."""
    return (flags & os.O_ACCMODE) != os.O_RDWR and not flags & (os.O_NONBLOCK | os.O_PATH)


def blocking_open(path: str, flags: int, mode: int) -> BlockingCall:
    return BlockingCall(lambda: os.open(os.fsencode(path), flags, mode), os.close)


def blocking_stat(path: str) -> BlockingCall:
    def call() -> ops.StatResult:
        st = os.stat(os.fsencode(path))
        return ops.StatResult(st.st_size, st.st_mode, st.st_mtime)

    return BlockingCall(call, lambda _: None)


def accepted(res: int, request: ops.Accept) -> tuple[Any, Any]:
    return ops.accepted_socket(request, res)


def statx_result(res: int, statx: Any) -> ops.StatResult:
    return ops.StatResult(*_liburing.statx_fields(statx))


#: Returned by a finisher whose request must be prepared again (same token).
AGAIN: Any = object()

#: The most a resubmitted send copies at a time (the package sends only ``bytes``).
SEND_CHUNK = 256 * 1024


class Sending:
    """The progress of one ``sendall``: what is sent so far, and when a time limit ends.

    After a partial send the rest goes out in chunks of at most ``SEND_CHUNK``,
    each copied once, so a large send to a slow reader costs linear time.
    """

    __slots__ = ("chunk", "data", "deadline", "sent", "view")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0
        self.view: memoryview | None = None
        self.deadline: float | None = None  # set under rocket.timeout()
        self.chunk = data  # what the send in flight sends: kept alive until its CQE

    def rest(self) -> bytes:
        """The next chunk to send (kept as ``chunk``: the package keeps no reference)."""
        if self.view is None:
            self.view = memoryview(self.data)
        self.chunk = bytes(self.view[self.sent : self.sent + SEND_CHUNK])
        return self.chunk


def sent_first(res: int, request: ops.SendAll) -> Any:
    """The first send of a ``sendall``: usually all of it (then no Sending is made)."""
    return None if res >= len(request.data) else AGAIN


def sent_some(res: int, sending: Sending) -> Any:
    sending.sent += res
    return None if sending.sent >= len(sending.data) else AGAIN


def received_from(res: int, request: ops.RecvFrom) -> Any:
    try:
        return request.receive()
    except BlockingIOError:  # another reader took the datagram: poll again
        return AGAIN
