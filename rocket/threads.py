"""Blocking calls off the loop: ``to_thread`` and ``getaddrinfo``.

::

    digest = yield rocket.to_thread(hashlib.sha256, big_bytes)
    infos = yield rocket.getaddrinfo("example.com", 443, type=socket.SOCK_STREAM)

``to_thread`` is an I/O request like ``read``: the engine runs the function
in its worker pool (:mod:`rocket.engines._workers`) and the fiber resumes
with its return value, or its exception, unchanged. Other fibers run
meanwhile. Each run's pool has at most ``rocket.run(max_threads=N)`` threads
(default 8), apart from the readiness engine's pool for file operations, so
a busy ``to_thread`` never delays a ``read``; the io_uring engine keeps a read
of the pool's eventfd in flight on the ring, so a finished job wakes the ring
like any completion.

Cancellation and timeouts: a job still queued (all workers busy) is
dropped. A function already running cannot be interrupted -- Python has no
way to stop a thread, and it may be writing into a buffer the fiber owns --
so a cancelled fiber waits for it and gets its result, and ``Cancelled`` is
raised at its next request (the usual rule for a request that completed
anyway). ``getaddrinfo`` is bounded by the resolver's own timeouts.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

from rocket.ops.threads import ToThread, to_thread

__all__ = ["ToThread", "getaddrinfo", "to_thread"]

T = TypeVar("T")

_AddrInfo = list[tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]]


def getaddrinfo(
    host: str | bytes | None,
    port: str | int | None,
    family: int = 0,
    type: int = 0,  # noqa: A002 - the name socket.getaddrinfo uses
    proto: int = 0,
    flags: int = 0,
) -> ToThread[_AddrInfo]:
    """Resolve ``host``/``port`` like ``socket.getaddrinfo``, in a worker thread.

    Raises:
        TypeError: ``host`` or ``port`` has the wrong type.
        socket.gaierror (when yielded): the name cannot be resolved.
    """
    if host is not None and not isinstance(host, (str, bytes)):
        raise TypeError(
            f"getaddrinfo() argument 'host' must be str, bytes or None, not {_type_name(host)}"
        )
    if port is not None and (isinstance(port, bool) or not isinstance(port, (str, int))):
        raise TypeError(
            f"getaddrinfo() argument 'port' must be int, str or None, not {_type_name(port)}"
        )
    return ToThread(
        cast("Callable[..., _AddrInfo]", socket.getaddrinfo),
        (host, port, family, type, proto, flags),
        {},
        f"getaddrinfo({host!r}, {port!r})",
    )


def _type_name(value: object) -> str:
    """The name of ``value``'s type, for error messages."""
    return value.__class__.__name__
