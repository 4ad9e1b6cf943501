"""The echo benchmark: one server process per cell, pinned to one core.

For each cell (clients x message size) and each server: start the server
pinned to core 0, start the load generator pinned to core 1, let it connect
and warm up, then measure for a fixed time. The server's CPU time comes from
its own accounting (``/proc/PID/stat``), read when the load generator says
``go`` and again when it reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from rocket.bench.loadgen import c_loadgen

__all__ = ["Cell", "run_cell"]

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Cell:
    """One measurement: a server at one (clients, size) point."""

    server: str
    clients: int
    size: int
    requests_per_s: float
    server_cpu_us_per_request: float
    loadgen_cpu_percent: float
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        try:
            os.sched_setaffinity(pid, {cpu})
        except OSError:
            pass


def _loadgen_command(
    port: int, clients: int, size: int, warmup: float, duration: float
) -> list[str]:
    args = ["127.0.0.1", str(port), str(clients), str(size), str(warmup), str(duration)]
    binary = c_loadgen()
    if binary is not None:
        return [str(binary), *args]
    return [sys.executable, "-m", "rocket.bench.loadgen", *args]


def run_cell(server: str, clients: int, size: int, warmup: float, duration: float) -> Cell:
    """Measure ``server`` at ``clients`` x ``size`` bytes; the server is stopped after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rocket.bench.servers", server],
        stdout=subprocess.PIPE,
        text=True,
    )
    load: subprocess.Popen[str] | None = None
    try:
        _pin(proc.pid, 0)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"server {server} did not start (said {line!r})")
        port = int(line.split()[1])
        load = subprocess.Popen(
            _loadgen_command(port, clients, size, warmup, duration),
            stdout=subprocess.PIPE,
            text=True,
        )
        _pin(load.pid, 1)
        assert load.stdout is not None
        if load.stdout.readline().strip() != "go":
            raise RuntimeError(f"the load generator failed against {server}")
        cpu_before, started = _cpu_seconds(proc.pid), time.monotonic()
        report = load.stdout.readline()
        cpu_after, elapsed = _cpu_seconds(proc.pid), time.monotonic() - started
        load.wait(timeout=30)
        values = dict(item.split("=") for item in report.split())
        requests = int(values["requests"])
        if requests == 0:
            raise RuntimeError(f"{server} echoed nothing in {duration:g} s")
        return Cell(
            server=server,
            clients=clients,
            size=size,
            requests_per_s=requests / elapsed,
            server_cpu_us_per_request=(cpu_after - cpu_before) * 1e6 / max(requests, 1),
            loadgen_cpu_percent=int(values["cpu_us"]) / 1e4 / elapsed,
            errors=int(values["errors"]),
        )
    finally:
        for child in (load, proc):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
