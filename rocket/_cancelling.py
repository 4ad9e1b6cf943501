"""How the executor cancels a fiber: ``Executor.cancel`` and ``Executor.cancel_all``.

Cancellation rule (details in ``docs/cancellation.md``): :func:`cancel`
throws :class:`~rocket.Cancelled` at the fiber's current wait, once. A parked
fiber is woken with it at once, unless it parked with an ``abort`` function
(see ``Executor.park``), which then decides. A fiber blocked on I/O resumes only when
the engine reports that the kernel is done with the request; if the request
completed anyway, the fiber gets its result (an accepted socket or read data
is never lost) and ``Cancelled`` is raised at its next request, as for a
runnable fiber; a completion with nothing to lose (an error, end of file,
``None``) is replaced by the ``Cancelled``. A request that releases a resource
(``close``) is performed even with a cancel pending, so that cleanup in
``finally`` always takes effect; the cancel comes at the next request.
Until thrown it waits in ``fiber.cancel_requested``; asking again does
nothing, except that a plain cancel outranks a cancel scope's (``fail_after``,
``TaskGroup``) and an outer scope's an inner one's; a shield scope holds a
cancel from outside it until the shielded block ends (``rocket._scope``).
A fiber may catch ``Cancelled`` and go on. When main finishes, the others
are cancelled and run until they finish (:func:`cancel_all`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rocket import _scope
from rocket.errors import Cancelled
from rocket.fiber import BLOCKED, FINISHED, PARKED

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["cancel", "cancel_all", "nothing_to_lose"]


def nothing_to_lose(value: Any, error: BaseException | None) -> bool:
    """True if a completion carries nothing a cancelled fiber would lose.

    An error, end of file (``b""``) or a bare "done" (``None``) can be dropped
    for ``Cancelled``: reading again sees the same end of file. Data, a count of
    bytes sent or an accepted socket must reach the fiber.
    """
    return error is not None or value is None or (value.__class__ is bytes and not value)


def cancel_all(executor: Executor) -> None:
    """Cancel every unfinished fiber that no earlier cancel_all reached.

    (When a shutdown makes main finish, cleanups are not cancelled twice.)
    """
    for other in list(executor.fibers.values()):
        if other.id > executor.swept:
            executor.cancel(other)
    executor.swept = max(executor.fibers, default=executor.swept)


def cancel(executor: Executor, fiber: Fiber[Any], error: Cancelled | None = None) -> None:
    """Throw ``error`` (default: a plain ``Cancelled``) into ``fiber`` (``Executor.cancel``)."""
    if fiber.state is FINISHED:
        return
    if error is None:
        error = Cancelled()
    scopes = executor.scopes.get(fiber)
    if scopes is not None and _scope.shielded(scopes, error):
        return  # a shield scope holds it until the shielded block ends
    pending = fiber.cancel_requested
    if pending is not None and pending.rank <= error.rank:
        return  # an equal or stronger one is on its way
    fiber.cancel_requested = error
    if fiber.state is PARKED:
        waitlist = fiber.waitlist
        assert waitlist is not None
        if fiber.abort is not None:  # what the fiber's way of parking said to do
            fiber.abort(fiber, error)
        else:
            waitlist.remove(fiber)
            executor.wake(fiber, None, error)
    elif fiber.state is BLOCKED and pending is None and not fiber.request.releases:
        executor.engine.cancel(fiber.token)  # (a close is never cancelled: it must happen)
