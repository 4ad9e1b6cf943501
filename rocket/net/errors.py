"""The errors a stream's reads raise (the names and meaning of asyncio's)."""

from __future__ import annotations

from rocket.errors import RocketError

__all__ = ["IncompleteReadError", "LimitOverrunError"]


class IncompleteReadError(RocketError, EOFError):
    """The peer closed the connection before the expected bytes arrived.

    Attributes:
        partial: the bytes that did arrive.
        expected: how many bytes were asked for (None: up to a delimiter).
    """

    def __init__(self, partial: bytes, expected: int | None, delimiter: bytes = b"") -> None:
        self.partial = partial
        self.expected = expected
        if expected is None:
            message = (
                f"connection closed before the delimiter {delimiter!r} arrived "
                f"({len(partial)} bytes read)"
            )
        else:
            message = (
                f"connection closed after {len(partial)} of {expected} bytes: "
                f"{expected - len(partial)} bytes missing"
            )
        super().__init__(message)

    @property
    def missing(self) -> int | None:
        """How many bytes never came (None when reading up to a delimiter)."""
        return None if self.expected is None else self.expected - len(self.partial)


class LimitOverrunError(RocketError):
    """No delimiter within ``limit`` bytes; the bytes stay in the stream's buffer.

    Attributes:
        limit: the limit that was exceeded.
        consumed: how many bytes are buffered (and were searched).
    """

    def __init__(self, limit: int, consumed: int, delimiter: bytes) -> None:
        self.limit = limit
        self.consumed = consumed
        super().__init__(
            f"no {delimiter!r} within the limit of {limit} bytes "
            f"({consumed} bytes buffered); raise the limit or read in chunks"
        )
