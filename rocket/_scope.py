"""Cancel scopes: a part of one fiber that can be cancelled as a whole.

``fail_after``/``move_on_after`` blocks and ``TaskGroup`` bodies are cancel
scopes. A scope cancels its fiber with a :class:`~rocket.Cancelled` whose
``scope`` attribute is the scope itself, and catches only that one when it
reaches the end of the block; any other ``Cancelled`` (a plain
``fiber.cancel()``, an outer scope's) goes on up.

Invariants:

* ``executor.scopes[fiber]`` lists the fiber's open scopes, outermost first;
  ``scope.depth`` is the scope's position in it, counting from 1. The
  executor uses the depth to let an outer scope's cancel replace an inner
  one's that has not been thrown yet (a plain cancel has depth 0 and
  replaces both).
* A scope cancels at most once, and not at all once an enclosing scope has
  cancelled: the outer one already stops the block.
* When a scope ends, a cancel of its own that was not thrown yet is
  withdrawn, so it never hits the fiber after the block.
* A scope swallows (or turns into ``TimeoutError``) only its own
  ``Cancelled``, and not even that if a stronger one was already unwinding
  the block when its own hit (see :meth:`CancelScope.caught`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket.errors import Cancelled

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["CancelScope"]


class CancelScope:
    """Base of the scopes; see the module docstring."""

    executor: Executor
    fiber: Fiber[Any] | None = None
    depth = 0
    cancel_called = False  # this scope asked to cancel its fiber

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

    def _close(self) -> None:
        """Pop the scope and withdraw its cancel if it was not thrown yet."""
        fiber = self.fiber
        assert fiber is not None
        scopes = self.executor.scopes
        stack = scopes.get(fiber)
        if stack is not None and self in stack:
            stack.remove(self)
            if not stack:
                del scopes[fiber]
        pending = fiber.cancel_requested
        if pending is not None and pending.scope is self:
            fiber.cancel_requested = None

    def cancel_fiber(self, message: str) -> None:
        """Cancel the block: throw a ``Cancelled`` carrying this scope into its fiber."""
        fiber = self.fiber
        if fiber is None or self.cancel_called:
            return
        for outer in self.executor.scopes.get(fiber, ()):
            if outer is self:
                break
            if outer.cancel_called:
                return  # an enclosing scope already stops the block
        self.cancel_called = True
        error = Cancelled(message)
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
