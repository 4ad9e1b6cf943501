"""Exceptions raised by rocket.

Rocket raises built-in exceptions wherever one fits: a failed system call is an
``OSError`` (its subclass picked by errno, e.g. ``ConnectionResetError``), bad
arguments are ``TypeError``/``ValueError``, a timeout is ``TimeoutError``. The
classes here cover what has no built-in equivalent.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "Cancelled",
    "Deadlock",
    "EngineUnavailable",
    "RocketError",
    "os_error",
]


class RocketError(Exception):
    """Base class of rocket's own exceptions (except :class:`Cancelled`)."""


class Cancelled(BaseException):
    """Thrown into a fiber that was cancelled, at the point where it waits.

    A ``BaseException`` (like ``asyncio.CancelledError`` and trio's
    ``Cancelled``), so that ``except Exception`` does not swallow it by mistake.
    """

    #: The cancel scope that threw it (a ``fail_after`` block, a ``TaskGroup``),
    #: or None for a plain ``fiber.cancel()``. A scope catches only its own.
    scope: Any = None

    @property
    def rank(self) -> int:
        """0 for a plain cancel, else its scope's depth; a lower rank outranks a higher."""
        return 0 if self.scope is None else int(self.scope.depth)


class Deadlock(RocketError, RuntimeError):
    """No fiber can ever run again, but the main fiber has not finished.

    Raised by :func:`rocket.run` instead of hanging: nothing is runnable, no
    I/O or timer is pending, yet some fibers wait (e.g. two fibers joining each
    other). The message names the stuck fibers.
    """


class EngineUnavailable(RocketError):
    """The engine asked for cannot work on this machine; the message says why."""


def os_error(errno: int, operation: str) -> OSError:
    """Build the ``OSError`` for a failed request.

    The message names the operation and its fd or path, e.g.
    ``[Errno 9] Bad file descriptor: read(fd=42)``. ``OSError(errno, ...)``
    picks the subclass itself (``ConnectionResetError`` for ECONNRESET...).
    """
    return OSError(errno, f"{os.strerror(errno)}: {operation}")
