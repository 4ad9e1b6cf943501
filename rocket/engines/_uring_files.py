"""How the io_uring engine performs file requests: read, write, readinto, open, stat, fsync.

A base class of :class:`~rocket.engines.uring.UringEngine` (it uses the
engine's ring, buffer pool and per-fd token list). Files differ from sockets in
three ways that cost code: a regular file returns all that was asked for (so a
big read needs a buffer of that size, but a pipe's does not); a short write at
the current position does not move it (see ``written_here``); and the kernel
cannot do all that ``os.open`` does (a FIFO that must wait for its peer, a path
that is not UTF-8): such opens and stats run in a thread of their own, whose
eventfd the ring reads, so time limits and cancelling work as for any request.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import _liburing
from rocket.engines._fresh import unfilled_bytes
from rocket.engines._uring_finish import (
    AGAIN,
    blocking_done,
    blocking_open,
    blocking_stat,
    count,
    empty,
    fresh_bytes,
    is_fifo,
    may_wait_for_peer,
    nothing,
    statx_result,
    written_here,
)
from rocket.engines._uring_pool import POOLED_SIZE, BufferPool
from rocket.engines._workers import BlockingCall

__all__ = ["UringFiles"]

_Finisher = Callable[[int, Any], Any]

_CURRENT = _liburing.CURRENT_POSITION


class UringFiles:
    """The file requests' preps; each returns ``(finisher, what to keep alive)``."""

    __slots__ = ()

    _ring: _liburing.Ring
    _pool: BufferPool
    _reopen: set[int]  # open tokens whose FIFO must be opened again, in a thread

    def _watch(self, token: int, fd: int) -> None:
        raise NotImplementedError

    def _read(self, token: int, r: ops.Read) -> tuple[_Finisher, Any]:
        offset = _CURRENT if r.offset is None else r.offset
        size = r.size
        if size == 0:
            self._ring.prep_nop(token)
            return empty, None
        if size > POOLED_SIZE:
            size = self._read_size(r)
        self._watch(token, r.fd)
        if size <= POOLED_SIZE:
            buf = self._pool.take(size)
            self._ring.prep_read(token, r.fd, buf, offset)
            return self._pool.give_back, buf
        # A big file read goes straight into a fresh bytes object, which no one
        # else can see until the finisher returns it (CPython's os.read does the
        # same): no zero-filling, no copy when the read is full.
        data = unfilled_bytes(size)
        iovec = self._ring.new_iovec(data)
        self._ring.prep_readv(token, r.fd, iovec, offset)
        return fresh_bytes, (data, iovec)

    def _read_size(self, r: ops.Read) -> int:
        """How big a buffer a read of more than a pooled buffer needs.

        Pipes, sockets, ttys may return fewer bytes than asked, so a pooled
        buffer will do. A regular file returns all it has: up to its size past
        the offset (at least a pooled buffer, for a file that grows or a /proc
        file that says size 0). Costs one fstat, only for reads this big.
        """
        try:
            st = os.fstat(r.fd)
        except OSError:  # let the kernel report it, as for any read
            return POOLED_SIZE
        if stat.S_ISBLK(st.st_mode):
            return r.size
        if not stat.S_ISREG(st.st_mode):
            return POOLED_SIZE
        left = st.st_size - (r.offset or 0)
        return min(r.size, max(left, POOLED_SIZE))

    def _write(self, token: int, r: ops.Write) -> tuple[_Finisher, Any]:
        self._watch(token, r.fd)
        if r.offset is not None:
            self._ring.prep_write(token, r.fd, r.data, r.offset)
            return count, None
        self._ring.prep_write(token, r.fd, r.data, _CURRENT)
        return written_here, (r.fd, len(r.data))

    def _readinto(self, token: int, r: ops.ReadInto) -> tuple[_Finisher, Any]:
        offset = _CURRENT if r.offset is None else r.offset
        view = memoryview(r.buffer)
        if view.nbytes == 0:
            self._ring.prep_nop(token)
            return count, None
        self._watch(token, r.fd)
        if type(r.buffer) is bytearray:
            self._ring.prep_read(token, r.fd, r.buffer, offset)
            return count, None
        iovec = self._ring.new_iovec(view.cast("B"))  # straight into the caller's buffer
        self._ring.prep_readv(token, r.fd, iovec, offset)
        return count, (view, iovec)

    def _open(self, token: int, r: ops.Open) -> tuple[_Finisher, Any]:
        """Open in the kernel; in a thread where the kernel cannot do what os.open does.

        The kernel's first, non-blocking try opens a FIFO for reading at once
        (the read then gives b"", no writer) and fails one for writing with
        ENXIO, where os.open waits for the other end. Such opens are done by
        os.open in a thread of their own, whose eventfd the ring reads (so
        timeouts and cancelling work as usual): a FIFO for writing is found
        with a stat first (such opens are rare), one for reading by an fstat of
        what the kernel opened, which is then closed. So are paths that are
        not UTF-8, which the liburing package cannot pass.
        """
        flags = r.flags
        wait_for_peer = may_wait_for_peer(flags)
        reopen = token in self._reopen
        if reopen or not _liburing.kernel_path(r.path):
            self._reopen.discard(token)
            return self._in_thread(token, blocking_open(r.path, flags, r.mode))
        if wait_for_peer and flags & os.O_ACCMODE == os.O_WRONLY and is_fifo(r.path):
            return self._in_thread(token, blocking_open(r.path, flags, r.mode))
        self._ring.prep_open(token, r.path, flags, r.mode)
        if wait_for_peer and not flags & (os.O_CREAT | os.O_TRUNC):  # those wait in the kernel
            return self._opened, token
        return count, None

    def _opened(self, res: int, token: int) -> Any:
        try:
            fifo = stat.S_ISFIFO(os.fstat(res).st_mode)
        except OSError:
            return res
        if not fifo:
            return res
        os.close(res)  # opened without waiting for a writer: open again, in a thread
        self._reopen.add(token)
        return AGAIN

    def _in_thread(self, token: int, call: BlockingCall) -> tuple[_Finisher, Any]:
        self._ring.prep_read(token, call.fd, call.buffer, 0)
        return blocking_done, call

    def _fsync(self, token: int, r: ops.Fsync) -> tuple[_Finisher, Any]:
        self._ring.prep_fsync(token, r.fd)
        return nothing, None

    def _statx(self, token: int, r: ops.Stat) -> tuple[_Finisher, Any]:
        if not _liburing.kernel_path(r.path):
            return self._in_thread(token, blocking_stat(r.path))
        statx = self._ring.new_statx()
        self._ring.prep_statx(token, r.path, statx)
        return statx_result, statx
