"""The echo benchmark: one server process per run, pinned to one core.

One run of a server at one cell (clients x message size):

1. start the server pinned to core 0;
2. **warm-up set**: a load generator (pinned to core 1) opens ``clients``
   connections, echoes for ``warmup`` seconds, then closes them all cleanly;
3. **measured set**: a second load generator opens ``clients`` NEW connections,
   lets them settle for :data:`SETTLE` seconds, then measures for ``duration``.

The separate warm-up set matters: a fresh asyncio server serves its whole first
set of connections at about a third of its steady rate however long that set runs,
so measuring on the first set (even after a warm-up period) understates it. The
server's CPU time comes from its own accounting (``/proc/PID/stat``), read when the
measuring load generator says ``go`` and again when it reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from rocket.bench import servers
from rocket.bench.loadgen import c_loadgen

__all__ = ["LOAD_CORE", "SETTLE", "Cell", "run_cell"]

_TICK = os.sysconf("SC_CLK_TCK")

#: The core the load generator is pinned to (the server's is core 0).
LOAD_CORE = 1

#: Seconds the measured set runs before measuring starts (its connections get going).
SETTLE = 0.2


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
    #: requests/s of the warm-up set (its first connections), for comparison
    warmup_requests_per_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads) and its child processes, in seconds.

    The children count for a server of several worker processes (``--workers``).
    """
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a worker that has just exited
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / _TICK
    for child in _children(pid):
        total += _cpu_seconds(child)
    return total


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``, found by their parent pid in ``/proc/*/stat``."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as file:
                    parent = int(file.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            if parent == pid:
                children.append(int(entry))
    return children


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


def _load(
    port: int, clients: int, size: int, warmup: float, duration: float
) -> subprocess.Popen[str]:
    load = subprocess.Popen(
        _loadgen_command(port, clients, size, warmup, duration), stdout=subprocess.PIPE, text=True
    )
    _pin(load.pid, LOAD_CORE)
    return load


def _parse(line: str, server: str) -> dict[str, str]:
    """The load generator's ``requests=N errors=E cpu_us=U`` line as a dict."""
    try:
        return dict(item.split("=") for item in line.split())
    except ValueError:
        raise RuntimeError(f"the load generator failed against {server} (said {line!r})") from None


def run_cell(
    server: str,
    clients: int,
    size: int,
    warmup: float,
    duration: float,
    command: list[str] | None = None,
    pin: bool = True,
) -> Cell:
    """Measure ``server`` at ``clients`` x ``size`` bytes; the server is stopped after.

    Args:
        warmup: seconds of load on a separate, first set of connections (0: none).
        duration: seconds measured on the second set.
        command: how to start the server (default: :func:`rocket.bench.servers.command`);
            it must print ``ready PORT`` and serve until stopped (SIGTERM, then SIGKILL).
        pin: pin the server to core 0 (False for one that pins its own workers).
    """
    proc = subprocess.Popen(command or servers.command(server), stdout=subprocess.PIPE, text=True)
    load: subprocess.Popen[str] | None = None
    try:
        if pin:
            _pin(proc.pid, 0)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"server {server} did not start (said {line!r})")
        port = int(line.split()[1])
        warm_rate = 0.0
        if warmup > 0:  # a first set of connections: load, then close them all
            load = _load(port, clients, size, 0.0, warmup)
            assert load.stdout is not None
            if load.stdout.readline().strip() != "go":
                raise RuntimeError(f"the load generator failed against {server} (warm-up)")
            warm_rate = int(_parse(load.stdout.readline(), server)["requests"]) / warmup
            load.wait(timeout=30)
        load = _load(port, clients, size, SETTLE, duration)
        assert load.stdout is not None
        if load.stdout.readline().strip() != "go":
            raise RuntimeError(f"the load generator failed against {server}")
        cpu_before, started = _cpu_seconds(proc.pid), time.monotonic()
        report = load.stdout.readline()
        cpu_after, elapsed = _cpu_seconds(proc.pid), time.monotonic() - started
        load.wait(timeout=30)
        values = _parse(report, server)
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
            warmup_requests_per_s=warm_rate,
        )
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (a supervisor stops its workers), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
