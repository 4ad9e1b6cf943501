"""Cancel scopes: a part of one fiber that can be cancelled as a whole.

::

    with rocket.CancelScope() as scope:        # any fiber may call scope.cancel()
        ...
    with rocket.CancelScope(deadline=rocket.current_time() + 5):
        ...
    with rocket.CancelScope(shield=True):      # cleanup no outside cancel interrupts
        yield rocket.sendall(sock, b"bye")

``CancelScope`` blocks, ``fail_after``/``move_on_after`` blocks and
``TaskGroup`` bodies are cancel scopes. A scope cancels its fiber with a
:class:`~rocket.Cancelled` whose ``scope`` attribute is the scope itself, and
catches only that one when it reaches the end of the block; any other
``Cancelled`` (a plain ``fiber.cancel()``, an outer scope's) goes on up.

A scope's deadline is on the executor's clock (:func:`current_time`:
``time.monotonic()``, or the virtual clock of :mod:`rocket.testing`); the
executor's timer heap cancels the scope when it passes, so entering, moving
and leaving a deadline costs no system call.

Invariants:

* ``executor.scopes[fiber]`` lists the fiber's open scopes, outermost first;
  ``scope.depth`` is the scope's position in it, counting from 1. The
  executor uses the depth to let an outer scope's cancel replace an inner
  one's that has not been thrown yet (a plain cancel has depth 0 and
  replaces both).
* A scope throws at most once, and not at all once an enclosing scope (up to
  the nearest shield) has cancelled: the outer one already stops the block.
* A shield scope holds back every cancel from outside it (a plain cancel, an
  outer scope's: rank below its depth) in ``_held``, the strongest one, and
  asks for it again when it ends (or stops shielding); the executor asks
  :func:`shielded` before it records a cancel.
* When a scope ends, a cancel of its own that was not thrown yet is
  withdrawn, so it never hits the fiber after the block.
* A scope swallows only its own ``Cancelled``, and not even that if a
  stronger one was already unwinding the block when its own hit (see
  :meth:`CancelScope.caught`).
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket._checks import _kind
from rocket.errors import Cancelled
from rocket.fiber import FINISHED

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["CancelScope", "current_effective_deadline", "current_time", "shielded"]


def _deadline(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"CancelScope deadline must be a number (rocket.current_time() + seconds), "
            f"not {_kind(value)}"
        )
    if math.isnan(value):
        raise ValueError("CancelScope deadline must not be NaN; use math.inf for no deadline")
    return float(value)


class CancelScope:
    """A block of one fiber that can be cancelled as a whole (trio's ``CancelScope``).

    Args:
        deadline: cancel the block when :func:`current_time` reaches it
            (``math.inf``: never); it can be moved while the block runs.
        shield: hold back every cancel from outside the block (the fiber's
            ``cancel()``, an enclosing scope's deadline) until the block ends,
            e.g. for a cleanup that must finish.

    Attributes:
        cancel_called: True once :meth:`cancel` was called or the deadline passed.
        cancelled_caught: True if the block was cut short by this scope's cancel.

    Raises:
        TypeError, ValueError: a bad ``deadline`` or ``shield``.
        RuntimeError: entered outside a fiber, entered twice, or exited out of
            order (or by another fiber).
    """

    executor: Executor
    fiber: Fiber[Any] | None = None
    depth = 0

    def __init__(self, *, deadline: float = math.inf, shield: bool = False) -> None:
        if not isinstance(shield, bool):
            raise TypeError(f"CancelScope shield must be True or False, not {_kind(shield)}")
        self._deadline = _deadline(deadline)
        self._shield = shield
        self.cancel_called = False
        self.cancelled_caught = False
        self._closed = False
        self._message = ""
        self._timer: list[Any] | None = None
        self._held: Cancelled | None = None  # shield: the outside cancel held back

    def __repr__(self) -> str:
        state = "cancelled" if self.cancel_called else "active" if self.fiber else "unentered"
        shield = ", shield" if self._shield else ""
        return f"<{type(self).__name__} {state}{shield} deadline={self._deadline:g}>"

    # ---------------------------------------------------------------- public

    @property
    def deadline(self) -> float:
        """When the block is cancelled, on the executor's clock (``math.inf``: never)."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._deadline = _deadline(value)
        if self.fiber is not None and not self._closed:
            self._arm_timer()

    @property
    def shield(self) -> bool:
        """True while the block holds back cancels from outside it."""
        return self._shield

    @shield.setter
    def shield(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"CancelScope shield must be True or False, not {_kind(value)}")
        self._shield = value
        if self.fiber is None or self._closed:
            return
        if not value:
            self._release_held()
        elif self.executor.running is self.fiber:
            self._hold_pending()  # (from another fiber, a cancel on its way still lands)

    def cancel(self) -> None:
        """Cancel the block (now, or as soon as it is entered); a no-op once it ended."""
        self.cancel_fiber(f"{type(self).__name__}.cancel() was called")

    def __enter__(self) -> CancelScope:
        self._open(type(self).__name__)
        self._arm()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._close()
        if not self.caught(error):
            return False
        self.cancelled_caught = True
        return True

    async def __aenter__(self) -> CancelScope:
        return self.__enter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        return self.__exit__(kind, error, traceback)

    # ------------------------------------------------------------- internals

    def _open(self, what: str) -> None:
        """Push the scope for the running fiber (raises RuntimeError outside one)."""
        if self.fiber is not None:
            raise RuntimeError(f"{what} can be entered only once; make a new one")
        self.executor = _context.running_executor(what)
        fiber = self.executor.running
        if fiber is None:
            raise RuntimeError(f"{what} must be used inside a rocket fiber (within rocket.run)")
        self.fiber = fiber
        stack = self.executor.scopes.setdefault(fiber, [])
        stack.append(self)
        self.depth = len(stack)

    def _arm(self) -> None:
        """Start what the scope was told before it was entered: shield, cancel, deadline."""
        if self._shield:
            self._hold_pending()
        if self.cancel_called:
            self._throw()
        elif self._deadline != math.inf:
            self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self.executor.timers.remove(self._timer)
            self._timer = None
        if not self.cancel_called and self._deadline != math.inf:
            self._timer = self.executor.timers.add(self._deadline, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self.cancel_fiber(f"the {type(self).__name__}'s deadline passed")

    def _close(self) -> None:
        """Pop the scope, withdraw its unthrown cancel, pass on a held one.

        Raises:
            RuntimeError: the scope is not the innermost open one of its fiber,
                or the running fiber is not the one that entered it.
        """
        fiber = self.fiber
        assert fiber is not None
        self._closed = True
        if self._timer is not None:
            self.executor.timers.remove(self._timer)
            self._timer = None
        running = self.executor.running
        if running is not fiber and fiber.state is not FINISHED:
            raise RuntimeError(
                f"{self!r} was entered by {fiber} but exited by {running}; a cancel scope "
                f"must be exited by the fiber that entered it"
            )
        scopes = self.executor.scopes
        stack = scopes.get(fiber, [])
        innermost = stack[-1] if stack else None
        if self in stack:
            stack.remove(self)
        if not stack:
            scopes.pop(fiber, None)
        pending = fiber.cancel_requested
        if pending is not None and pending.scope is self:
            fiber.cancel_requested = None
        self._release_held()
        if innermost is not self:
            raise RuntimeError(
                f"cancel scopes exited out of order: {self!r} exited while {innermost!r}, "
                f"entered inside it, is still open; exit the innermost scope first "
                f"(nest the 'with' blocks)"
            )

    def _hold_pending(self) -> None:
        """Shield: take the fiber's pending cancel from outside (all are) into ``_held``."""
        fiber = self.fiber
        assert fiber is not None
        pending = fiber.cancel_requested
        if pending is not None and pending.rank < self.depth:
            fiber.cancel_requested = None
            self.hold(pending)

    def hold(self, error: Cancelled) -> None:
        """Keep ``error`` (a cancel from outside) until the shield ends; keep the strongest."""
        if self._held is None or error.rank < self._held.rank:
            self._held = error

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None and self.fiber is not None:
            self.executor.cancel(self.fiber, held)  # an outer shield may hold it again

    def cancel_fiber(self, message: str) -> None:
        """Cancel the block: throw a ``Cancelled`` carrying this scope into its fiber."""
        if self.cancel_called:
            return
        self.cancel_called = True
        self._message = message
        if self.fiber is not None and not self._closed:
            self._throw()

    def _throw(self) -> None:
        fiber = self.fiber
        assert fiber is not None
        stack = self.executor.scopes.get(fiber, [])
        for outer in reversed(stack[: stack.index(self)] if self in stack else ()):
            if outer.cancel_called:
                return  # an enclosing scope already stops the block
            if outer.shield:
                break  # scopes beyond the shield do not reach in here
        error = Cancelled(self._message)
        error.scope = self
        self.executor.cancel(fiber, error)

    def caught(self, error: BaseException | None) -> bool:
        """True if ``error`` is this scope's own ``Cancelled``, for the scope to handle.

        If a stronger ``Cancelled`` (a plain one, or an outer scope's) was
        already unwinding the block when this scope's hit -- say, in a
        ``finally`` clause doing I/O after ``fiber.cancel()`` -- that one is
        raised instead: the scope must not swallow it.
        """
        if not isinstance(error, Cancelled) or error.scope is not self:
            return False
        stronger = self.stronger_than_own(error)
        if stronger is not None:
            raise stronger
        return True

    def stronger_than_own(self, error: BaseException) -> Cancelled | None:
        """A plain or outer ``Cancelled`` that ``error`` (its own) interrupted, if any."""
        earlier = error.__context__
        while earlier is not None:
            if isinstance(earlier, Cancelled) and (
                earlier.scope is None or earlier.scope.depth < self.depth
            ):
                return earlier
            earlier = earlier.__context__
        return None


def shielded(scopes: list[Any], error: Cancelled) -> bool:
    """True if a shield scope between ``error``'s origin and the fiber holds it back.

    ``scopes`` is the fiber's open scopes, outermost first. The held cancel
    is asked for again when that shield ends (called by ``Executor.cancel``).
    """
    rank = error.rank
    for scope in reversed(scopes):
        if scope.depth <= rank:
            return False  # the cancel comes from this scope or one inside it
        if scope.shield:
            scope.hold(error)
            return True
    return False


def current_time() -> float:
    """The executor's clock, in seconds: what scope deadlines are measured on.

    ``time.monotonic()`` on the real engines, the virtual time under
    :class:`rocket.testing.VirtualEngine`.

    Raises:
        RuntimeError: called outside ``rocket.run``.
    """
    return _context.running_executor("rocket.current_time()").clock()


def current_effective_deadline() -> float:
    """The nearest deadline of the running fiber's open scopes (up to the nearest shield).

    ``math.inf`` if none has one; ``-math.inf`` if one of them was cancelled
    already (trio's rule).

    Raises:
        RuntimeError: called outside a rocket fiber.
    """
    fiber = _context.running_fiber("rocket.current_effective_deadline()")
    deadline = math.inf
    for scope in reversed(fiber.executor.scopes.get(fiber, ())):
        if scope.cancel_called:
            return -math.inf
        deadline = min(deadline, scope.deadline)
        if scope.shield:
            break
    return deadline
