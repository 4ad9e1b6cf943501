"""rocket.snapshot(): every fiber's id, name, state, request, wait time and deadline."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import rocket

Body = Generator[Any, Any, Any]


def test_snapshot_describes_every_fiber(engine: str) -> None:
    """Blocked, parked and runnable fibers show their request, wait time and deadline."""
    r, w = os.pipe()
    event = rocket.Event()

    def reader() -> Body:
        with rocket.fail_after(30):
            yield rocket.read(r, 10)

    def waiter() -> Body:
        yield event.wait()

    def spinner() -> Body:
        for _ in range(3):
            yield rocket.yield_now()

    def main() -> Body:
        fibers = [
            (yield rocket.spawn(reader(), name="reader")),
            (yield rocket.spawn(waiter(), name="waiter")),
        ]
        yield rocket.sleep(0.02)
        fibers.append((yield rocket.spawn(spinner(), name="spinner")))
        infos = yield rocket.snapshot()
        for fiber in fibers:
            fiber.cancel()
        return infos

    try:
        infos = rocket.run(main(), engine=engine)
    finally:
        os.close(r)
        os.close(w)
    by_name = {info.name: info for info in infos}
    assert [info.id for info in infos] == sorted(info.id for info in infos)
    assert by_name["main"].state == "running"
    reader_info = by_name["reader"]
    assert reader_info.state == "blocked"
    assert reader_info.request == f"read(fd={r})"
    assert reader_info.waiting is not None
    assert 0.015 <= reader_info.waiting < 5
    assert reader_info.deadline is not None
    assert 25 < reader_info.deadline <= 30
    waiter_info = by_name["waiter"]
    assert (waiter_info.state, waiter_info.request) == ("parked", "event.wait()")
    assert waiter_info.deadline is None
    assert (by_name["spinner"].state, by_name["spinner"].waiting) == ("runnable", None)
    table = rocket.format_snapshot(infos)
    assert table.startswith("rocket: 4 fibers\n")
    assert f"read(fd={r})" in table
    assert "event.wait()" in table
