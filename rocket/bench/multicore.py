"""``python -m rocket bench --workers N``: the echo grid with 1, 2, ... N workers.

The server is :func:`rocket.run_workers` around the ``rocket-streams`` echo
(``serve_tcp(..., reuse_port=True)``, the way a user would write it); worker
``i`` is pinned to core ``i``, and the load generator to the last core, as in
the one-process grid (so on a machine with N cores, the N-worker run shares a
core with the load generator: read that figure as a lower bound). The server
CPU per request adds up the supervisor and every worker (``/proc``).

Run one server as ``python -m rocket.bench.multicore N``: it prints
``ready PORT`` once every worker listens, and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Generator
from typing import Any

import rocket
from rocket.bench import echo
from rocket.bench.servers import _stream_echo

__all__ = ["command", "run_grid", "worker_counts"]

_BACKLOG = 4096


def worker_counts(text: str) -> list[int]:
    """``"4"`` -> 1, 2, 3, 4; ``"1,2,4"`` -> those. Raises ValueError on anything else."""
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise ValueError(f"--workers {text!r}: give N (runs 1..N workers) or a list such as 1,2,4")
    return list(range(1, counts[0] + 1)) if len(counts) == 1 else counts


def command(workers: int) -> list[str]:
    """The command line of a server with ``workers`` workers."""
    return [sys.executable, "-m", "rocket.bench.multicore", str(workers)]


def name(workers: int) -> str:
    return f"rocket-workers-{workers}"


def run_grid(
    counts: list[int], clients: list[int], sizes: list[int], warmup: float, duration: float
) -> list[echo.Cell]:
    """One run per (workers, clients, size); prints a line per run."""
    cells = []
    for size in sizes:
        for count in clients:
            base: echo.Cell | None = None
            for workers in counts:
                cell = echo.run_cell(
                    name(workers), count, size, warmup, duration, command(workers), pin=False
                )
                base = base or cell
                print(
                    f"  {workers:>3} workers  {count:>5} clients x {size:>5} B"
                    f"  {cell.requests_per_s:>10,.0f} req/s"
                    f"  {cell.requests_per_s / base.requests_per_s:5.2f}x"
                    f"  {cell.server_cpu_us_per_request:6.1f} CPU us/req"
                    f"  loadgen {cell.loadgen_cpu_percent:3.0f}% CPU  errors {cell.errors}",
                    flush=True,
                )
                cells.append(cell)
    return cells


def _serve(workers: int) -> None:
    # Keep the port: bound with SO_REUSEPORT but never listening, so no client lands here.
    keeper = socket.socket()
    keeper.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    keeper.bind(("127.0.0.1", 0))
    port = keeper.getsockname()[1]

    def main() -> Generator[Any, Any, None]:
        server = yield from rocket.serve_tcp(
            _stream_echo, "127.0.0.1", port, backlog=_BACKLOG, reuse_port=True
        )
        yield from server.serve_forever()

    rocket.run_workers(main, workers, grace=1.0, ready=lambda: print(f"ready {port}", flush=True))


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
