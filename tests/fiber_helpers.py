"""Small fiber bodies that several test modules use (imported as ``fiber_helpers``)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import rocket

Body = Generator[Any, Any, Any]


def do(request: Any) -> Body:
    """A fiber body that makes one request (rocket.spawn takes bodies, not requests)."""
    return (yield request)


def settle(rounds: int = 3) -> Body:
    """Let every runnable fiber run until it waits (on a primitive or on I/O)."""
    for _ in range(rounds):
        yield rocket.yield_now()
