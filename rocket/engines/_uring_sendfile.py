"""How the io_uring engine performs ``sendfile``: ``splice`` from the file into a pipe, then on.

io_uring has no sendfile opcode. ``IORING_OP_SPLICE`` moves pages between two
fds one of which is a pipe, without copying them into user memory, so one
:class:`~rocket.ops.sendfile.SendFile` becomes a chain of splices under its
token, one SQE at a time::

    fill:   file (at offset + sent) --splice--> pipe    up to the pipe's size; 0: end of file
    drain:  pipe --splice--> socket                      again after a short one, until empty

then fill again, until ``count`` bytes are sent or the file ends. A socket
its owner made non-blocking would fail a drain with EAGAIN when full (a splice
runs in an io-wq worker, which does not poll), so for such a socket each drain
waits for ``POLLOUT`` first. Each step's
finisher returns ``AGAIN`` and the engine prepares the next one under the same
token (``_again`` calls the prep, which finds the request's :class:`Splicing`).
Steps are not linked with ``IOSQE_IO_LINK``: the kernel fails the rest of a
chain after any short splice, and a fill is short at the end of every file.

The pipe is the request's own (made with ``pipe2`` at its first step, 256 KiB
where the user's pipe quota allows) and is closed when the request ends,
however it ends: done (in the finisher), failed or cancelled (``_splice_ended``,
called from ``UringEngine._failed``). A cancel that lands while bytes sit in
the pipe drops them with it: they never reached the socket, so the peer has
a prefix of the range and nothing else.

Checked on Linux 6.18: an ``IORING_OP_ASYNC_CANCEL`` stops a splice blocked on
a full socket in its io-wq worker (-ERESTARTSYS, or the count moved so far),
but a linked timeout did not (the splice stayed blocked), so
``rocket.timeout()`` refuses a SendFile and a time limit is a cancel scope.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Callable
from typing import Any

from rocket.engines import _liburing
from rocket.engines._uring_finish import AGAIN, count
from rocket.errors import os_error
from rocket.ops.sendfile import SendFile, check_regular_file

__all__ = ["PIPE_SIZE", "Splicing", "UringSendFile"]

_Finisher = Callable[[int, Any], Any]

#: The pipe size asked for: 4 pipe fills per MiB. An unprivileged user's pipes
#: together may hold 64 MiB (``/proc/sys/fs/pipe-user-pages-soft``); past that
#: the kernel refuses to grow a pipe, and a sendfile works with 64 KiB ones.
PIPE_SIZE = 256 * 1024
_NO_OFFSET = -1  # splice takes no offset for a pipe


class Splicing:
    """The progress of one sendfile: its pipe, what is in it, what reached the socket.

    Invariant: ``in_pipe`` bytes of the file, from ``offset + sent`` on, are in the
    pipe; the pipe's fds are open until :meth:`close`.
    """

    __slots__ = ("eof", "in_pipe", "pipe", "poll", "request", "sent", "size", "step", "token")

    def __init__(self, token: int, request: SendFile) -> None:
        self.token = token
        self.request = request
        self.pipe = os.pipe2(os.O_CLOEXEC)
        try:
            self.size = fcntl.fcntl(self.pipe[1], fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # over the user's pipe quota: the default size will do
            self.size = fcntl.fcntl(self.pipe[1], fcntl.F_GETPIPE_SZ)
        self.sent = 0
        self.in_pipe = 0
        self.step = "fill"  # the step in flight: "fill", "wait" (for POLLOUT) or "drain"
        self.eof = False
        self.poll = not os.get_blocking(request.fd)  # wait for POLLOUT before each drain

    def close(self) -> None:
        """Close the pipe (whatever is still in it is dropped); idempotent."""
        for fd in self.pipe:
            if fd >= 0:
                os.close(fd)
        self.pipe = (-1, -1)


class UringSendFile:
    """The sendfile prep and finisher; a base class of the engine (see the module docstring)."""

    __slots__ = ()

    _ring: _liburing.Ring
    _cancelling: set[int]
    _closed: set[int]
    # Invariant: a sendfile's token is in _splicing from its first step until it ends.
    _splicing: dict[int, Splicing]

    def _watch(self, token: int, fd: int) -> None:
        raise NotImplementedError

    def _sendfile(self, token: int, r: SendFile) -> tuple[_Finisher, Any]:
        state = self._splicing.get(token)
        if state is None:  # the first step
            if r.count == 0:
                self._ring.prep_nop(token)
                return count, None
            check_regular_file(r)
            try:
                state = Splicing(token, r)
            except OSError as exc:  # EMFILE, ENFILE: say which request could not start
                raise os_error(exc.errno or errno.EMFILE, r.describe()) from None
            self._splicing[token] = state
            self._watch(token, r.fd)
            self._watch(token, r.file)
        if state.in_pipe and state.poll and state.step != "wait":
            state.step = "wait"
            self._ring.prep_poll_out(token, r.fd)
        elif state.in_pipe:
            state.step = "drain"
            self._ring.prep_splice(token, state.pipe[0], _NO_OFFSET, r.fd, state.in_pipe)
        else:
            state.step = "fill"
            size = min(r.count - state.sent, state.size)
            self._ring.prep_splice(token, r.file, r.offset + state.sent, state.pipe[1], size)
        return self._spliced, state

    def _spliced(self, res: int, state: Splicing) -> Any:
        """One splice finished: the result if the request is done, else AGAIN (the next step)."""
        token, request = state.token, state.request
        if state.step == "fill":
            state.in_pipe = res
            state.eof = res == 0
        elif state.step == "wait":
            pass  # (res is the poll mask) the drain comes next
        elif res == 0:  # cannot happen with bytes in the pipe; never loop on it
            self._splice_ended(token)
            raise os_error(errno.EPIPE, request.describe())
        else:
            state.sent += res
            state.in_pipe -= res
        if not state.in_pipe and (state.eof or state.sent >= request.count):
            self._splice_ended(token)
            return state.sent
        if token in self._closed:  # notify_closing: the fd may be reused, no further SQE on it
            self._closed.discard(token)
            self._cancelling.discard(token)
            self._splice_ended(token)
            raise os_error(errno.EBADF, request.describe())
        if token in self._cancelling:  # the engine reports Cancelled (it sees AGAIN)
            self._splice_ended(token)
        return AGAIN

    def _splice_ended(self, token: int) -> None:
        """The sendfile ``token`` ended: close its pipe and forget it."""
        state = self._splicing.pop(token, None)
        if state is not None:
            state.close()
