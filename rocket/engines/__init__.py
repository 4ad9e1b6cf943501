"""Engines: the asynchronous I/O back ends behind the executor.

An engine sees tokens and requests, never fibers. (trio's I/O manager and
curio's kernel do see tasks: they park the current task on an fd and
reschedule it themselves; rocket keeps that in the executor, so an engine is
only a translator from requests to system calls.) The executor gives it each I/O
request under a fresh token; the engine performs it however it can and later
reports ``(token, value, error)``.

* ``io_uring`` (:mod:`rocket.engines.uring`): one SQE per request, submitted
  in batches, completions reaped from the ring. Linux only, needs ``liburing``.
* ``selector`` (:mod:`rocket.engines.selector`): readiness (epoll/kqueue)
  plus worker threads for files; runs everywhere.

:func:`create_engine` picks one by name; ``"auto"`` prefers io_uring and falls
back to the readiness engine where io_uring is unavailable.

"Available" is checked, not assumed: a seccomp filter may allow
``io_uring_setup`` and refuse ``io_uring_enter`` (every submission then fails
with EPERM) or ``io_uring_register`` (the opcode probe fails). So before the
engine is built, :func:`_uring_refused` sets up a small ring, submits one NOP,
reaps it, and probes the opcodes; a refusal makes io_uring unavailable.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Protocol

from rocket.errors import EngineUnavailable, os_error
from rocket.ops import StreamRecv
from rocket.request import IORequest

__all__ = [
    "ENGINE_NAMES",
    "Completion",
    "Engine",
    "auto_choice",
    "closed_completion",
    "available_engines",
    "create_engine",
    "unsupported",
]

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

        Each completes at once, the same on every engine (:func:`closed_completion`:
        ``OSError`` EBADF, ``b""`` for a ``stream_recv``), before the caller
        closes the fd (whose number can then be reused).
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


def closed_completion(token: int, request: IORequest[Any]) -> Completion:
    """How a request that ``notify_closing`` stopped completes, on every engine.

    With ``OSError`` (EBADF) naming it; a ``stream_recv`` with ``b""`` instead:
    the stream closed under its reader has ended (what ``Stream.read`` returns).
    """
    if request.__class__ is StreamRecv:
        return token, b"", None
    return token, None, os_error(errno.EBADF, request.describe())


def unsupported(engine: str, request: IORequest[Any]) -> TypeError:
    """The error every engine raises for a request class it does not perform."""
    return TypeError(
        f"the {engine} engine cannot perform {request.describe()}; every engine performs "
        f"the requests in rocket.ops (a custom IORequest needs an engine that knows it)"
    )


def create_engine(name: str | None = "auto") -> Engine:
    """Build the engine called ``name`` (default: ``$ROCKET_ENGINE`` or auto).

    For ``auto`` and ``io_uring``, first submits one NOP on a small ring of its
    own (about 40 us) and probes the opcodes, so that an io_uring that a seccomp
    filter lets set up but not use counts as unavailable.

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
            return _uring_engine()
        except EngineUnavailable:
            if name == "io_uring":
                raise
    from rocket.engines.selector import SelectorEngine

    return SelectorEngine()


def available_engines() -> list[str]:
    """The names of the engines that work here, io_uring first (each is built once, then closed)."""
    names = []
    for name in ("io_uring", "selector"):
        try:
            create_engine(name).close()
        except EngineUnavailable:
            continue
        names.append(name)
    return names


def _uring_engine() -> Engine:
    """A working io_uring engine, or EngineUnavailable saying why not."""
    from rocket.engines.uring import UringEngine

    why = _uring_refused()
    if why is not None:
        raise EngineUnavailable(
            f"io_uring engine unavailable: {why}, most likely by a seccomp filter that "
            f"allows only some of the io_uring system calls; allow io_uring_setup, "
            f"io_uring_enter and io_uring_register, or use engine='selector' (what "
            f"engine='auto' falls back to)"
        )
    return UringEngine()


#: user_data of the probe's NOP (its ring is its own: any nonzero value will do).
_PROBE = 1
_PROBE_WAITS = 20  # of 0.05 s: a NOP that has not completed after 1 s never will


def _uring_refused() -> str | None:
    """Why io_uring_enter or io_uring_register cannot be used here; None if both work.

    A refused io_uring_setup is left to the engine, which explains it.
    """
    from rocket.engines import _liburing, _uring_setup

    try:
        ring = _liburing.Ring(8)
    except OSError:
        return None  # UringEngine() fails the same way and says why
    try:
        try:
            ring.prep_nop(_PROBE)
            ring.submit()
            for _ in range(_PROBE_WAITS):
                if ring.reap() == [(_PROBE, 0)]:
                    break
                ring.wait(0.05)
            else:
                return "io_uring_setup works but a NOP submitted with io_uring_enter never ended"
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            return f"io_uring_setup works but io_uring_enter was refused ({code})"
        try:
            _uring_setup.missing_ops()  # probed once per process, with io_uring_register
        except (OSError, RuntimeError) as exc:  # the package raises RuntimeError
            return f"the opcode probe failed ({exc}): io_uring_register was refused"
    finally:
        ring.close()
    return None


def auto_choice() -> tuple[str, str]:
    """Which engine ``auto`` picks here, and why, in words (for ``python -m rocket info``)."""
    try:
        from rocket.engines.uring import REQUIRED_OPS

        _uring_engine().close()
    except EngineUnavailable as exc:
        return "selector", str(exc)
    except OSError as exc:
        return "selector", f"io_uring setup failed: {exc} (auto would report this error)"
    return "io_uring", (
        f"liburing imports, a ring can be set up, and the kernel supports all "
        f"{len(REQUIRED_OPS)} operations rocket needs"
    )
