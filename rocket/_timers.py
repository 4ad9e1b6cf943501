"""The executor's timers: callbacks due at a ``time.monotonic()`` deadline.

Used by ``fail_after``/``move_on_after`` scopes, which need no engine
round trip: the executor passes :meth:`Timers.delay` as the timeout of its
engine wait and calls :meth:`Timers.fire` after each wait.

A min-heap of ``[deadline, seq, callback]`` entries. Removing a timer only
blanks its callback (O(1)); the heap is rebuilt when blanked entries
outnumber live ones, so scopes that end early (the usual case) do not pile
up. Invariant: ``live`` is the number of live timers (an attribute, not
``__len__``: the executor checks it on every pass, and a method call costs).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["Timers"]

_Entry = list[Any]  # [deadline, seq, callback or None]


class Timers:
    """Callbacks ordered by deadline; see the module docstring."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self.live = 0
        self._seq = itertools.count().__next__

    def add(self, deadline: float, callback: Callable[[], None]) -> _Entry:
        """Call ``callback()`` once ``deadline`` has passed; returns a handle for :meth:`remove`."""
        entry = [deadline, self._seq(), callback]
        heapq.heappush(self._heap, entry)
        self.live += 1
        return entry

    def remove(self, entry: _Entry) -> None:
        """Forget a timer that has not fired (no-op if it fired or was removed)."""
        if entry[2] is None:
            return
        entry[2] = None
        self.live -= 1
        heap = self._heap
        if len(heap) > 64 and self.live < len(heap) // 2:
            heap[:] = [e for e in heap if e[2] is not None]  # same list: fire() may hold it
            heapq.heapify(heap)

    def delay(self, now: float) -> float | None:
        """Seconds from ``now`` until the next live timer is due (0 if overdue), or None."""
        heap = self._heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        if not heap:
            return None
        return max(0.0, float(heap[0][0]) - now)

    def fire(self, now: float) -> None:
        """Call, in deadline order, every live timer due at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            callback = entry[2]
            if callback is not None:
                entry[2] = None
                self.live -= 1
                callback()
