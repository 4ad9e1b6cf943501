"""Each fiber's ``contextvars`` context: a copy of its spawner's, made only when needed.

Each fiber sees its own copy of the context taken when it was spawned, as
asyncio tasks (and trio tasks) do: a ContextVar set in one fiber (a request
id, a ``decimal`` context) is not seen by its siblings, its parent, or the
caller of ``rocket.run``. The loop runs the step of a fiber with a context
of its own in ``fiber.context.run(step, ...)``; doing that for every fiber
would cost about 80 ns a step, a fifth of a fiber switch, so only fibers
that use a context pay for one:

* ``fiber.context`` is None for a fiber that has no context of its own; it
  runs in ``executor.shared``, a context whose contents equal
  ``executor.clean`` (the caller's context at ``run()``).
* After each step the loop compares ``shared`` with ``clean`` (O(1) while
  they share their map). If the fiber changed ``shared``, :func:`isolate`
  makes the changed copy its own context, and the loop starts again in a
  fresh copy of ``clean`` (the other fibers never see the change).
* A fiber spawned by one with a context of its own gets a copy of that one;
  one spawned by a fiber that set a ContextVar in this very step, a copy of
  ``shared``; otherwise None.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["for_child", "isolate"]


def for_child(executor: Executor) -> contextvars.Context | None:
    """The context of a fiber being spawned by ``executor.running`` (see the module docstring)."""
    spawner = executor.running
    if spawner is not None and spawner.context is not None:
        return spawner.context.copy()
    if executor.shared != executor.clean:  # the spawner set a ContextVar in this very step
        return executor.shared.copy()
    return None


def isolate(executor: Executor, fiber: Fiber[Any]) -> None:
    """``fiber`` changed the shared context: the change becomes its own context."""
    if fiber.context is None:  # (a callback's change would otherwise blame a fiber)
        fiber.context = executor.shared.copy()
    executor.shared = executor.clean.copy()  # loop() goes on in it
