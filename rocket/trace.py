"""``trace=True``: print every scheduling step to stderr, in plain words.

A teaching aid: it shows the runnable queue and the blocked table change as
fibers yield requests and completions wake them, e.g.::

    [rocket] ran fiber 2 (reader): it asked for read(fd=5) -> blocked as token 3
    [rocket]   runnable: [1 main]   blocked: {3: 2 reader}
    [rocket] completion for token 3 woke fiber 2 (reader) with 12 bytes
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from rocket.fiber import BLOCKED, FINISHED, PARKED, Fiber

if TYPE_CHECKING:
    from rocket.executor import Executor

__all__ = ["Tracer"]


def _value(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    if isinstance(value, Fiber):
        return f"fiber {value.id}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Tracer:
    """Writes one line per scheduling event to ``out`` (stderr by default)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stderr

    def _say(self, text: str) -> None:
        self.out.write(f"[rocket] {text}\n")

    def stepped(self, executor: Executor, fiber: Fiber[Any]) -> None:
        """After a fiber ran: what it asked for and where it went."""
        who = f"fiber {fiber.id} ({fiber.name})"
        if fiber.state is FINISHED:
            error = fiber._error
            outcome = f"raised {error!r}" if error else f"returned {_value(fiber._result)}"
            self._say(f"ran {who}: it finished and {outcome}")
        else:
            asked = fiber.request.describe() if fiber.request is not None else "?"
            if fiber.stack:  # inside a nested call: say which
                asked += f" in {getattr(fiber.body, '__qualname__', '?')}"
            if fiber.state is BLOCKED:
                where = f"blocked as token {fiber.token}"
            elif fiber.state is PARKED:
                where = "parked until woken"
            else:
                where = "runnable again"
            self._say(f"ran {who}: it asked for {asked} -> {where}")
        self.show(executor)

    def woke(
        self, executor: Executor, fiber: Fiber[Any], token: int, value: Any, error: Any
    ) -> None:
        """After a completion moved a fiber from blocked to runnable."""
        what = f"error {error!r}" if error is not None else _value(value)
        self._say(f"completion for token {token} woke fiber {fiber.id} ({fiber.name}) with {what}")
        self.show(executor)

    def show(self, executor: Executor) -> None:
        """The runnable queue and the blocked table, as they are now."""
        runnable = ", ".join(f"{f.id} {f.name}" for f, _, _ in executor.runnable)
        blocked = ", ".join(f"{t}: {f.id} {f.name}" for t, f in executor.blocked.items())
        self._say(f"  runnable: [{runnable}]   blocked: {{{blocked}}}")
