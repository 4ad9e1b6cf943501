"""The request that runs a blocking callable in a worker thread: ``to_thread``.

Every engine keeps a pool of worker threads for it; the fiber waits like for
any I/O, and a time limit (``rocket.timeout``) drops a job no worker started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from rocket.request import IORequest

__all__ = ["ToThread", "to_thread"]

T = TypeVar("T")


class ToThread(IORequest[T]):
    """Run ``func(*args, **kwargs)`` in a worker thread; the result is its return value."""

    __slots__ = ("args", "func", "kwargs", "label")
    verb = "to_thread"

    def __init__(
        self,
        func: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        label: str | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(
                f"to_thread() argument 'func' must be callable, not {type(func).__name__}"
            )
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.label = label

    def call(self) -> T:
        """Run the function (in a worker thread)."""
        return self.func(*self.args, **self.kwargs)

    def describe(self) -> str:
        if self.label is not None:
            return self.label
        return f"to_thread({getattr(self.func, '__qualname__', repr(self.func))})"


def to_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> ToThread[T]:
    """Run a blocking callable in a worker thread without blocking other fibers.

    The result is what ``func(*args, **kwargs)`` returns; what it raises is
    raised in the fiber.

    Raises:
        TypeError: ``func`` is not callable.
    """
    return ToThread(func, args, kwargs)
