"""The only module that calls the ``liburing`` package.

The package's API changed completely between its 2024 and 2026 releases, so
rocket pins one version (see ``pyproject.toml``) and keeps every call here.
Facts this module relies on (checked on Linux 6.18, liburing 2026.3.30):

* Reap with ``CqeIter``: only ``cqe[0]`` is updated by the iterator; indexing
  ``cqe[i]`` does not wrap around the ring and mixes up completions.
* ``cqe.res`` *raises* ``OSError`` for a negative result; we turn it back into
  ``-errno`` so that the engine sees one int.
* The wrapper keeps no reference to buffers, paths, ``Timespec``s or
  ``Statx``es: the engine must hold them until the completion is reaped.
* A prep function that raises has already taken an SQE, which then goes to the
  kernel as a NOP with user_data 0. User data 0 therefore means "nobody's".
* The package's blocking waits hold the GIL, so we block in ``epoll`` on the
  ring fd instead (``epoll.poll`` releases the GIL) and then reap.
* A linked timeout needs its request's SQE and its own submitted together:
  :meth:`Ring.reserve` makes room for both before the first is taken.
* ``IORING_SETUP_COOP_TASKRUN`` lets the kernel post completions at our next
  system call instead of interrupting Python with an IPI. We do not use
  ``IORING_SETUP_DEFER_TASKRUN``: with it, epoll on the ring fd missed timer
  completions (a 50 ms timeout never woke ``epoll_wait``), so the loop hung.
"""

from __future__ import annotations

import errno
import select
import socket
from typing import Any

import liburing

__all__ = [
    "CQE_F_BUFFER",
    "CQE_F_MORE",
    "CURRENT_POSITION",
    "LIBURING_VERSION",
    "MAX_WAIT",
    "MULTISHOT",
    "MULTISHOT_END",
    "Ring",
    "kernel_path",
    "probe_ops",
]

LIBURING_VERSION: str = liburing.__version__
#: The longest single wait (a day): epoll's timeout is an int of milliseconds.
MAX_WAIT = 86400.0
#: The offset that means "the current file position" to read/write.
CURRENT_POSITION = 2**64 - 1
#: user_data from here to MULTISHOT_END (within the engine's own range, above
#: every ``INTERNAL | token``): multishot SQEs, whose CQEs :meth:`Ring.reap` gives with
#: their flags, as ``res << 32 | flags``.
MULTISHOT = 2**63 + 2**62 + 2**61
MULTISHOT_END = 2**64 - 2**32  # (the engine's eventfd read is 2**64 - 1: not one of them)
CQE_F_MORE = liburing.IORING_CQE_F_MORE  # the multishot goes on: more CQEs will come
CQE_F_BUFFER = liburing.IORING_CQE_F_BUFFER  # a provided buffer was used: its id is flags >> 16

# Setup flags that fit a ring used by one thread: no cross-thread locking in
# the kernel, and completion work done only when we ask for completions.
_FAST_FLAGS = (
    liburing.IORING_SETUP_SINGLE_ISSUER
    | liburing.IORING_SETUP_COOP_TASKRUN
    | liburing.IORING_SETUP_TASKRUN_FLAG
)


# Looked up once: these run once per request.
_get_sqe = liburing.io_uring_get_sqe
_prep_recv = liburing.io_uring_prep_recv
_prep_send = liburing.io_uring_prep_send
_prep_nop = liburing.io_uring_prep_nop
_NOSIGNAL = socket.MSG_NOSIGNAL


def probe_ops() -> dict[str, bool]:
    """Map io_uring opcode names (``IORING_OP_READ``...) to kernel support."""
    return dict(liburing.probe() or {})


class Ring:
    """One io_uring instance: prepare SQEs, submit them, reap completions.

    Invariant: every SQE prepared here carries the caller's token as
    user_data (0 for fire-and-forget SQEs such as cancels).
    """

    def __init__(self, entries: int) -> None:
        self._ring = liburing.Ring()
        self._cqe = liburing.Cqe()
        self._last: Any = None  # the SQE prepared last
        self.entries = self._setup(entries)
        self.setup_flags = self._ring.flags
        if self._ring.features & liburing.IORING_FEAT_NO_IOWAIT:
            # An idle server would otherwise show 100% iowait in top.
            liburing.io_uring_set_iowait(self._ring, False)
        self._epoll = select.epoll()
        self._epoll.register(self._ring.ring_fd, select.EPOLLIN)
        self.closed = False

    def _setup(self, entries: int) -> int:
        """Create the ring; returns the number of SQ entries it got.

        ENOMEM (locked-memory limit) retries with a smaller ring; EINVAL retries
        without the fast flags (kernels before 6.1). Other errors propagate.
        """
        flags = _FAST_FLAGS
        while True:
            try:
                liburing.io_uring_queue_init(entries, self._ring, flags)
                return entries
            except OSError as exc:
                if exc.errno == errno.EINVAL and flags:
                    flags = 0
                elif exc.errno == errno.ENOMEM and entries > 64:
                    entries //= 4
                else:
                    raise

    # ------------------------------------------------------------ submission

    def _sqe(self) -> Any:
        sqe = _get_sqe(self._ring) or self._sqe_after_submit()
        self._last = sqe
        return sqe

    def _sqe_after_submit(self) -> Any:
        """The submission queue is full: hand it to the kernel, then take an entry."""
        self.submit()
        return liburing.io_uring_get_sqe(self._ring)

    def reserve(self, count: int) -> None:
        """Make room for ``count`` SQEs, so that a linked pair is submitted together."""
        if liburing.io_uring_sq_space_left(self._ring) < count:
            self.submit()

    def submit(self) -> None:
        """Hand queued SQEs to the kernel and let it post finished work."""
        while True:
            try:
                liburing.io_uring_submit_and_get_events(self._ring)
                return
            except InterruptedError:
                continue

    def prep_read(self, token: int, fd: int, buf: bytearray, offset: int) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_read(sqe, fd, buf, offset)
        sqe.user_data = token

    def prep_write(self, token: int, fd: int, data: bytes, offset: int) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_write(sqe, fd, data, offset)
        sqe.user_data = token

    def prep_recv(self, token: int, fd: int, buf: bytearray) -> None:
        sqe = self._last = _get_sqe(self._ring) or self._sqe_after_submit()  # _sqe, inlined
        _prep_recv(sqe, fd, buf, 0)
        sqe.user_data = token

    def prep_send(self, token: int, fd: int, data: bytes) -> None:
        sqe = self._last = _get_sqe(self._ring) or self._sqe_after_submit()  # _sqe, inlined
        _prep_send(sqe, fd, data, _NOSIGNAL)
        sqe.user_data = token

    def prep_open(self, token: int, path: str, flags: int, mode: int) -> None:
        """Open ``path``: a str only, which the package encodes as UTF-8 (so
        :func:`kernel_path` must say yes first)."""
        sqe = self._sqe()
        liburing.io_uring_prep_open(sqe, path, flags, mode)
        sqe.user_data = token

    def prep_readv(self, token: int, fd: int, iovec: Any, offset: int) -> None:
        """Read into the buffers of an :func:`new_iovec` (any writable buffer, no copy)."""
        sqe = self._sqe()
        liburing.io_uring_prep_readv(sqe, fd, iovec, offset)
        sqe.user_data = token

    def new_iovec(self, buffer: Any) -> Any:
        """An iovec over one buffer (bytes, bytearray or memoryview); keep both alive."""
        return liburing.Iovec([buffer])

    def prep_close(self, token: int, fd: int) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_close(sqe, fd)
        sqe.user_data = token

    def prep_fsync(self, token: int, fd: int) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_fsync(sqe, fd, 0)
        sqe.user_data = token

    def prep_splice(self, token: int, fd_in: int, off_in: int, fd_out: int, size: int) -> None:
        """Move ``size`` bytes from ``fd_in`` at ``off_in`` (-1: a pipe, no offset) to ``fd_out``.

        One side must be a pipe. The kernel always runs a splice in an io-wq
        worker, which blocks there (on a full socket, say) until cancelled.
        """
        sqe = self._sqe()
        liburing.io_uring_prep_splice(sqe, fd_in, off_in, fd_out, -1, size, 0)
        sqe.user_data = token

    def new_statx(self) -> Any:
        """A buffer for :meth:`prep_statx`, read with :func:`statx_fields`."""
        return liburing.Statx()

    def prep_statx(self, token: int, path: str, statx: Any) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_statx(sqe, statx, path)
        sqe.user_data = token

    def prep_accept(self, token: int, fd: int) -> None:
        sqe = self._sqe()
        # No address buffer: the package's Sockaddr gives EFAULT here.
        liburing.io_uring_prep_accept(sqe, fd, None, socket.SOCK_CLOEXEC)
        sqe.user_data = token

    def new_sockaddr(self, family: int, address: Any) -> Any:
        """A kernel socket address for :meth:`prep_connect`."""
        if family == socket.AF_UNIX:
            return liburing.Sockaddr(family, address, 0)
        return liburing.Sockaddr(family, address[0], address[1])

    def prep_connect(self, token: int, fd: int, sockaddr: Any) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_connect(sqe, fd, sockaddr)
        sqe.user_data = token

    def prep_sendto(self, token: int, fd: int, data: bytes, sockaddr: Any) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_sendto(sqe, fd, data, sockaddr, socket.MSG_NOSIGNAL)
        sqe.user_data = token

    def prep_poll_in(self, token: int, fd: int) -> None:
        """Complete when ``fd`` has input (or an error, or hang-up) to report."""
        sqe = self._sqe()
        liburing.io_uring_prep_poll_add(sqe, fd, select.POLLIN)
        sqe.user_data = token

    def prep_poll_out(self, token: int, fd: int) -> None:
        """Complete when ``fd`` can be written to (or has an error, or hang-up, to report)."""
        sqe = self._sqe()
        liburing.io_uring_prep_poll_add(sqe, fd, select.POLLOUT)
        sqe.user_data = token

    def prep_shutdown(self, token: int, fd: int, how: int) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_shutdown(sqe, fd, how)
        sqe.user_data = token

    def new_timespec(self, seconds: float) -> Any:
        """A kernel timespec for :meth:`prep_timeout`."""
        return liburing.timespec(seconds)

    def prep_timeout(self, token: int, timespec: Any) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_timeout(sqe, timespec, 0, 0)
        sqe.user_data = token

    def prep_link_timeout(self, token: int, timespec: Any) -> None:
        """Link a timeout to the SQE prepared last (call :meth:`reserve` (2) before it).

        The request gets ``IOSQE_IO_LINK``; when the time runs out the kernel
        cancels it (its CQE: -ECANCELED) and this SQE completes with -ETIME;
        if the request finishes first, this one completes with -ECANCELED.
        """
        last = self._last  # set_flags replaces the flags: keep the request's own
        liburing.io_uring_sqe_set_flags(last, last.flags | liburing.IOSQE_IO_LINK)
        sqe = self._sqe()
        liburing.io_uring_prep_link_timeout(sqe, timespec, 0)
        sqe.user_data = token

    def prep_nop(self, token: int) -> None:
        """An SQE that does nothing: its CQE (res 0) comes at the next submit."""
        sqe = self._last = _get_sqe(self._ring) or self._sqe_after_submit()  # _sqe, inlined
        _prep_nop(sqe)
        sqe.user_data = token

    def prep_recv_multishot(self, user_data: int, fd: int, group: int) -> None:
        """Receive on ``fd`` until cancelled, each CQE into a buffer of ``group``.

        The legacy provided buffers (``IORING_OP_PROVIDE_BUFFERS``): the package's
        ``io_uring_setup_buf_ring`` cannot be called (its ``err`` out-parameter
        raises TypeError for every argument), and ``BufReg`` has no fields to fill.
        """
        sqe = self._sqe()
        liburing.io_uring_prep_recv_multishot(sqe, fd, None, 0)
        liburing.io_uring_sqe_set_flags(sqe, liburing.IOSQE_BUFFER_SELECT)
        liburing.io_uring_sqe_set_buf_group(sqe, group)
        sqe.user_data = user_data

    def prep_multishot_accept(self, user_data: int, fd: int) -> None:
        """Accept connections on ``fd`` until cancelled: one CQE per connection (res: its fd)."""
        sqe = self._sqe()
        liburing.io_uring_prep_multishot_accept(sqe, fd, None, socket.SOCK_CLOEXEC)
        sqe.user_data = user_data

    def prep_provide_buffer(self, buf: bytearray, group: int, bid: int) -> None:
        """Give ``buf`` to the kernel as buffer ``bid`` of ``group`` (no CQE unless it fails).

        One buffer per SQE: the package passes the bytearray's length as each
        buffer's length, so ``nr`` > 1 would reach past its end.
        """
        sqe = self._sqe()
        liburing.io_uring_prep_provide_buffers(sqe, buf, 1, group, bid)
        liburing.io_uring_sqe_set_flags(sqe, liburing.IOSQE_CQE_SKIP_SUCCESS)
        sqe.user_data = 0

    def prep_cancel(self, target: int) -> None:
        """Ask the kernel to cancel the request with user_data ``target``."""
        sqe = self._sqe()
        liburing.io_uring_prep_cancel64(sqe, target, 0)
        sqe.user_data = 0

    # ------------------------------------------------------------ completion

    def reap(self) -> list[tuple[int, int]]:
        """Every posted completion as ``(user_data, res)``; res < 0 is -errno."""
        done: list[tuple[int, int]] = []
        append = done.append
        cqe = self._cqe
        for _ in liburing.CqeIter(self._ring, cqe):
            entry = cqe[0]
            try:
                res = entry.res
            except OSError as exc:
                res = -(exc.errno or errno.EIO)
            user_data = entry.user_data
            if user_data < MULTISHOT or user_data >= MULTISHOT_END:
                append((user_data, res))
            else:
                append((user_data, res << 32 | entry.flags))
        if done:
            liburing.io_uring_cq_advance(self._ring, len(done))
        return done

    def wait(self, timeout: float | None) -> None:
        """Block until completions may be ready, without holding the GIL.

        A signal ends the wait early (Python runs its handler; Ctrl-C raises
        KeyboardInterrupt here); the caller just reaps and goes on.
        """
        if timeout is not None and timeout > MAX_WAIT:
            timeout = MAX_WAIT  # epoll takes at most 2**31-1 ms; the caller just waits again
        try:
            self._epoll.poll(-1 if timeout is None else timeout, 1)
        except InterruptedError:
            pass
        self.submit()  # runs the kernel's pending completion work

    def fileno(self) -> int:
        """The ring fd: readable (epoll, poll) while completions are posted."""
        return int(self._ring.ring_fd)

    def queued(self) -> int:
        """How many prepared SQEs the kernel has not been given yet."""
        return int(liburing.io_uring_sq_ready(self._ring))

    def close(self) -> None:
        """Tear the ring down (idempotent)."""
        if not self.closed:
            self.closed = True
            self._epoll.close()
            liburing.io_uring_queue_exit(self._ring)


def kernel_path(path: str) -> bool:
    """True if the package can pass ``path`` to the kernel unchanged.

    It encodes a str as strict UTF-8 and refuses bytes, so a name with
    non-UTF-8 bytes (os.fsdecode gives surrogates for them) cannot go through it.
    """
    if path.isascii():
        return True
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


def statx_fields(statx: Any) -> tuple[int, int, float]:
    """``(size, mode, mtime)`` from a filled Statx buffer."""
    return statx.size, statx.mode, statx.mtime
