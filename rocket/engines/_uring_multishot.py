"""Stream receives on io_uring: one multishot receive per socket, into buffers the kernel picks.

:class:`StreamReceives` performs :class:`~rocket.ops.StreamRecv` for the
io_uring engine (``UringEngine(multishot=True)``). The first ``stream_recv`` on
an fd arms one ``recv`` multishot SQE (``IOSQE_BUFFER_SELECT``); from then on
every arrival is a CQE that names a buffer of the engine's provided-buffer
group. The engine copies the bytes out and gives the buffer back to the kernel
at once (one ``PROVIDE_BUFFERS`` SQE, ``IOSQE_CQE_SKIP_SUCCESS``), so an idle
connection holds no buffer, and a receive costs one CQE and no fresh SQE.

Rules this module keeps:

* Bytes that arrive while no request waits are kept per fd, in order
  (``_Stream.chunks``), and given to the next ``stream_recv``; a cancelled
  request loses nothing, since no bytes are ever bound to a request.
* Back-pressure: once more than :data:`HIGH_WATER` bytes wait unread, the
  multishot is cancelled and re-armed only when a read has taken the queue
  down to :data:`LOW_WATER`; meanwhile the kernel's socket buffer fills and TCP
  slows the peer down.
* When the group runs dry the kernel ends the multishot with ENOBUFS (no
  ``IORING_CQE_F_MORE``); the buffers of the CQEs reaped before it are already
  on their way back (their SQEs come first), so it is re-armed at once.
* A kernel multishot holds the socket's file: ``notify_closing`` (every close
  through rocket) cancels it; its later CQEs only give their buffers back,
  nobody sees their bytes, and the engine's ``close`` waits for its final CQE.
* End of stream and errors come after the bytes that came before them, and
  once: the fd's state is then dropped, and the next request arms afresh.

Multishot accepts (:mod:`rocket.engines._uring_accepts`) share the switch, the
user_data range and the timers; their CQEs come through :meth:`StreamReceives.done`.

The package's ``io_uring_setup_buf_ring`` (a buffer *ring*, recycled without
an SQE) cannot be called (see ``_liburing.Ring.prep_recv_multishot``), hence
the legacy provided buffers.
"""

from __future__ import annotations

import errno
import itertools
import os
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rocket import ops
from rocket.engines import closed_completion
from rocket.engines._liburing import CQE_F_BUFFER, CQE_F_MORE, MULTISHOT, MULTISHOT_END
from rocket.engines._uring_accepts import Accepts
from rocket.errors import Cancelled, os_error

if TYPE_CHECKING:
    from rocket.engines import Completion
    from rocket.engines._liburing import Ring

__all__ = [
    "BUFFERS",
    "BUFFER_SIZE",
    "HIGH_WATER",
    "LOW_WATER",
    "MULTISHOT",
    "MULTISHOT_END",
    "StreamReceives",
    "stream_receives",
]

BUFFERS = 512  #: buffers in the provided group
BUFFER_SIZE = 16384  #: bytes per buffer: the most one CQE carries
HIGH_WATER = 256 * 1024  #: unread bytes per fd above which its multishot is stopped
LOW_WATER = 64 * 1024  #: ... and re-armed once a read has taken it down to this
_GROUP = 1  # the buffer group id
_MORE_BUFFER = CQE_F_MORE | CQE_F_BUFFER


class _Stream:
    """One fd's receive state."""

    __slots__ = ("chunks", "closed", "end", "fd", "queued", "stopping", "user_data", "waiter")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.user_data = 0  # Invariant: the armed multishot's user_data, or 0 if none is armed
        self.chunks: deque[bytes] = deque()  # Invariant: received, unread, in order
        self.queued = 0  # Invariant: the total length of chunks
        self.end: int | None = None  # after the chunks: 0 end of stream, > 0 an errno
        self.waiter: tuple[int, ops.Recv] | None = None  # the request waiting for bytes
        self.stopping = False  # a cancel of the multishot is on its way (back-pressure)
        self.closed = False  # notify_closing came: the bytes are nobody's

    def take(self, n: int) -> bytes:
        """Up to ``n`` queued bytes, in order (whole chunks when they fit: no copy)."""
        chunks = self.chunks
        first = chunks[0]
        if len(first) > n:
            chunks[0] = first[n:]
            self.queued -= n
            return first[:n]
        chunks.popleft()
        if not chunks or len(first) + len(chunks[0]) > n:
            self.queued -= len(first)
            return first
        parts, size = [first], len(first)
        while chunks and size + len(chunks[0]) <= n:
            parts.append(chunks.popleft())
            size += len(parts[-1])
        self.queued -= size
        return b"".join(parts)


class StreamReceives:
    """Every fd's multishot receive and kept bytes; see the module docstring.

    Args:
        ring: the engine's ring.
        ready: called with each completion made outside a reap (bytes already
            kept, a cancel), as the engine's list of ready completions.
        buffers, buffer_size: the provided group's size (tests make it small);
            no buffers: multishot is off (:attr:`on` False; nothing is ever armed).
    """

    def __init__(
        self, ring: Ring, ready: Any, buffers: int = BUFFERS, buffer_size: int = BUFFER_SIZE
    ) -> None:
        self._ring = ring
        self._ready = ready
        self.on = buffers > 0
        self.by_fd: dict[int, _Stream] = {}  # Invariant: the fds with kept bytes or a multishot
        # Invariant: every armed multishot is here until its final CQE (buffers in use).
        self.armed: dict[int, _Stream] = {}
        self._waiting: dict[int, _Stream] = {}  # token -> the fd's state
        self._limits: dict[int, int] = {}  # token -> its time limit's timer (user_data)
        # Invariant: a timer is here from its prep until its CQE (which names it).
        self._timers: dict[int, tuple[int, ops.Timeout[Any], Any]] = {}
        self._ids = itertools.count(MULTISHOT + 1).__next__
        # Invariant: the kernel holds each buffer from its provide until a CQE names it.
        self._buffers = [bytearray(buffer_size) for _ in range(buffers)]
        for bid, buf in enumerate(self._buffers):
            ring.prep_provide_buffer(buf, _GROUP, bid)
        #: How often the group ran dry (ENOBUFS) and a multishot was armed again.
        self.enobufs = 0
        #: Accepts by multishot, one per listener (``_uring_accepts``); their CQEs come here.
        self.accepts = Accepts(ring, ready, self._ids, self._drop_limit)

    def queued(self, fd: int) -> int:
        """How many received bytes wait unread on ``fd``."""
        stream = self.by_fd.get(fd)
        return 0 if stream is None else stream.queued

    def submit(self, token: int, r: ops.Recv) -> tuple[Any, Any]:
        """Answer from the kept bytes, or wait for the multishot (arming it if need be)."""
        stream = self.by_fd.get(r.fd)
        if stream is None:
            stream = self.by_fd[r.fd] = _Stream(r.fd)
        if stream.waiter is not None:
            raise RuntimeError(
                f"{r.describe()}: another request is already receiving on fd {r.fd}; "
                "read a stream from one fiber at a time"
            )
        if stream.chunks or stream.end is not None or r.size == 0:
            self._ready(self._answer(stream, token, r))
        else:
            stream.waiter = (token, r)
            self._waiting[token] = stream
            if not stream.user_data:
                self._arm(stream)
        return None, None

    def _answer(self, stream: _Stream, token: int, r: ops.Recv) -> Completion:
        """The completion of ``r``: kept bytes first, then the end (which drops the state)."""
        if stream.chunks and r.size:
            data = stream.take(r.size)
            if not stream.user_data and stream.end is None and stream.queued <= LOW_WATER:
                self._arm(stream)
            return token, data, None
        if stream.end is None or r.size == 0:
            return token, b"", None
        del self.by_fd[stream.fd]  # the next request arms afresh (and sees what the kernel says)
        if stream.end == 0:
            return token, b"", None
        return token, None, os_error(stream.end, r.describe())

    def _arm(self, stream: _Stream) -> None:
        stream.user_data = self._ids()
        stream.stopping = False
        self.armed[stream.user_data] = stream
        self._ring.prep_recv_multishot(stream.user_data, stream.fd, _GROUP)

    def done(self, user_data: int, packed: int, out: list[Completion]) -> None:
        """One CQE of a multishot: ``packed`` is ``res << 32 | flags`` (see ``Ring.reap``)."""
        res, flags = packed >> 32, packed & 0xFFFFFFFF
        stream = self.armed.get(user_data)
        if stream is None:  # a multishot accept, or a time limit's timer
            if user_data in self.accepts.armed:
                self.accepts.done(user_data, res, flags, out)
            else:
                self._timer_done(user_data, res, out)
            return
        waiter = stream.waiter
        if (  # the common case: bytes for a waiting request, which take them all
            flags & _MORE_BUFFER == _MORE_BUFFER
            and waiter is not None
            and not stream.chunks
            and 0 < res <= waiter[1].size
            and waiter[0] not in self._limits
        ):
            buf = self._buffers[flags >> 16]
            data = bytes(buf[:res]) if res <= 2048 else bytes(memoryview(buf)[:res])
            self._ring.prep_provide_buffer(buf, _GROUP, flags >> 16)
            stream.waiter = None
            del self._waiting[waiter[0]]
            out.append((waiter[0], data, None))
            return
        data = b""
        if flags & CQE_F_BUFFER:
            bid = flags >> 16
            buf = self._buffers[bid]
            if res > 0 and not stream.closed:
                data = bytes(buf[:res]) if res <= 2048 else bytes(memoryview(buf)[:res])
            self._ring.prep_provide_buffer(buf, _GROUP, bid)  # the kernel may fill it again
        if not flags & CQE_F_MORE:  # the multishot's final CQE
            del self.armed[user_data]
            stream.user_data = 0
            if res == -errno.ENOBUFS:
                self.enobufs += 1
            elif res == 0 or (res < 0 and not (res == -errno.ECANCELED and stream.stopping)):
                stream.end = -res  # end of stream, or an error: after the kept bytes
        if stream.closed:
            return
        if data:
            stream.chunks.append(data)
            stream.queued += len(data)
            if stream.queued > HIGH_WATER and stream.user_data and not stream.stopping:
                stream.stopping = True  # back-pressure: let the socket buffer fill
                self._ring.prep_cancel(stream.user_data)
        bound = LOW_WATER if stream.stopping else HIGH_WATER  # (stopping: back-pressure)
        if not stream.user_data and stream.end is None and stream.queued <= bound:
            self._arm(stream)  # it ended (ENOBUFS, back-pressure...) and may go on
        waiter = stream.waiter
        if waiter is not None and (stream.chunks or stream.end is not None):
            self._answered(stream, waiter[0])
            out.append(self._answer(stream, *waiter))

    def _answered(self, stream: _Stream, token: int) -> None:
        stream.waiter = None
        del self._waiting[token]
        self._drop_limit(token)

    def _drop_limit(self, token: int) -> None:
        timer = self._limits.pop(token, None)
        if timer is not None:  # its time limit is not needed now
            self._ring.prep_cancel(timer)

    def limit(self, token: int, r: ops.Timeout[Any]) -> None:
        """``r`` (a time limit on a stream_recv submitted as ``token``) waits: start its timer."""
        if token not in self._waiting and not self.accepts.waiting(token):
            return  # answered at once
        timer = self._ids()
        timespec = self._ring.new_timespec(r.seconds)
        self._timers[timer] = (token, r, timespec)  # the timespec lives until the timer's CQE
        self._limits[token] = timer
        self._ring.prep_timeout(timer, timespec)

    def _timer_done(self, timer: int, res: int, out: list[Completion]) -> None:
        token, r, _ = self._timers.pop(timer)
        if res == -errno.ETIME and self._limits.get(token) == timer:
            stream = self._waiting.get(token)
            if stream is None:  # an accept's
                self.accepts.cancel(token, ops.timed_out(r))
                return
            self._answered(stream, token)
            out.append((token, None, ops.timed_out(r)))

    def timeouts(self, prep: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
        """The engine's prep of time limits (``prep``), but a stream_recv's is a timer of ours.

        A multishot has no SQE per request to link a timeout to.
        """
        if not self.on:
            return prep

        def limited(token: int, r: ops.Timeout[Any]) -> Any:
            request: Any = r.request  # a recv on an fd a multishot reads is served here too
            if request.__class__ is ops.Accept:
                self.accepts.submit(token, request)
            elif request.__class__ is ops.StreamRecv or (
                request.__class__ is ops.Recv and request.fd in self.by_fd
            ):
                self.submit(token, request)
            else:
                return prep(token, r)
            self.limit(token, r)
            return None, None

        return limited

    def busy(self) -> bool:
        """True while the kernel still holds something of ours (a multishot, a timer)."""
        return bool(self.armed or self._timers or self.accepts.armed)

    def cancel(self, token: int) -> bool:
        """Withdraw a waiting request (completed with Cancelled); False if ``token`` is not one."""
        stream = self._waiting.get(token)
        if stream is None:
            return self.accepts.cancel(token)
        self._answered(stream, token)
        self._ready((token, None, Cancelled()))
        return True

    def closing(self, fd: int) -> bool:
        """``fd`` is about to be closed: its waiter ends, its multishot is cancelled.

        A waiting ``stream_recv`` gets ``b""`` (end of stream), a ``recv`` EBADF.

        Returns True if a cancel SQE was prepared (the engine submits it now).
        """
        stream = self.by_fd.pop(fd, None)
        if stream is None:
            return self.accepts.closing(fd)
        stream.closed = True
        stream.chunks.clear()
        stream.queued = 0
        if stream.waiter is not None:
            token, r = stream.waiter
            self._answered(stream, token)
            self._ready(closed_completion(token, r))
        if stream.user_data:
            self._ring.prep_cancel(stream.user_data)
            return True
        return False

    def close(self) -> None:
        """The engine closes: stop every multishot (the engine then waits for :attr:`armed`)."""
        for fd in list(self.by_fd):
            self.closing(fd)
        for fd in list(self.accepts.by_fd):
            self.accepts.closing(fd)
        for timer in self._timers:
            self._ring.prep_cancel(timer)


def stream_receives(ring: Ring, ready: Any, multishot: bool | None) -> StreamReceives:
    """The engine's stream receives, on if ``multishot`` (None: ``$ROCKET_MULTISHOT`` is ``1``)."""
    if multishot is None:
        multishot = os.environ.get("ROCKET_MULTISHOT") == "1"
    return StreamReceives(ring, ready, BUFFERS if multishot else 0, BUFFER_SIZE)
