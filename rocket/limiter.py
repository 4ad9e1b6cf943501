"""``CapacityLimiter``: at most ``total_tokens`` borrowers at a time (trio's meaning).

Like a :class:`~rocket.Semaphore` whose slots are lent to *borrowers*: by
default the calling fiber, or any object given to ``acquire_on_behalf_of``
(``to_thread(..., limiter=)`` borrows for each thread job). A borrower holds
at most one token, and only it can give it back. ``total_tokens`` can be
changed while tokens are lent: raising it lets waiters in at once, lowering it
takes no token back (new borrowers wait until enough are returned).

Built like the primitives in :mod:`rocket.sync`: waiters park on a FIFO wait
list and a returned token goes straight to the first of them.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from rocket import _context
from rocket.request import Request
from rocket.statistics import CapacityLimiterStatistics
from rocket.sync import Held, Wait, WouldBlock

if TYPE_CHECKING:
    from rocket.executor import Executor
    from rocket.fiber import Fiber

__all__ = ["CapacityLimiter"]


_SELF: Any = object()  # acquire()'s borrower: the fiber that makes the request


class _Borrow(Wait["CapacityLimiter"]):
    __slots__ = ("borrower",)
    borrower: object


class CapacityLimiter(Held):
    """Lend at most ``total_tokens`` tokens (an int >= 1, or ``math.inf``), one per borrower.

    ``with (yield limiter.acquire()):`` or ``async with limiter:`` borrows for
    the calling fiber.
    """

    __slots__ = ("_borrowers", "_total", "_waiters")

    def __init__(self, total_tokens: int | float) -> None:
        # Invariant: _borrowers (insertion-ordered) holds one entry per lent token; a
        # fiber waits only while len(_borrowers) >= _total or fibers are ahead of it.
        self._borrowers: dict[object, None] = {}
        self._waiters: deque[Fiber[Any]] = deque()  # each one's request names its borrower
        self._total: int | float = 1
        self.total_tokens = total_tokens

    # ------------------------------------------------------------ tokens

    @property
    def total_tokens(self) -> int | float:
        """How many tokens there are; settable (raising it lets waiters in)."""
        return self._total

    @total_tokens.setter
    def total_tokens(self, value: int | float) -> None:
        if isinstance(value, bool) or not (isinstance(value, int) or value == math.inf):
            raise TypeError(
                f"CapacityLimiter total_tokens must be an int or math.inf, not {value!r}"
            )
        if value < 1:
            raise ValueError(f"CapacityLimiter total_tokens must be >= 1, got {value}")
        self._total = value
        self._lend()

    @property
    def borrowed_tokens(self) -> int:
        """How many tokens are lent now."""
        return len(self._borrowers)

    @property
    def available_tokens(self) -> int | float:
        """How many more borrowers may take a token without waiting (may be 0)."""
        return max(0, self._total - len(self._borrowers))

    def statistics(self) -> CapacityLimiterStatistics:
        """Tokens lent and in total, the borrowers and the waiting fibers, as a snapshot."""
        return CapacityLimiterStatistics(
            len(self._borrowers), self._total, list(self._borrowers), len(self._waiters)
        )

    # ----------------------------------------------------------- acquire

    def acquire(self) -> Request[CapacityLimiter]:
        """Borrow a token for the calling fiber, waiting for one; the result is the limiter."""
        request = _Borrow("limiter.acquire", self._acquire)
        request.borrower = _SELF
        return request

    def acquire_on_behalf_of(self, borrower: object) -> Request[CapacityLimiter]:
        """Borrow a token for ``borrower`` (any hashable object), waiting for one."""
        request = _Borrow("limiter.acquire_on_behalf_of", self._acquire)
        request.borrower = borrower
        return request

    def _acquire(self, executor: Executor, fiber: Fiber[Any]) -> Any:
        request: _Borrow = fiber.request
        if request.borrower is _SELF:
            request.borrower = fiber
        borrower = request.borrower
        self._check_new(borrower)
        if self._waiters or len(self._borrowers) >= self._total:
            return executor.park(fiber, self._waiters)
        self._borrowers[borrower] = None
        return self

    def acquire_nowait(self) -> None:
        """Borrow a token for the calling fiber now.

        Raises:
            WouldBlock: no token is free.
            RuntimeError: the fiber holds one of this limiter's tokens already.
        """
        self.acquire_on_behalf_of_nowait(_context.running_fiber("acquire_nowait()"))

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        """Borrow a token for ``borrower`` now.

        Raises:
            WouldBlock: no token is free.
            RuntimeError: ``borrower`` holds one of this limiter's tokens already.
        """
        self._check_new(borrower)
        if self._waiters or len(self._borrowers) >= self._total:
            raise WouldBlock(
                f"all {self._total} tokens of the CapacityLimiter are lent; wait for one "
                "with 'yield limiter.acquire()'"
            )
        self._borrowers[borrower] = None

    def _check_new(self, borrower: object) -> None:
        if borrower in self._borrowers:
            raise RuntimeError(
                f"{borrower!r} already holds one of this CapacityLimiter's tokens; a "
                "borrower holds at most one (release it first)"
            )

    # ----------------------------------------------------------- release

    def release(self) -> None:
        """Give back the calling fiber's token.

        Raises:
            RuntimeError: the fiber holds none.
        """
        _context.loop_thread_only("CapacityLimiter.release()")
        self.release_on_behalf_of(_context.running_fiber("CapacityLimiter.release()"))

    def release_on_behalf_of(self, borrower: object) -> None:
        """Give back ``borrower``'s token; the first waiter gets it.

        Raises:
            RuntimeError: ``borrower`` holds none.
        """
        _context.loop_thread_only("CapacityLimiter.release()")
        if borrower not in self._borrowers:
            raise RuntimeError(
                f"{borrower!r} does not hold any of this CapacityLimiter's tokens; release "
                "only what was acquired, e.g. with 'with (yield limiter.acquire()):'"
            )
        del self._borrowers[borrower]
        self._lend()

    def _lend(self) -> None:
        """Hand free tokens to the waiters, first come first served."""
        waiters = self._waiters
        while waiters and len(self._borrowers) < self._total:
            fiber = waiters.popleft()
            self._borrowers[fiber.request.borrower] = None
            fiber.executor.wake(fiber, self)

    def __enter__(self) -> CapacityLimiter:
        me = _context.running_fiber("with limiter")
        if me not in self._borrowers:
            raise RuntimeError("borrow a token first: 'with (yield limiter.acquire()):'")
        return self

    def __repr__(self) -> str:
        return (
            f"<CapacityLimiter borrowed={len(self._borrowers)}/{self._total} "
            f"waiters={len(self._waiters)}>"
        )
