"""The request that runs a blocking callable in a worker thread: ``to_thread``.

Every engine keeps a pool of worker threads for it; the fiber waits like for
any I/O, and a time limit (``rocket.timeout``) drops a job no worker started.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeVar, overload

from rocket.request import Composite, IORequest, Request

__all__ = ["ThreadLimiter", "ToThread", "to_thread"]

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


class ThreadLimiter(Protocol):
    """What ``to_thread(..., limiter=)`` needs: a :class:`rocket.CapacityLimiter`."""

    def acquire_on_behalf_of(self, borrower: object) -> Request[Any]: ...

    def release_on_behalf_of(self, borrower: object) -> None: ...


@overload
def to_thread(
    func: Callable[..., T], /, *args: Any, limiter: None = None, **kwargs: Any
) -> ToThread[T]: ...


@overload
def to_thread(
    func: Callable[..., T], /, *args: Any, limiter: ThreadLimiter, **kwargs: Any
) -> Composite[T]: ...


def to_thread(
    func: Callable[..., T], /, *args: Any, limiter: ThreadLimiter | None = None, **kwargs: Any
) -> ToThread[T] | Composite[T]:
    """Run a blocking callable in a worker thread without blocking other fibers.

    The result is what ``func(*args, **kwargs)`` returns; what it raises is
    raised in the fiber. With ``limiter`` (a :class:`rocket.CapacityLimiter`)
    the call first waits for one of its tokens, and gives it back when the
    thread is done -- also when the fiber is cancelled or times out; the
    keyword ``limiter`` is then not passed to ``func``.

    Raises:
        TypeError: ``func`` is not callable, or ``limiter`` is no CapacityLimiter.
    """
    request = ToThread(func, args, kwargs)
    if limiter is None:
        return request
    if not hasattr(limiter, "acquire_on_behalf_of") or not hasattr(limiter, "release_on_behalf_of"):
        raise TypeError(
            "to_thread() argument 'limiter' must be a rocket.CapacityLimiter, "
            f"not {type(limiter).__name__}"
        )
    return Composite("to_thread", _limited(limiter, request))


def _limited(limiter: ThreadLimiter, request: ToThread[T]) -> Generator[Request[Any], Any, T]:
    """Borrow a token for the job (the request itself is the borrower), run it, give it back."""
    yield limiter.acquire_on_behalf_of(request)
    try:
        result: T = yield request
    finally:
        limiter.release_on_behalf_of(request)
    return result
