"""The io_uring engine's read buffers, reused once the kernel is done with them.

A receive or small read needs a buffer the kernel writes into. A fresh
``bytearray(65536)`` per receive cost more than everything else in an echo
server (profiled), so buffers are reused -- but only after their CQE has been
reaped: until then the kernel may still write into them, cancelled requests
included. A buffer whose request failed or was cancelled is dropped, never
reused. What the pool keeps is bounded: up to :data:`FULL_POOL` buffers of
:data:`POOLED_SIZE` (what every ``recv(sock, 65536)`` takes, in a list of their
own), and :data:`POOL_BYTES` of other sizes (a bound on their total, since reads
of many different sizes each get a list). A pass with 500 clients gives back
about 500 buffers at once: a bound of 256 made half of the next pass's receives
allocate again.

Invariant: a buffer is in the pool only while no SQE refers to it.
"""

from __future__ import annotations

from rocket.engines._uring_finish import copy_out, received_into

__all__ = ["FULL_POOL", "POOLED_SIZE", "POOL_BYTES", "BufferPool"]

#: Read/recv buffers up to this size come from (and go back to) the pool.
POOLED_SIZE = 65536
FULL_POOL = 512
POOL_BYTES = 16 * 1024 * 1024


class BufferPool:
    """Free buffers by size; see the module docstring.

    Attributes:
        full: the free buffers of POOLED_SIZE (the engine takes from it inline).
        received: the finisher of a receive into a buffer from ``full``.
    """

    __slots__ = ("_by_size", "_bytes", "full", "received")

    def __init__(self) -> None:
        self.full: list[bytearray] = []
        self._by_size: dict[int, list[bytearray]] = {}  # the other sizes
        self._bytes = 0  # Invariant: the total size of the buffers in _by_size
        self.received = received_into(self.full, FULL_POOL)

    def take(self, size: int) -> bytearray:
        """A buffer of ``size`` bytes, reused if one is free."""
        if size == POOLED_SIZE:
            return self.full.pop() if self.full else bytearray(size)
        free = self._by_size.get(size)
        if free:
            self._bytes -= size
            return free.pop()
        return bytearray(size)

    def give_back(self, res: int, buf: bytearray) -> bytes:
        """The finisher of a read into a buffer from :meth:`take`: copy out, keep the buffer.

        Called only once the CQE has been reaped, so the kernel is done with ``buf``.
        """
        size = len(buf)
        if size == POOLED_SIZE:
            return self.received(res, buf)
        data = copy_out(res, buf)
        if self._bytes + size <= POOL_BYTES:
            self._by_size.setdefault(size, []).append(buf)
            self._bytes += size
        return data

    def kept(self) -> list[bytearray]:
        """Every buffer the pool keeps now (for tests of its bound)."""
        return self.full + [buf for free in self._by_size.values() for buf in free]
