"""Timer requests: ``sleep``, and ``timeout`` (one I/O request with a time limit).

On io_uring a sleep is a timeout SQE (``sleep(0)`` a NOP) and a time limit is a
linked timeout; the readiness engine keeps a heap of deadlines. For a time
limit around several requests, use :func:`rocket.fail_after` (a cancel scope).
"""

from __future__ import annotations

from typing import Any, TypeVar

from rocket import _checks
from rocket.request import Composite, IORequest, Request

__all__ = ["Sleep", "Timeout", "sleep", "timed_out", "timeout"]

T = TypeVar("T")


class Sleep(IORequest[None]):
    """Wait ``seconds``; the engine's timer wakes the fiber."""

    __slots__ = ("seconds",)
    verb = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = _checks.seconds(seconds, "sleep")

    def describe(self) -> str:
        return f"sleep({self.seconds:g})"


def sleep(seconds: float) -> Sleep:
    """Let ``seconds`` pass; other fibers run meanwhile."""
    return Sleep(seconds)


class Timeout(IORequest[T]):
    """Perform ``request`` with a time limit; the engine raises ``TimeoutError`` when it passes.

    Invariant: ``request`` is an I/O request other than a Timeout.
    """

    __slots__ = ("request", "seconds")
    verb = "timeout"

    def __init__(self, seconds: float, request: IORequest[T]) -> None:
        self.seconds = _checks.seconds(seconds, "timeout")  # finite: else yield the request
        if isinstance(request, Timeout):  # the shorter limit is the one that matters
            self.seconds = min(self.seconds, request.seconds)
            request = request.request
        candidate: object = request  # (checked: callers may pass anything)
        if not isinstance(candidate, IORequest):
            if isinstance(candidate, (Request, Composite)):
                hint = "bound other waits with 'with rocket.fail_after(seconds):'"
            else:
                hint = f"not {type(candidate).__name__}"
            raise TypeError(
                f"timeout() argument 'request' must be one I/O request such as "
                f"rocket.recv(sock); {hint}"
            )
        if request.__class__.__name__ == "SendFile":  # (rocket.ops.sendfile imports this module)
            raise TypeError(
                "timeout() cannot limit a SendFile: io_uring's linked timeouts do not stop a "
                "splice that waits in the kernel's worker; put it in a cancel scope instead: "
                "'with rocket.fail_after(seconds): yield rocket.sendfile(stream, file)'"
            )
        self.request: IORequest[T] = request

    def describe(self) -> str:
        return f"timeout({self.seconds:g}, {self.request.describe()})"


def timeout(seconds: float, request: IORequest[T]) -> Timeout[T]:
    """Perform ``request``; raise ``TimeoutError`` if it takes longer than ``seconds``.

    ``request`` is one I/O request (``recv``, ``accept``, ``read``,
    ``to_thread``...). To bound several, or an ``Event``/``Queue`` wait, use
    :func:`fail_after`.

    Raises:
        TypeError: ``request`` is not an I/O request.
        ValueError: ``seconds`` is negative, NaN or infinite.
    """
    return Timeout(seconds, request)


def timed_out(request: Timeout[Any]) -> TimeoutError:
    """The error an engine reports when ``request``'s time limit passed."""
    return TimeoutError(
        f"{request.request.describe()} did not complete within {request.seconds:g} s"
    )
