"""What every byte stream shares: ``closed``, ``with``/``async with``, ``async for`` lines."""

from __future__ import annotations

from typing import TypeVar

from rocket.request import Composite

__all__ = ["StreamLifecycle"]

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
