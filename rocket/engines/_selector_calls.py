"""The system calls behind each request on the readiness engine, one function per request.

Each one is tried without waiting, so it raises ``BlockingIOError`` when it
would block and the engine then waits for the fd to be ready. A socket's
blocking mode belongs to its owner: recv and send pass ``MSG_DONTWAIT`` and
leave it alone; accept, connect and pipe reads/writes set ``O_NONBLOCK`` only
around the system call and then restore it, so a socket behaves afterwards as
it did before. ``connect`` starts with EINPROGRESS, waits until the socket is
writable, then reads ``SO_ERROR``. File calls run in worker threads, wrapped
by :func:`named` so that an ``OSError`` says which request failed.
"""

from __future__ import annotations

import errno
import functools
import os
import select
import socket
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from rocket import _checks, ops
from rocket.engines import closed_completion
from rocket.errors import os_error
from rocket.ops import RecvFrom, SendTo
from rocket.ops.sendfile import SendFile, check_regular_file
from rocket.request import IORequest

__all__ = [
    "Wait",
    "Watch",
    "closed_under",
    "connect_attempt",
    "accept",
    "fsync",
    "named",
    "nonblocking",
    "open_file",
    "read_call",
    "readinto_call",
    "recv",
    "recv_into",
    "recvfrom",
    "send",
    "sendall_attempt",
    "sendfile_attempt",
    "sendto",
    "shutdown",
    "stat",
    "wait_readable",
    "wrap",
    "write_call",
]

T = TypeVar("T")

_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_SEND_FLAGS = _DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)
#: On the BSDs an accepted socket inherits O_NONBLOCK from the listener.
_INHERITS_NONBLOCK = not sys.platform.startswith("linux")


def nonblocking(fd: int, call: Callable[[], T]) -> T:
    """Run ``call`` with O_NONBLOCK set on ``fd``, then restore the fd's mode."""
    if not os.get_blocking(fd):
        return call()
    os.set_blocking(fd, False)
    try:
        return call()
    finally:
        os.set_blocking(fd, True)


def wrap(fd: int, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A temporary socket object on ``fd``; the caller must ``detach()`` it.

    Raises ENOTSOCK/EBADF as OSError for an fd that is not an open socket.
    """
    return socket.socket(family, kind, -1 if family == -1 else 0, fileno=fd)


def recv(r: ops.Recv) -> bytes:
    sock = wrap(r.fd)
    try:
        if _DONTWAIT:
            return sock.recv(r.size, _DONTWAIT)
        return nonblocking(r.fd, lambda: sock.recv(r.size))  # pragma: no cover
    finally:
        sock.detach()


def recv_into(r: ops.RecvInto) -> int:
    sock = wrap(r.fd)
    try:
        view = memoryview(r.buffer).cast("B")
        if _DONTWAIT:
            return sock.recv_into(view, 0, _DONTWAIT)
        return nonblocking(r.fd, lambda: sock.recv_into(view))  # pragma: no cover
    finally:
        sock.detach()


def recvfrom(r: RecvFrom) -> tuple[bytes, Any]:
    return r.receive()


def sendto(r: SendTo) -> int:
    sock = wrap(r.fd, r.family, socket.SOCK_DGRAM)
    try:
        return sock.sendto(r.data, _SEND_FLAGS | _DONTWAIT, r.address)
    finally:
        sock.detach()


def send(r: ops.Send) -> int:
    sock = wrap(r.fd)
    try:
        if _DONTWAIT:
            return sock.send(r.data, _SEND_FLAGS)
        return nonblocking(r.fd, lambda: sock.send(r.data, _SEND_FLAGS))  # pragma: no cover
    finally:
        sock.detach()


def sendall_attempt(r: ops.SendAll) -> Callable[[Any], None]:
    """One attempt function for a whole sendall: each call sends what it can.

    It keeps the offset between attempts and slices a memoryview, so the rest
    is never copied; it raises BlockingIOError (wait until writable) until done.
    """
    view = memoryview(r.data)
    sent = 0

    def attempt(_: Any) -> None:
        nonlocal sent
        sock = wrap(r.fd)
        try:
            while sent < len(view):
                if _DONTWAIT:
                    sent += sock.send(view[sent:], _SEND_FLAGS)
                else:  # pragma: no cover - platforms without MSG_DONTWAIT
                    sent += nonblocking(r.fd, functools.partial(sock.send, view[sent:]))
        finally:
            sock.detach()

    return attempt


def sendfile_attempt(r: SendFile) -> Callable[[Any], int]:
    """The attempts of one sendfile: each sends what the socket takes, and keeps the count.

    ``os.sendfile`` on a blocking socket would block the loop, so the socket is
    non-blocking around each call (:func:`nonblocking`): EAGAIN means wait until
    it is writable. The file is read at explicit offsets (its position stays);
    a page that is not cached yet is read from disk in the loop's thread, as
    in any ``sendfile`` server (nginx does the same).
    """
    sent = 0
    checked = False

    def attempt(_: Any) -> int:
        nonlocal sent, checked
        if not checked:
            check_regular_file(r)
            checked = True
        while sent < r.count:
            call = functools.partial(
                os.sendfile, r.fd, r.file, r.offset + sent, min(r.count - sent, _checks.MAX_SIZE)
            )
            done = nonblocking(r.fd, call)
            if not done:  # the end of the file
                break
            sent += done
        return sent

    return attempt


def accept(r: ops.Accept) -> tuple[socket.socket, Any]:
    sock = wrap(r.fd, r.family, r.type)
    try:
        fd, _ = nonblocking(r.fd, sock._accept)  # type: ignore[attr-defined]
    finally:
        sock.detach()
    if _INHERITS_NONBLOCK:  # pragma: no cover - macOS/BSD
        os.set_blocking(fd, True)
    return ops.accepted_socket(r, fd)


def shutdown(r: ops.Shutdown) -> None:
    sock = wrap(r.fd)
    try:
        sock.shutdown(r.how)
    finally:
        sock.detach()


def wait_readable(r: ops.WaitReadable) -> None:
    """None once the fd is readable (asked with poll: any fd number, not only < 1024)."""
    poller = select.poll()
    poller.register(r.fd, select.POLLIN)
    events = poller.poll(0)
    if not events:
        raise BlockingIOError(errno.EAGAIN, "not readable yet")
    if events[0][1] & select.POLLNVAL:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


def stat(r: ops.Stat) -> ops.StatResult:
    st = os.stat(os.fsencode(r.path))
    return ops.StatResult(st.st_size, st.st_mode, st.st_mtime)


def open_file(r: ops.Open) -> int:
    return os.open(os.fsencode(r.path), r.flags, r.mode)  # bytes: any name, UTF-8 or not


def fsync(r: ops.Fsync) -> None:
    os.fsync(r.fd)


def named(request: IORequest[Any], call: Callable[[], Any]) -> Callable[[], Any]:
    """``call``, but an OSError it raises names the request, as io_uring's errors do."""

    def job() -> Any:
        try:
            return call()
        except OSError as exc:
            raise os_error(exc.errno or errno.EIO, request.describe()) from None

    return job


def read_call(r: ops.Read, stream: bool) -> Callable[[], bytes]:
    if r.offset is None or stream:
        return lambda: os.read(r.fd, r.size)
    offset = r.offset
    return lambda: os.pread(r.fd, r.size, offset)


def readinto_call(r: ops.ReadInto, stream: bool) -> Callable[[], int]:
    view = memoryview(r.buffer).cast("B")
    if r.offset is None or stream:
        return lambda: os.readv(r.fd, [view])
    offset = r.offset
    return lambda: os.preadv(r.fd, [view], offset)


def write_call(r: ops.Write, stream: bool) -> Callable[[], int]:
    if r.offset is None or stream:
        return lambda: os.write(r.fd, r.data)
    offset = r.offset
    return lambda: os.pwrite(r.fd, r.data, offset)


def connect_attempt(r: ops.Connect) -> Callable[[Any], None]:
    """The attempts of one connect: start it, then (once writable) read ``SO_ERROR``."""
    started = False

    def attempt(_: Any) -> None:
        nonlocal started
        sock = wrap(r.fd, r.family)
        try:
            if started:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            else:
                err = nonblocking(r.fd, lambda: sock.connect_ex(r.address))
        finally:
            sock.detach()
        if not started and err in (errno.EINPROGRESS, errno.EINTR):
            started = True  # it goes on in the kernel: wait until writable
            raise BlockingIOError(err, "connecting")
        if err:  # EAGAIN (a full AF_UNIX backlog) comes back here when writable
            raise OSError(err, os.strerror(err))

    return attempt


# ------------------------------------------------------------------ waits


def closed_under(wait: Wait, closing: bool) -> tuple[int, Any, BaseException | None]:
    """The completion of a waiter whose fd was closed: as ``closed_completion`` says
    if ``notify_closing`` stopped it, else (closed behind the engine's back) EBADF."""
    if closing:
        return closed_completion(wait.token, wait.request)
    return wait.token, None, os_error(errno.EBADF, wait.request.describe())


class Wait:
    """A request waiting for its fd: ``attempt(self)`` returns the result or
    raises BlockingIOError to keep waiting."""

    __slots__ = ("attempt", "fallback", "fd", "request", "token", "write")

    def __init__(
        self,
        token: int,
        request: IORequest[Any],
        fd: int,
        write: bool,
        attempt: Callable[[Wait], Any],
        fallback: Callable[[], Any] | None = None,
    ) -> None:
        self.token = token
        self.request = request
        self.fd = fd
        self.write = write
        self.attempt = attempt
        self.fallback = fallback  # a blocking call for fds the selector refuses


class Watch:
    """The waiters on one fd, per direction, and the events registered for it."""

    __slots__ = ("mask", "readers", "writers")

    def __init__(self) -> None:
        self.readers: deque[Wait] = deque()
        self.writers: deque[Wait] = deque()
        self.mask = 0
