"""The sendfile request: bytes of a regular file straight to a socket, without copies in Python.

:func:`rocket.sendfile` (in ``rocket.net.sendfile``) is what users call; this
is the request an engine performs for a plain socket. The engines do it with the
kernel's zero-copy paths: ``splice`` through a pipe on io_uring, ``os.sendfile``
on the readiness engine. Both read the file at explicit offsets, so the file's
position is neither used nor moved.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from rocket import _checks
from rocket.errors import os_error
from rocket.ops._base import FdRequest, fd_of

__all__ = ["SEND_TO_EOF", "SendFile", "check_regular_file"]

#: A count that means "up to the end of the file".
SEND_TO_EOF = _checks.MAX_OFFSET


class SendFile(FdRequest[int]):
    """Send ``count`` bytes of ``file`` from ``offset`` on to the socket ``fd``.

    The result is the number of bytes sent: ``count``, or fewer only when the
    file ended first. Partial sends are resumed by the engine (as for
    ``sendall``). Invariant: the request object is never changed; the engine
    keeps the progress.
    """

    __slots__ = ("count", "file", "offset")
    verb = "sendfile"

    def __init__(self, sock: Any, file: Any, offset: int, count: int) -> None:
        self.fd = fd_of(sock, "sendfile")
        self.file = _checks.fileno(file, "sendfile", "file")
        checked = _checks.offset(offset, "sendfile")
        if checked is None:
            raise TypeError("sendfile() argument 'offset' must be an int, not None")
        self.offset = checked
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(
                f"sendfile() argument 'count' must be an int, not {type(count).__name__}"
            )
        if count < 0:
            raise ValueError(f"sendfile() argument 'count' must be >= 0 or None, got {count}")
        self.count = min(count, SEND_TO_EOF)

    def describe(self) -> str:
        return f"sendfile(fd={self.fd}, file={self.file})"


def check_regular_file(request: SendFile) -> None:
    """Raise ValueError unless ``request.file`` is a regular file or block device.

    ``splice`` and ``os.sendfile`` read pages of a file's cache: a pipe, socket
    or tty would fail with an errno that differs by engine (ESPIPE, EINVAL), so
    both engines call this first.
    """
    try:
        mode = os.fstat(request.file).st_mode
    except OSError as exc:
        raise os_error(exc.errno or errno.EBADF, request.describe()) from None
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise ValueError(
            f"{request.describe()}: the file must be a regular file, not a pipe, socket, tty "
            "or directory; copy from those with read and Stream.write"
        )
