"""The io_uring engine: each request becomes one SQE; completions come back as CQEs.

Submission: :meth:`UringEngine.submit` only prepares an SQE in the shared
submission queue (if the queue is full, the adapter hands it to the kernel
and goes on). :meth:`UringEngine.wait` then submits the whole batch and
collects finished work in one ``io_uring_enter`` system call, and blocks (in
epoll, so that the GIL is released) only when nothing was ready.

Buffers: the kernel writes into a read buffer until the read's CQE is posted,
even if the fiber was cancelled long before. So ``_inflight[token]`` keeps the
request, its buffer and every other object the SQE points to (path, timespec,
statx, sockaddr) until that CQE is reaped; then the *finisher* turns the raw
``res`` into the request's result.

Datagrams: ``sendto`` is one SQE (a send with a destination address). The
``liburing`` package cannot build the ``msghdr`` that a ``recvmsg`` SQE needs
to return the sender's address, so ``recvfrom`` polls the socket for input
(``IORING_OP_POLL_ADD``) and its finisher then calls ``recvfrom`` without
waiting; if another reader took the datagram first, the poll is re-armed under
the same token (the finisher returns ``AGAIN``).

The engine's parts: this module is the engine itself (submit, wait, cancel,
close, the hot socket requests, timers); ``_uring_files`` performs file
requests, ``_uring_sockets`` the other socket requests, ``_uring_sendfile``
sendfile (as splices); ``_uring_internal`` the engine's own SQEs (time limits,
to_thread wake-ups); ``_uring_multishot`` stream receives and
``_uring_accepts`` (multishot, if ``multishot=True`` or
``$ROCKET_MULTISHOT=1``); ``_uring_pool`` the reused read buffers;
``_uring_finish`` each CQE's result;
``_uring_setup`` whether io_uring works here; ``_liburing`` all calls into
``liburing``.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import Completion, closed_completion, unsupported
from rocket.engines._workers import JobTable, MaxThreads
from rocket.errors import Cancelled, EngineUnavailable, os_error
from rocket.ops import Timeout, ToThread, timed_out
from rocket.request import IORequest

try:  # first: every module below needs the liburing package
    from rocket.engines import _liburing  # noqa: F401
except (ImportError, AttributeError) as exc:  # missing, or a release with another API
    if not sys.platform.startswith("linux"):
        _why = f"io_uring exists only on Linux, and this is {sys.platform}"
    elif isinstance(exc, ImportError):
        _why = f"the 'liburing' package cannot be imported ({exc})"
    else:
        _why = f"the installed 'liburing' package has another API than rocket's ({exc})"
    raise EngineUnavailable(
        f"io_uring engine unavailable: {_why}; install it with 'pip install "
        f"liburing==2026.3.30' (Linux only), or use engine='selector'"
    ) from exc

from rocket.engines._uring_files import UringFiles
from rocket.engines._uring_finish import (
    AGAIN,
    count,
    empty,
    nothing,
    sent_first,
)
from rocket.engines._uring_internal import INTERNAL, UringInternal
from rocket.engines._uring_multishot import MULTISHOT, MULTISHOT_END, stream_receives
from rocket.engines._uring_pool import POOLED_SIZE, BufferPool
from rocket.engines._uring_sendfile import UringSendFile
from rocket.engines._uring_setup import (
    IO_URING_DISABLED,
    REQUIRED_OPS,
    io_uring_disabled,
    missing_ops,
    open_ring,
)
from rocket.engines._uring_sockets import UringSockets

__all__ = ["IO_URING_DISABLED", "REQUIRED_OPS", "UringEngine", "io_uring_disabled", "missing_ops"]

_Finisher = Callable[[int, Any], Any]

_ERESTARTSYS = 512  # what a cancelled blocking open in an io-wq thread can end with
_STOPPED = (errno.ECANCELED, errno.EINTR, _ERESTARTSYS)  # how a cancelled request ends


class UringEngine(UringFiles, UringSockets, UringInternal, UringSendFile):
    """Performs requests with io_uring; see the module docstring."""

    name = "io_uring"
    max_threads = MaxThreads()  # to_thread's pool: rocket.run(max_threads=...)

    def __init__(self, entries: int = 4096, multishot: bool | None = None) -> None:
        self._ring = open_ring(entries)
        #: How many submission queue entries the ring got (fewer after ENOMEM).
        self.entries: int = self._ring.entries
        self._pool = pool = BufferPool()  # read buffers, reused (see _uring_pool)
        self._free_full, self._received = pool.full, pool.received  # for _recv, inline
        # Invariant: a token is in _inflight from submit until its CQE is reaped.
        self._inflight: dict[int, tuple[_Finisher, IORequest[Any], Any]] = {}
        self._cancelling: set[int] = set()
        # What notify_closing must stop, dropped when the fd closes: fd -> the token
        # submitted on it last (it may have finished), and fd -> earlier tokens that
        # were still in flight when a later one came (a reader beside a writer).
        self._on_fd: dict[int, int] = {}
        self._also_on_fd: dict[int, list[int]] = {}
        self._closed: set[int] = set()  # tokens stopped by notify_closing: fail with EBADF
        self._reopen: set[int] = set()  # opens that found a FIFO: open again in a thread
        # Link timeouts re-armed (poll again, open again) before the old one's CQE came.
        self._stale: dict[int, int] = {}
        # Invariant: an internal user_data is in _internal from prep until its CQE is reaped.
        self._internal: dict[int, Any] = {}
        self._jobs = JobTable(name="rocket-uring-worker")  # to_thread jobs out
        self._ready: list[Completion] = []  # completions that need no CQE
        self._splicing = {}  # sendfile token -> its progress and pipe (see _uring_sendfile)
        self._closing = False
        self.streams = stream_receives(self._ring, lambda c: self._ready.append(c), multishot)
        self._stream_fds = self.streams.by_fd  # fds a multishot reads: recv too takes from it
        self._prep: dict[type, Callable[[int, Any], tuple[_Finisher, Any]]] = {
            ops.Recv: self._recv,
            ops.StreamRecv: self.streams.submit if self.streams.on else self._recv,
            ops.Send: self._send,
            ops.SendAll: self._sendall,
            ops.Read: self._read,
            ops.Write: self._write,
            ops.ReadInto: self._readinto,
            ops.RecvInto: self._recv_into,
            ops.Accept: self.streams.accepts.submit if self.streams.on else self._accept,
            ops.Connect: self._connect,
            ops.Shutdown: self._shutdown,
            ops.Open: self._open,
            ops.Close: self._close,
            ops.Fsync: self._fsync,
            ops.Stat: self._statx,
            ops.Sleep: self._sleep,
            ops.SendTo: self._sendto,
            ops.RecvFrom: self._recvfrom,
            ops.WaitReadable: self._wait_readable,
            ops.SendFile: self._sendfile,
            Timeout: self.streams.timeouts(self._timeout),  # stream_recv's its own way
        }

    # ---------------------------------------------------------------- submit

    def submit(self, token: int, request: IORequest[Any]) -> None:
        """Prepare one SQE for ``request`` (sent to the kernel by :meth:`wait`)."""
        prep = self._prep.get(request.__class__)
        if prep is None:
            if request.__class__ is ToThread:
                return self._start_job(token, request, request)
            raise unsupported(self.name, request)
        finish, keep = prep(token, request)
        if finish is not None:  # None: a to_thread job under a time limit, not an SQE
            self._inflight[token] = (finish, request, keep)

    def _watch(self, token: int, fd: int) -> None:
        """Note that ``token`` uses ``fd``, for :meth:`notify_closing`.

        One dict store in the common case (one request at a time per fd, or the
        last one finished); an earlier token still in flight moves to ``_also_on_fd``.
        """
        last = self._on_fd.get(fd)
        self._on_fd[fd] = token
        if last is not None and last in self._inflight:
            self._also_watch(last, fd)

    def _also_watch(self, token: int, fd: int) -> None:
        tokens = self._also_on_fd.get(fd)
        if tokens is None:
            self._also_on_fd[fd] = [token]
            return
        if len(tokens) >= 8:  # forget the finished ones: the list stays short
            inflight = self._inflight
            tokens[:] = [t for t in tokens if t in inflight]
        tokens.append(token)

    def _recv(self, token: int, r: ops.Recv) -> tuple[_Finisher, Any]:
        fd = r.fd
        if fd in self._stream_fds:  # a multishot reads this fd: its kept bytes come first
            return self.streams.submit(token, r)
        size = r.size
        if size == 0:  # the kernel would wait for data; socket.recv(0) does not
            self._ring.prep_nop(token)
            return empty, None
        # A receive may return fewer bytes than asked: never more than a pooled
        # buffer, so that its cost follows what arrives, not what was asked for.
        if size >= POOLED_SIZE:  # BufferPool.take, inlined for the size most receives ask for
            free = self._free_full
            buf = free.pop() if free else bytearray(POOLED_SIZE)
            finish = self._received
        else:
            buf = self._pool.take(size)
            finish = self._pool.give_back
        self._ring.prep_recv(token, fd, buf)
        last = self._on_fd.get(fd)  # _watch, inlined: once per receive
        self._on_fd[fd] = token
        if last is not None and last in self._inflight:
            self._also_watch(last, fd)
        return finish, buf

    def _send(self, token: int, r: ops.Send) -> tuple[_Finisher, Any]:
        self._ring.prep_send(token, r.fd, r.data)
        self._watch(token, r.fd)
        return count, None

    def _sendall(self, token: int, r: ops.SendAll) -> tuple[_Finisher, Any]:
        fd = r.fd
        self._ring.prep_send(token, fd, r.data)  # the whole of it first: no copy
        last = self._on_fd.get(fd)  # _watch, inlined: once per sendall
        self._on_fd[fd] = token
        if last is not None and last in self._inflight:
            self._also_watch(last, fd)
        return sent_first, r  # a Sending only after a partial send (see _again)

    def _shutdown(self, token: int, r: ops.Shutdown) -> tuple[_Finisher, Any]:
        self._ring.prep_shutdown(token, r.fd, r.how)
        return nothing, None

    def _close(self, token: int, r: ops.Close) -> tuple[_Finisher, Any]:
        self.notify_closing(r.fd)
        self._ring.prep_close(token, r.fd)
        return nothing, None

    def notify_closing(self, fd: int) -> None:
        """``fd`` is about to be closed: fail every request on it at once with EBADF.

        As trio's I/O managers do. Each such request is cancelled in the kernel
        (its buffer stays in ``_inflight`` until its CQE comes); the cancels go
        to the kernel now, before the caller closes the fd and its number can
        be reused.
        """
        if self.streams.closing(fd):
            self._ring.submit()
        last = self._on_fd.pop(fd, None)
        if last is None:
            return
        tokens = self._also_on_fd.pop(fd, [])
        tokens.append(last)
        inflight, closed = self._inflight, self._closed
        if len(closed) > 64:  # forget tokens that finished before their cancel
            closed.intersection_update(inflight)
        stopped = False
        for token in tokens:
            if token in inflight and token not in closed:
                closed.add(token)
                if token not in self._cancelling:
                    self._ring.prep_cancel(token)
                    stopped = True
        if stopped:
            self._ring.submit()

    def _sleep(self, token: int, r: ops.Sleep) -> tuple[_Finisher, Any]:
        if r.seconds == 0:  # a NOP completes at the next submit; a zero timer costs ~40 us
            self._ring.prep_nop(token)
            return nothing, None
        timespec = self._ring.new_timespec(r.seconds)
        self._ring.prep_timeout(token, timespec)
        return nothing, timespec

    # ---------------------------------------------------------------- cancel

    def cancel(self, token: int) -> None:
        """Ask the kernel to cancel ``token``; its CQE still comes (see Engine)."""
        if self.streams.cancel(token):
            return
        if token in self._jobs:  # a to_thread job: dropped if no worker started it
            if self._jobs.cancel(token):
                if INTERNAL | token in self._internal:
                    self._ring.prep_cancel(INTERNAL | token)
                self._ready.append((token, None, Cancelled()))
            return
        if token in self._inflight and token not in self._cancelling:
            self._cancelling.add(token)
            self._ring.prep_cancel(token)

    # ------------------------------------------------------------------ wait

    def wait(self, timeout: float | None) -> list[Completion]:
        """Submit the batch, reap; block (GIL released) only if nothing was ready."""
        ring = self._ring
        ring.submit()
        done = ring.reap()
        if not done and not self._ready and timeout != 0:
            ring.wait(timeout)
            done = ring.reap()
        completions, self._ready = self._ready, []
        inflight, cancelling, append = self._inflight, self._cancelling, completions.append
        for token, res in done:
            if token >= INTERNAL:
                multi = MULTISHOT <= token < MULTISHOT_END
                (self.streams.done if multi else self._internal_done)(token, res, completions)
                continue
            if token == 0:  # a cancel request's own completion: nobody's
                continue
            finish, request, keep = inflight.pop(token)
            if res < 0:
                append(self._failed(token, request, -res))
                continue
            if finish is count:  # the common finishers, without a call
                value: Any = res
            elif finish is nothing or (finish is sent_first and res >= len(keep.data)):
                value = None  # done, or a sendall the kernel took whole
            else:
                try:
                    value = finish(res, keep)
                except Exception as exc:  # never lose the other completions
                    append((token, None, exc))
                    continue
                if value is AGAIN:
                    if token in cancelling:  # the cancel hit the finished poll
                        cancelling.discard(token)
                        append((token, None, Cancelled()))
                    elif token in self._closed:  # notify_closing came after this CQE
                        append(self._failed(token, request, errno.EBADF))
                    else:
                        self._again(token, finish, request, keep, res, completions)
                    continue
            if cancelling:  # a cancel that lost the race: forget it (its CQE is token 0)
                cancelling.discard(token)
            append((token, value, None))
        return completions

    def _failed(self, token: int, request: IORequest[Any], err: int) -> Completion:
        cancelling = token in self._cancelling
        if cancelling:
            self._cancelling.discard(token)
        limited = type(request) is Timeout
        base: IORequest[Any] = request.request if limited else request  # type: ignore[attr-defined]
        if base.__class__ is ops.SendFile:  # its pipe goes now
            self._splice_ended(token)
        if err == errno.ETIME and type(base) is ops.Sleep:
            return token, None, None  # a timer that ran out is a sleep that succeeded
        if cancelling and err in _STOPPED:
            return token, None, Cancelled()
        if token in self._closed:  # notify_closing stopped it
            self._closed.discard(token)
            if err in _STOPPED or base.__class__ is ops.StreamRecv:
                return closed_completion(token, base)
        if limited and err == errno.ECANCELED:  # its linked timeout fired
            return token, None, timed_out(request)  # type: ignore[arg-type]
        return token, None, os_error(err, base.describe())

    def fileno(self) -> int:
        """The ring fd, for a host loop to watch in guest mode: readable when CQEs are posted."""
        return self._ring.fileno()

    def before_idle(self) -> float | None:
        """Guest mode, before the host loop waits for :meth:`fileno`: submit what the reap
        prepared again (a sendall's rest, the eventfd read); 0 if completions are ready
        without a CQE, else None (the kernel runs this engine's timers: they post CQEs)."""
        if self._ring.queued():
            self._ring.submit()
        return 0.0 if self._ready else None

    # ----------------------------------------------------------------- close

    def close(self) -> None:
        """Cancel everything in flight, wait (bounded) for the kernel, close."""
        if self._ring.closed:
            return
        self._closing = True
        for token in list(self._inflight):
            self.cancel(token)
        for user_data in self._internal:
            self._ring.prep_cancel(user_data)
        self.streams.close()
        for _ in range(50):  # the kernel must be done with our buffers first
            if not self._inflight and not self._internal and not self.streams.busy():
                break
            self.wait(0.1)
        self._jobs.close()
        self._ring.close()
        for token in list(self._splicing):  # (only if the kernel never answered)
            self._splice_ended(token)
