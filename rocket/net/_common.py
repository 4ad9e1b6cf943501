"""What Stream and TLSStream share: buffered reads, and their lifecycle.

The read bodies take the stream's buffer (bytes received and not yet returned,
in order) and ``receive(n)``, the body of one receive of at most ``n`` bytes
(``b""`` at end of stream). Each received chunk goes to the buffer at once, so
a read that is interrupted (cancel, timeout, error) loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

from rocket.request import Composite, Request

from .errors import IncompleteReadError, LimitOverrunError

__all__ = ["StreamLifecycle", "read_exactly", "read_until"]

_Body = Generator[Request[Any], Any, Any]


def read_exactly(buffer: bytearray, receive: Callable[[int], _Body], n: int, most: int) -> _Body:
    """Exactly ``n`` bytes, receiving at most ``most`` at a time."""
    while len(buffer) < n:
        chunk = yield from receive(min(n - len(buffer), most))
        if not chunk:
            partial = bytes(buffer)
            buffer.clear()
            raise IncompleteReadError(partial, n)
        buffer += chunk
    data = bytes(buffer[:n])
    del buffer[:n]
    return data


def read_until(
    buffer: bytearray,
    receive: Callable[[int], _Body],
    delimiter: bytes,
    limit: int,
    eof_ok: bool,
    most: int,
) -> _Body:
    """Up to and including ``delimiter`` (at most ``limit`` bytes; the buffer stays bounded)."""
    width = len(delimiter)
    start = 0  # everything before start was searched already
    while True:
        end = buffer.find(delimiter, start)
        if end >= 0 and end + width <= limit:
            line = bytes(buffer[: end + width])
            del buffer[: end + width]
            return line
        if end >= 0 or len(buffer) >= limit:
            raise LimitOverrunError(limit, len(buffer), delimiter)
        start = max(0, len(buffer) - width + 1)
        chunk = yield from receive(min(most, limit - len(buffer)))  # never past the limit
        if not chunk:
            rest = bytes(buffer)
            buffer.clear()
            if eof_ok:
                return rest
            raise IncompleteReadError(rest, None, delimiter)
        buffer += chunk


_S = TypeVar("_S", bound="StreamLifecycle")


class StreamLifecycle:
    """A base for ``Stream`` and ``TLSStream``: they define ``close`` and ``readline``.

    Invariant: ``_closed`` is True once ``close()`` was called.
    """

    __slots__ = ()

    _closed: bool

    def close(self) -> None:
        raise NotImplementedError

    def readline(self, limit: int = ...) -> Composite[bytes]:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self: _S) -> _S:
        return self

    async def __anext__(self) -> bytes:
        """The next line (``async for line in stream``), until end of stream."""
        line: bytes = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line
