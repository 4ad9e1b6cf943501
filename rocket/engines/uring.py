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
the same token (the finisher returns ``_AGAIN``).

The engine's own SQEs carry user_data at or above ``_INTERNAL`` (2**63), so
they never meet the executor's tokens; ``_internal`` keeps what they point
to (a timespec, the wake buffer) until their CQE is reaped:

* ``timeout(s, request)``: the request's SQE is linked (``IOSQE_IO_LINK``)
  to a ``link_timeout`` SQE with user_data ``_INTERNAL | token``. When it
  fires the kernel cancels the request, whose -ECANCELED (unless the
  executor asked to cancel it) becomes ``TimeoutError``.
* ``to_thread``: the job runs in a :class:`~rocket.engines._workers.WorkerPool`
  (started on first use). A read of the pool's eventfd (user_data ``_WAKE``)
  stays in flight while jobs are out: a finished job completes it, which
  wakes the ring like any CQE; then the finished jobs are collected and the
  read is armed again. A time limit on a job is a plain timeout SQE; when it
  fires, a job no worker has started is dropped with ``TimeoutError``.
"""

from __future__ import annotations

import errno
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from rocket import ops
from rocket.engines import Completion
from rocket.engines._workers import WorkerPool
from rocket.errors import Cancelled, EngineUnavailable, os_error
from rocket.ops import Timeout, ToThread, timed_out
from rocket.request import IORequest

try:
    from rocket.engines import _liburing
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

__all__ = ["IO_URING_DISABLED", "REQUIRED_OPS", "UringEngine", "io_uring_disabled", "missing_ops"]

#: Kernel operations the engine uses; the probe must report all of them.
REQUIRED_OPS = (
    "IORING_OP_READ",
    "IORING_OP_WRITE",
    "IORING_OP_OPENAT",
    "IORING_OP_CLOSE",
    "IORING_OP_FSYNC",
    "IORING_OP_STATX",
    "IORING_OP_ACCEPT",
    "IORING_OP_CONNECT",
    "IORING_OP_RECV",
    "IORING_OP_SEND",
    "IORING_OP_SHUTDOWN",
    "IORING_OP_TIMEOUT",
    "IORING_OP_LINK_TIMEOUT",
    "IORING_OP_ASYNC_CANCEL",
    "IORING_OP_POLL_ADD",
)

#: Linux's switch: 0 io_uring for all, 1 only for kernel.io_uring_group, 2 for nobody.
IO_URING_DISABLED = "/proc/sys/kernel/io_uring_disabled"

_ADVICE = "or use engine='selector' (what engine='auto' falls back to)"


def io_uring_disabled() -> int | None:
    """The value of :data:`IO_URING_DISABLED`, or None where it does not exist."""
    try:
        with open(IO_URING_DISABLED) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


_probe_cache: list[str] | None = None


def missing_ops() -> list[str]:
    """The :data:`REQUIRED_OPS` that this kernel's io_uring lacks (probed once)."""
    global _probe_cache
    if _probe_cache is None:
        supported = _liburing.probe_ops()
        _probe_cache = [op for op in REQUIRED_OPS if not supported.get(op)]
    return list(_probe_cache)


def _unavailable(exc: OSError, disabled: int | None) -> EngineUnavailable | OSError:
    """Explain a failed io_uring_setup: why, and what to do about it.

    EPERM, EACCES and ENOSYS mean io_uring cannot be used here (so ``auto`` falls
    back); anything else, such as ENOMEM, is a real error and stays an OSError.
    """
    code = exc.errno
    if code == errno.EPERM and disabled == 1:
        why = (
            "io_uring_setup was refused (EPERM): /proc/sys/kernel/io_uring_disabled is 1, "
            "so only members of the group in /proc/sys/kernel/io_uring_group may use it; "
            "add this user to that group,"
        )
    elif code in (errno.EPERM, errno.EACCES):
        why = (
            f"io_uring_setup was refused ({errno.errorcode[code]}), most likely by a seccomp "
            f"filter: the default profiles of Docker, Podman and containerd block io_uring. "
            f"Run with a seccomp profile that allows io_uring_setup, io_uring_enter and "
            f"io_uring_register (docker run --security-opt seccomp=PROFILE.json),"
        )
    elif code == errno.ENOSYS:
        why = (
            f"io_uring_setup does not exist here (ENOSYS): the kernel (Linux "
            f"{platform.release()}) is older than 5.1 or built without CONFIG_IO_URING, or a "
            f"sandbox such as gVisor hides it; use another kernel,"
        )
    elif code == errno.ENOMEM:
        soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft} bytes"
        return OSError(
            errno.ENOMEM,
            f"io_uring_setup failed with ENOMEM even for a 64-entry ring: the locked-memory "
            f"limit (RLIMIT_MEMLOCK, 'ulimit -l') is {limit}; raise it (ulimit -l unlimited, "
            f"or LimitMEMLOCK=infinity for a systemd service), {_ADVICE}",
        )
    else:
        return exc
    return EngineUnavailable(f"io_uring engine unavailable: {why} {_ADVICE}")


_Finisher = Callable[[int, Any], Any]

#: Read/recv buffers up to this size are reused, holding at most _POOL_BYTES in all
#: (a bound on the total, since reads of many different sizes each get their own list).
_POOLED_SIZE = 65536
_POOL_BYTES = 32 * 1024 * 1024
_CURRENT = _liburing.CURRENT_POSITION
_INTERNAL = 2**63  # user_data from here up: the engine's own SQEs
_WAKE = 2**64 - 1  # the read of the worker pool's eventfd


def _bytes(res: int, buf: bytearray) -> bytes:
    return bytes(buf) if res == len(buf) else bytes(memoryview(buf)[:res])


def _count(res: int, keep: Any) -> int:
    return res


def _nothing(res: int, keep: Any) -> None:
    return None


def _copy_into(res: int, keep: tuple[Any, bytearray]) -> int:
    target, scratch = keep
    memoryview(target).cast("B")[:res] = memoryview(scratch)[:res]
    return res


def _accepted(res: int, request: ops.Accept) -> tuple[Any, Any]:
    return ops.accepted_socket(request, res)


def _stat(res: int, statx: Any) -> ops.StatResult:
    return ops.StatResult(*_liburing.statx_fields(statx))


#: Returned by a finisher whose request must be prepared again (same token).
_AGAIN: Any = object()

#: The most a resubmitted send copies at a time (the package sends only ``bytes``).
_SEND_CHUNK = 256 * 1024


class _Sending:
    """The progress of one ``sendall``: what is sent so far, and when a time limit ends.

    After a partial send the rest goes out in chunks of at most ``_SEND_CHUNK``,
    each copied once, so a large send to a slow reader costs linear time.
    """

    __slots__ = ("chunk", "data", "deadline", "sent", "timespec", "view")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sent = 0
        self.view: memoryview | None = None
        self.deadline: float | None = None  # set under rocket.timeout()
        self.timespec: Any = None  # the time limit of the send in flight
        self.chunk = data  # what the send in flight sends: kept alive until its CQE

    def rest(self) -> bytes:
        """The next chunk to send (kept as ``chunk``: the package keeps no reference)."""
        if self.view is None:
            self.view = memoryview(self.data)
        self.chunk = bytes(self.view[self.sent : self.sent + _SEND_CHUNK])
        return self.chunk


def _sent_some(res: int, sending: _Sending) -> Any:
    sending.sent += res
    return None if sending.sent >= len(sending.data) else _AGAIN


def _received_from(res: int, request: ops.RecvFrom) -> Any:
    try:
        return request.receive()
    except BlockingIOError:  # another reader took the datagram: poll again
        return _AGAIN


class UringEngine:
    """Performs requests with io_uring; see the module docstring."""

    name = "io_uring"

    def __init__(self, entries: int = 4096) -> None:
        disabled = io_uring_disabled()
        if disabled == 2:
            raise EngineUnavailable(
                f"io_uring engine unavailable: io_uring is disabled on this machine "
                f"(/proc/sys/kernel/io_uring_disabled is 2); an administrator can allow it "
                f"with 'sysctl kernel.io_uring_disabled=0', {_ADVICE}"
            )
        try:
            # Retries with fewer entries on ENOMEM, and without the fast flags on EINVAL.
            self._ring = _liburing.Ring(entries)
        except OSError as exc:
            raise _unavailable(exc, disabled) from exc
        missing = missing_ops()
        if missing:
            self._ring.close()
            raise EngineUnavailable(
                f"io_uring engine unavailable: this kernel's io_uring (Linux "
                f"{platform.release()}) lacks {', '.join(missing)}, which rocket needs "
                f"(Linux 5.11 and newer have them all); upgrade the kernel, {_ADVICE}"
            )
        #: How many submission queue entries the ring got (fewer after ENOMEM).
        self.entries: int = self._ring.entries
        # Invariant: a buffer is in _free_buffers only while no SQE refers to it.
        self._free_buffers: dict[int, list[bytearray]] = {}
        self._free_bytes = 0  # Invariant: the total size of the buffers in _free_buffers
        # Invariant: a token is in _inflight from submit until its CQE is reaped.
        self._inflight: dict[int, tuple[_Finisher, IORequest[Any], Any]] = {}
        self._cancelling: set[int] = set()
        # Invariant: an internal user_data is in _internal from prep until its CQE is reaped.
        self._internal: dict[int, Any] = {}
        self._pool: WorkerPool | None = None
        self._jobs: dict[int, ToThread[Any] | Timeout[Any]] = {}  # to_thread jobs out
        self._ready: list[Completion] = []  # completions that need no CQE
        self._closing = False
        self._prep: dict[type, Callable[[int, Any], tuple[_Finisher, Any]]] = {
            ops.Recv: self._recv,
            ops.Send: self._send,
            ops.SendAll: self._sendall,
            ops.Read: self._read,
            ops.Write: self._write,
            ops.ReadInto: self._readinto,
            ops.RecvInto: self._recv_into,
            ops.Accept: self._accept,
            ops.Connect: self._connect,
            ops.Shutdown: self._shutdown,
            ops.Open: self._open,
            ops.Close: self._close,
            ops.Fsync: self._fsync,
            ops.Stat: self._statx,
            ops.Sleep: self._sleep,
            ops.SendTo: self._sendto,
            ops.RecvFrom: self._recvfrom,
            Timeout: self._timeout,
        }

    # ---------------------------------------------------------------- submit

    def submit(self, token: int, request: IORequest[Any]) -> None:
        """Prepare one SQE for ``request`` (sent to the kernel by :meth:`wait`)."""
        prep = self._prep.get(request.__class__)
        if prep is None:
            if request.__class__ is ToThread:
                return self._start_job(token, request, request)
            raise TypeError(f"the io_uring engine cannot perform {request.describe()}")
        finish, keep = prep(token, request)
        if finish is not None:  # None: a to_thread job under a time limit, not an SQE
            self._inflight[token] = (finish, request, keep)

    def _buffer(self, size: int) -> bytearray:
        """A buffer of ``size`` bytes, reused if one is free (see :meth:`_pooled_bytes`)."""
        free = self._free_buffers.get(size)
        if free:
            self._free_bytes -= size
            return free.pop()
        return bytearray(size)

    def _pooled_bytes(self, res: int, buf: bytearray) -> bytes:
        """Copy out what the kernel wrote, and put the buffer back for reuse.

        Only called once the CQE has been reaped, so the kernel is done with
        ``buf``; a buffer whose request failed or was cancelled is never
        reused. This spares a fresh 64 KiB allocation per receive, which
        profiling showed to cost more than everything else in an echo server.
        """
        data = bytes(buf) if res == len(buf) else bytes(memoryview(buf)[:res])
        if self._free_bytes + len(buf) <= _POOL_BYTES:
            self._free_buffers.setdefault(len(buf), []).append(buf)
            self._free_bytes += len(buf)
        return data

    def _recv(self, token: int, r: ops.Recv) -> tuple[_Finisher, Any]:
        size = r.size
        if size <= _POOLED_SIZE:
            free = self._free_buffers.get(size)  # _buffer, inlined: once per receive
            if free:
                self._free_bytes -= size
                buf = free.pop()
            else:
                buf = bytearray(size)
            self._ring.prep_recv(token, r.fd, buf)
            return self._pooled_bytes, buf
        buf = bytearray(size)
        self._ring.prep_recv(token, r.fd, buf)
        return _bytes, buf

    def _send(self, token: int, r: ops.Send) -> tuple[_Finisher, Any]:
        self._ring.prep_send(token, r.fd, r.data)
        return _count, None

    def _sendall(self, token: int, r: ops.SendAll) -> tuple[_Finisher, Any]:
        self._ring.prep_send(token, r.fd, r.data)  # the whole of it first: no copy
        return _sent_some, _Sending(r.data)

    def _read(self, token: int, r: ops.Read) -> tuple[_Finisher, Any]:
        buf = self._buffer(r.size) if r.size <= _POOLED_SIZE else bytearray(r.size)
        self._ring.prep_read(token, r.fd, buf, _CURRENT if r.offset is None else r.offset)
        return (self._pooled_bytes if r.size <= _POOLED_SIZE else _bytes), buf

    def _write(self, token: int, r: ops.Write) -> tuple[_Finisher, Any]:
        self._ring.prep_write(token, r.fd, r.data, _CURRENT if r.offset is None else r.offset)
        return _count, None

    def _readinto(self, token: int, r: ops.ReadInto) -> tuple[_Finisher, Any]:
        offset = _CURRENT if r.offset is None else r.offset
        if type(r.buffer) is bytearray:
            self._ring.prep_read(token, r.fd, r.buffer, offset)
            return _count, None
        scratch = bytearray(memoryview(r.buffer).nbytes)  # the package takes bytearray only
        self._ring.prep_read(token, r.fd, scratch, offset)
        return _copy_into, (r.buffer, scratch)

    def _recv_into(self, token: int, r: ops.RecvInto) -> tuple[_Finisher, Any]:
        if type(r.buffer) is bytearray:
            self._ring.prep_recv(token, r.fd, r.buffer)
            return _count, None
        scratch = bytearray(memoryview(r.buffer).nbytes)
        self._ring.prep_recv(token, r.fd, scratch)
        return _copy_into, (r.buffer, scratch)

    def _accept(self, token: int, r: ops.Accept) -> tuple[_Finisher, Any]:
        self._ring.prep_accept(token, r.fd)
        return _accepted, r

    def _connect(self, token: int, r: ops.Connect) -> tuple[_Finisher, Any]:
        sockaddr = self._ring.new_sockaddr(r.family, r.address)
        self._ring.prep_connect(token, r.fd, sockaddr)
        return _nothing, sockaddr

    def _shutdown(self, token: int, r: ops.Shutdown) -> tuple[_Finisher, Any]:
        self._ring.prep_shutdown(token, r.fd, r.how)
        return _nothing, None

    def _open(self, token: int, r: ops.Open) -> tuple[_Finisher, Any]:
        self._ring.prep_open(token, r.path, r.flags, r.mode)
        return _count, None

    def _close(self, token: int, r: ops.Close) -> tuple[_Finisher, Any]:
        self._ring.prep_close(token, r.fd)
        return _nothing, None

    def _fsync(self, token: int, r: ops.Fsync) -> tuple[_Finisher, Any]:
        self._ring.prep_fsync(token, r.fd)
        return _nothing, None

    def _statx(self, token: int, r: ops.Stat) -> tuple[_Finisher, Any]:
        statx = self._ring.new_statx()
        self._ring.prep_statx(token, r.path, statx)
        return _stat, statx

    def _sleep(self, token: int, r: ops.Sleep) -> tuple[_Finisher, Any]:
        if r.seconds == 0:  # a NOP completes at the next submit; a zero timer costs ~40 us
            self._ring.prep_nop(token)
            return _nothing, None
        timespec = self._ring.new_timespec(r.seconds)
        self._ring.prep_timeout(token, timespec)
        return _nothing, timespec

    def _sendto(self, token: int, r: ops.SendTo) -> tuple[_Finisher, Any]:
        sockaddr = self._ring.new_sockaddr(r.family, r.address)
        self._ring.prep_sendto(token, r.fd, r.data, sockaddr)
        return _count, sockaddr

    def _recvfrom(self, token: int, r: ops.RecvFrom) -> tuple[_Finisher, Any]:
        self._ring.prep_poll_in(token, r.fd)
        return _received_from, r

    def _timeout(self, token: int, r: Timeout[Any]) -> tuple[_Finisher, Any]:
        if r.request.__class__ is ToThread:
            self._start_job(token, r.request, r)
            return None, None  # type: ignore[return-value]
        prep = self._prep.get(r.request.__class__)
        if prep is None or r.request.__class__ is Timeout:
            raise TypeError(f"the io_uring engine cannot perform {r.describe()}")
        self._ring.reserve(2)  # the request and its linked timeout go in together
        finish, keep = prep(token, r.request)
        if keep.__class__ is _Sending:  # its later sends share the time limit
            keep.deadline = time.monotonic() + r.seconds
        timespec = self._ring.new_timespec(r.seconds)
        self._ring.prep_link_timeout(_INTERNAL | token, timespec)
        self._internal[_INTERNAL | token] = timespec
        return finish, keep

    def _start_job(self, token: int, job: ToThread[Any], request: IORequest[Any]) -> None:
        """Hand a to_thread job to the pool; arm the eventfd read (and its timer)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = WorkerPool(name="rocket-uring-worker")
        pool.submit(token, job.call)
        self._jobs[token] = request  # type: ignore[assignment]
        if _WAKE not in self._internal:
            buf = self._internal[_WAKE] = bytearray(8)
            self._ring.prep_read(_WAKE, pool.wake_fd, buf, 0)
        if isinstance(request, Timeout):
            timespec = self._internal[_INTERNAL | token] = self._ring.new_timespec(request.seconds)
            self._ring.prep_timeout(_INTERNAL | token, timespec)

    def _internal_done(self, user_data: int, res: int, completions: list[Completion]) -> None:
        """The CQE of one of the engine's own SQEs."""
        self._internal.pop(user_data, None)  # (a sendall's later links are not in it)
        pool = self._pool
        if user_data == _WAKE:
            assert pool is not None
            for token, value, error in pool.collect(consume_wake=False):
                if _INTERNAL | token in self._internal:  # its time limit: not needed now
                    self._ring.prep_cancel(_INTERNAL | token)
                del self._jobs[token]
                completions.append((token, value, error))
            if self._jobs and not self._closing:
                buf = self._internal[_WAKE] = bytearray(8)
                self._ring.prep_read(_WAKE, pool.wake_fd, buf, 0)
            return
        token = user_data - _INTERNAL  # a link timeout, or a to_thread job's time limit
        job = self._jobs.get(token)
        if res == -errno.ETIME and job is not None and pool is not None and pool.cancel(token):
            del self._jobs[token]
            completions.append((token, None, timed_out(job)))  # type: ignore[arg-type]

    # ---------------------------------------------------------------- cancel

    def cancel(self, token: int) -> None:
        """Ask the kernel to cancel ``token``; its CQE still comes (see Engine)."""
        if token in self._jobs:  # a to_thread job: dropped if no worker started it
            assert self._pool is not None
            if self._pool.cancel(token):
                del self._jobs[token]
                if _INTERNAL | token in self._internal:
                    self._ring.prep_cancel(_INTERNAL | token)
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
            if token >= _INTERNAL:
                self._internal_done(token, res, completions)
                continue
            if token == 0:  # a cancel request's own completion: nobody's
                continue
            finish, request, keep = inflight.pop(token)
            if res < 0:
                append(self._failed(token, request, -res))
                continue
            if finish is _count:  # the common finishers, without a call
                value: Any = res
            elif finish is _nothing:
                value = None
            else:
                try:
                    value = finish(res, keep)
                except Exception as exc:  # never lose the other completions
                    append((token, None, exc))
                    continue
                if value is _AGAIN:
                    if token in cancelling:  # the cancel hit the finished poll
                        cancelling.discard(token)
                        append((token, None, Cancelled()))
                    else:
                        self._again(token, finish, request, keep, completions)
                    continue
            if cancelling:  # a cancel that lost the race: forget it (its CQE is token 0)
                cancelling.discard(token)
            append((token, value, None))
        return completions

    def _again(
        self, token: int, finish: _Finisher, request: Any, keep: Any, out: list[Completion]
    ) -> None:
        """Prepare the next step of a request that is not done (same token, same record)."""
        if keep.__class__ is not _Sending:  # a datagram poll that lost the datagram
            self.submit(token, request)
            return
        if keep.deadline is None:
            self._ring.prep_send(token, request.fd, keep.rest())
        else:  # under rocket.timeout(): the rest gets what is left of the time
            left = keep.deadline - time.monotonic()
            if left <= 0:
                out.append((token, None, timed_out(request)))
                return
            self._ring.reserve(2)
            self._ring.prep_send(token, request.request.fd, keep.rest())
            # (kept by ``keep`` until submitted; the first link's CQE may still come)
            keep.timespec = self._ring.new_timespec(left)
            self._ring.prep_link_timeout(_INTERNAL | token, keep.timespec)
        self._inflight[token] = (finish, request, keep)

    def _failed(self, token: int, request: IORequest[Any], err: int) -> Completion:
        cancelling = token in self._cancelling
        if cancelling:
            self._cancelling.discard(token)
        limited = type(request) is Timeout
        base: IORequest[Any] = request.request if limited else request  # type: ignore[attr-defined]
        if err == errno.ETIME and type(base) is ops.Sleep:
            return token, None, None  # a timer that ran out is a sleep that succeeded
        if cancelling and err in (errno.ECANCELED, errno.EINTR):
            return token, None, Cancelled()
        if limited and err == errno.ECANCELED:  # its linked timeout fired
            return token, None, timed_out(request)  # type: ignore[arg-type]
        return token, None, os_error(err, base.describe())

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
        for _ in range(50):  # the kernel must be done with our buffers first
            if not self._inflight and not self._internal:
                break
            self.wait(0.1)
        if self._pool is not None:
            self._pool.close()
        self._ring.close()
