"""Smoke tests of ``python -m rocket bench``: the trampoline, the statistics, the run order,
the separate warm-up connections, and a tiny grid that reports checked echoes."""

from __future__ import annotations

import ast
import errno
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rocket.bench import echo, servers
from rocket.bench.stats import Spread, interleave, spread

_NO_TRAMPOLINE = servers.available("trampoline")
needs_trampoline = pytest.mark.skipif(
    _NO_TRAMPOLINE is not None, reason=f"trampoline unavailable: {_NO_TRAMPOLINE}"
)


def test_tiny_echo_grid(tmp_path: Path) -> None:
    """Two servers, one cell: every echo verified (0 errors), figures in the table and JSON."""
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rocket",
            "bench",
            "echo",
            "--servers",
            "rocket-selector,threads",
            "--clients",
            "4",
            "--sizes",
            "64",
            "--duration",
            "0.3",
            "--warmup",
            "0.2",
            "--repeat",
            "2",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "4 clients x 64 B, median of 2 runs (min-max)" in result.stdout
    assert "x trampoline" in result.stdout  # the column is there, "-" without a trampoline
    cells = json.loads(out.read_text())["echo"]
    assert {cell["server"] for cell in cells} == {"rocket-selector", "threads"}
    for cell in cells:
        assert cell["errors"] == 0
        assert len(cell["runs"]) == cell["repeats"] == 2
        rates = sorted(run["requests_per_s"] for run in cell["runs"])
        assert cell["requests_per_s"] == pytest.approx(sum(rates) / 2)
        assert (cell["requests_per_s_min"], cell["requests_per_s_max"]) == (rates[0], rates[1])
        assert cell["requests_per_s"] > 0
        assert cell["server_cpu_us_per_request"] > 0


def test_switch_and_files_report_ratios(tmp_path: Path) -> None:
    """The switch and files benchmarks print each contender with its ratios."""
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "bench", "switch", "files", "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("rocket-selector", "threads", "asyncio", "asyncio-to_thread"):
        assert f"  {name} " in result.stdout
    assert "x asyncio" in result.stdout


def test_unknown_benchmark_is_refused() -> None:
    """A misspelt benchmark name is an error that lists the choices."""
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "bench", "echoo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "choose from echo, files, switch" in result.stderr


# ------------------------------------------------------------------ the trampoline


def test_trampoline_echo_sends_the_rest_after_a_short_send() -> None:
    """The echo fiber re-sends what a short send left, then recvs into the same buffer."""
    pytest.importorskip("liburing")
    from rocket.bench.trampoline import echo as tramp_echo

    left, right = socket.socketpair()
    fd = right.detach()
    fiber = tramp_echo(fd)
    kind, op_fd, buf = next(fiber)
    assert (kind, op_fd, len(buf)) == ("recv", fd, 65536)
    buf[:11] = b"hello world"
    assert fiber.send(11) == ("send", fd, b"hello world")
    assert fiber.send(4) == ("send", fd, b"o world")  # 4 of 11 bytes went out
    assert fiber.send(7) == ("recv", fd, buf)  # the same bytearray, reused
    with pytest.raises(StopIteration):
        fiber.send(0)  # EOF: the fiber closes its fd and ends
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
    left.close()


def test_trampoline_imports_only_liburing_and_the_stdlib() -> None:
    """trampoline.py imports nothing of rocket: it is the ceiling, not the runtime."""
    source = Path(servers.__file__).with_name("trampoline.py").read_text()
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules - set(sys.stdlib_module_names) == {"liburing"}


_SHORT_SEND_DRIVER = """
import socket
from rocket.bench.trampoline import echo, run

def counting(fiber):
    short, value = 0, None
    while True:
        try:
            op = fiber.send(value)
        except StopIteration:
            break
        value = yield op
        if op[0] == "send" and 0 < value < len(op[2]):
            short += 1
    print(f"short {short}", flush=True)

def serve_one(listen_fd):
    fd = yield ("accept", listen_fd)
    sock = socket.socket(fileno=fd)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # sends of 64 KiB come up short
    sock.detach()
    yield ("spawn", counting(echo(fd)))

listener = socket.create_server(("127.0.0.1", 0))
print(f"ready {listener.getsockname()[1]}", flush=True)
run(serve_one(listener.fileno()))
"""


@needs_trampoline
def test_trampoline_echoes_every_byte_through_short_sends() -> None:
    """1 MiB through the trampoline's ring comes back intact, with short sends on the way."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SHORT_SEND_DRIVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        payload = os.urandom(1 << 20)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as client:

            def send_all() -> None:
                client.sendall(payload)
                client.shutdown(socket.SHUT_WR)

            sender = threading.Thread(target=send_all)
            sender.start()
            echoed = bytearray()
            while chunk := client.recv(65536):
                echoed += chunk
            sender.join()
        assert echoed == payload
        short = int(server.stdout.readline().split()[1])
        assert short > 0, "no short send happened: the test did not test it"
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_trampoline_is_unavailable_without_liburing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the liburing package the trampoline is skipped, and the reason says so."""
    monkeypatch.setitem(sys.modules, "liburing", None)  # import liburing -> ImportError
    assert "liburing package is not installed" in (servers.available("trampoline") or "")


def test_trampoline_is_unavailable_without_io_uring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where io_uring is refused (seccomp, io_uring_disabled), the trampoline says why it skips."""
    liburing = pytest.importorskip("liburing")

    def refuse(*_: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(liburing, "io_uring_queue_init", refuse)
    assert "io_uring is not available here" in (servers.available("trampoline") or "")


# ------------------------------------------------------------- statistics, order


def test_spread_is_median_and_min_max() -> None:
    """spread() gives the median (the mean of the middle two for an even count) and the range."""
    assert spread([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0)
    assert spread([10.0, 1.0, 2.0, 3.0]) == Spread(2.5, 1.0, 10.0)
    assert spread([5.0]) == Spread(5.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="at least once"):
        spread([])


def test_interleave_runs_every_server_once_per_repeat_in_rotating_order() -> None:
    """Each repeat runs every server once; the first one rotates, so none always goes first."""
    order = interleave(["a", "b", "c"], 4)
    assert order == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert interleave(["a", "b"], 1) == [["a", "b"]]
    assert interleave([], 2) == [[], []]


_LOGGING_SERVER = """
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()
listener = socket.create_server(("127.0.0.1", 0), backlog=64)
print(f"ready {listener.getsockname()[1]}", flush=True)

def serve(conn, n):
    while data := conn.recv(65536):
        conn.sendall(data)
    with lock:
        log.write(f"eof {n}\\n")

n = 0
while True:
    conn, _ = listener.accept()
    with lock:
        log.write(f"open {n}\\n")
    threading.Thread(target=serve, args=(conn, n), daemon=True).start()
    n += 1
"""


def test_warmup_uses_a_separate_set_of_connections(tmp_path: Path) -> None:
    """A run opens `clients` warm-up connections, closes them all, then measures on new ones."""
    log = tmp_path / "connections.log"
    cell = echo.run_cell(
        "logging",
        clients=3,
        size=32,
        warmup=0.2,
        duration=0.2,
        command=[sys.executable, "-c", _LOGGING_SERVER, str(log)],
    )
    events = log.read_text().split()
    opened = [int(n) for kind, n in zip(events[::2], events[1::2], strict=True) if kind == "open"]
    closed = {int(n) for kind, n in zip(events[::2], events[1::2], strict=True) if kind == "eof"}
    assert opened == list(range(6))  # two sets of three, never the same connection twice
    assert {0, 1, 2} <= closed  # the warm-up set was closed cleanly (EOF), not reset
    assert cell.warmup_requests_per_s > 0  # the warm-up set did carry load
    assert cell.requests_per_s > 0
    assert cell.errors == 0
