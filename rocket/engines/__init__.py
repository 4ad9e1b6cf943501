"""Engines: the asynchronous I/O back ends behind the executor.

An engine sees tokens and requests, never fibers (trio's I/O manager and
curio's kernel are built the same way). The executor gives it each I/O
request under a fresh token; the engine performs it however it can and later
reports ``(token, value, error)``.

* ``io_uring`` (:mod:`rocket.engines.uring`): one SQE per request, submitted
  in batches, completions reaped from the ring. Linux only, needs ``liburing``.
* ``selector`` (:mod:`rocket.engines.selector`): readiness (epoll/kqueue)
  plus worker threads for files; runs everywhere.

:func:`create_engine` picks one by name; ``"auto"`` prefers io_uring and falls
back to the readiness engine where io_uring is unavailable.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from rocket.errors import EngineUnavailable
from rocket.request import IORequest

__all__ = ["ENGINE_NAMES", "Completion", "Engine", "auto_choice", "create_engine"]

#: ``(token, value, error)``: error is None on success, else the exception to throw.
Completion = tuple[int, Any, "BaseException | None"]

ENGINE_NAMES = ("auto", "io_uring", "selector")


class Engine(Protocol):
    """What the executor needs from an I/O back end.

    Invariant: every token given to :meth:`submit` comes back from
    :meth:`wait` exactly once (cancelled ones too), and the engine keeps the
    request -- and so its buffers -- alive until then.
    """

    name: str

    def submit(self, token: int, request: IORequest[Any]) -> None:
        """Queue ``request``; it starts at the latest by the next :meth:`wait`.

        Raises TypeError for a request the engine does not know.
        """

    def cancel(self, token: int) -> None:
        """Ask to cancel a submitted request.

        Its completion still comes: with :class:`~rocket.Cancelled` as the
        error once the kernel is done with it, or with its normal result if it
        finished first.
        """

    def notify_closing(self, fd: int) -> None:
        """``fd`` is about to be closed: every request waiting on it fails at once.

        Each completes with ``OSError`` (EBADF), the same on every engine,
        before the caller closes the fd (whose number can then be reused).
        """

    def wait(self, timeout: float | None) -> list[Completion]:
        """Start queued requests and return the completions that are ready.

        ``timeout=0`` never blocks; ``None`` blocks until at least one
        completion is ready (the executor calls it only with work in flight).
        With nothing in flight and a finite ``timeout``, it just sleeps that
        long: the executor's own timers (``fail_after``) wait this way.
        """

    def close(self) -> None:
        """Cancel what is in flight, release kernel resources; idempotent."""


def create_engine(name: str | None = "auto") -> Engine:
    """Build the engine called ``name`` (default: ``$ROCKET_ENGINE`` or auto).

    Raises:
        ValueError: unknown engine name.
        EngineUnavailable: ``io_uring`` asked for explicitly where it cannot work.
    """
    if name is None or name == "auto":
        name = os.environ.get("ROCKET_ENGINE") or "auto"
    if name not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {', '.join(ENGINE_NAMES)}; got {name!r}")
    if name in ("auto", "io_uring"):
        try:
            from rocket.engines.uring import UringEngine

            return UringEngine()
        except EngineUnavailable:
            if name == "io_uring":
                raise
    from rocket.engines.selector import SelectorEngine

    return SelectorEngine()


def auto_choice() -> tuple[str, str]:
    """Which engine ``auto`` picks here, and why, in words (for ``python -m rocket info``)."""
    try:
        from rocket.engines.uring import REQUIRED_OPS, UringEngine

        UringEngine().close()
    except EngineUnavailable as exc:
        return "selector", str(exc)
    except OSError as exc:
        return "selector", f"io_uring setup failed: {exc} (auto would report this error)"
    return "io_uring", (
        f"liburing imports, a ring can be set up, and the kernel supports all "
        f"{len(REQUIRED_OPS)} operations rocket needs"
    )
