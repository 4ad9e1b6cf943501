"""run_workers: SO_REUSEPORT workers under a supervisor (restarts, graceful stop, give-up)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import rocket
from rocket import workers

Body = Generator[Any, Any, Any]
ROOT = Path(__file__).resolve().parent.parent

#: The supervised program. argv: engine, port, mode, workers, grace.
#: Every connection starts with a greeting "<worker index> <pid>\n".
SERVER = """
import os, sys
import rocket

engine, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count, grace = int(sys.argv[4]), float(sys.argv[5])


def echo(stream):
    info = rocket.worker_info()
    yield from stream.write(f"{info.index} {os.getpid()}\\n".encode())
    while not info.stopping.is_set():  # a request boundary: stop here when asked
        line = yield from stream.readline()
        if not line:
            return
        yield from stream.write(line)


def hold(stream):
    # One request per connection, still in flight when the stop comes.
    info = rocket.worker_info()
    yield from stream.write(f"{info.index} {os.getpid()}\\n".encode())
    line = yield from stream.readline()
    yield from stream.write(b"ack\\n")
    yield from info.stopping.wait()
    yield rocket.sleep(0.05)  # the request's last bit of work, after the stop began
    yield from stream.write(line * 100)


def stubborn(stream):
    yield from stream.write(f"{rocket.worker_info().index} {os.getpid()}\\n".encode())
    while True:
        try:
            yield rocket.sleep(60)
        except rocket.Cancelled:
            pass  # a handler that will not stop


def main():
    if mode == "raise":
        raise ValueError("no config file here")
    handler = {"hold": hold, "stubborn": stubborn}.get(mode, echo)
    server = yield from rocket.serve_tcp(handler, "127.0.0.1", port, reuse_port=True)
    yield from server.serve_forever()


def ready():
    print("READY", flush=True)


rocket.run_workers(main, count, grace=grace, engine=engine, ready=ready)
print("SUPERVISOR DONE", flush=True)
"""


@pytest.fixture
def port() -> Iterator[int]:
    """A port kept for the test: bound with SO_REUSEPORT, never listening (no clients land)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def _start(engine: str, port: int, mode: str, count: int = 2, grace: float = 5.0) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", SERVER, engine, str(port), mode, str(count), str(grace)]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _wait_ready(proc: Any, timeout: float = 15.0) -> None:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "READY":
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the supervisor never said READY (got {line!r}); stderr:\n{err}")


def _stop(proc: Any) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def _kill_supervisor(proc: Any) -> None:
    """SIGKILL the supervisor alone (its workers share its stdout: do not read to EOF)."""
    proc.kill()
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()


def _greeting(stream: rocket.Stream) -> Body:
    line = yield from stream.readline()
    index, pid = line.split()
    return int(index), int(pid)


def test_two_workers_share_a_thousand_connections(engine: str, port: int) -> None:
    """1,000 connections spread over 2 workers (each at least a quarter); every byte echoed."""
    proc = _start(engine, port, "echo")
    try:
        _wait_ready(proc)
        served: dict[int, int] = {0: 0, 1: 0}

        def client(n: int) -> Body:
            stream = yield from rocket.open_connection("127.0.0.1", port)
            with stream:
                index, _ = yield from _greeting(stream)
                for round_trip in range(3):
                    line = f"{n}:{round_trip}:".encode() + bytes([65 + n % 26]) * (n % 200) + b"\n"
                    yield from stream.write(line)
                    assert (yield from stream.readline()) == line
            served[index] += 1

        def main() -> Body:
            yield rocket.gather(*(client(n) for n in range(1000)))

        rocket.run(main(), engine=engine)
        assert sum(served.values()) == 1000
        assert min(served.values()) >= 250, served
    finally:
        code, err = _stop(proc)
    assert code == 0, err


def test_kill_9_of_a_worker_under_load(engine: str, port: int) -> None:
    """A worker killed with SIGKILL is restarted; the other never stops serving."""
    proc = _start(engine, port, "echo")
    try:
        _wait_ready(proc)
        victim: list[int] = []  # [index, pid] of the killed worker
        survivor_trips = [0, 0]  # round trips on the survivor's connections: before, after
        restarted = [0]  # round trips served by the victim's replacement

        def connection(stop: rocket.Event) -> Body:
            while not stop.is_set():
                pid = 0
                try:
                    stream = yield from rocket.open_connection("127.0.0.1", port)
                    with stream:
                        index, pid = yield from _greeting(stream)
                        for _ in range(20):  # then a new connection: it may land anywhere
                            line = f"{index} {pid} {'x' * 50}\n".encode()
                            yield from stream.write(line)
                            reply = yield from stream.readline()
                            if reply != line:  # the end of stream: the worker died
                                assert reply == b"", reply
                                raise ConnectionResetError
                            if not victim:
                                survivor_trips[0] += index == 1
                            elif index == 1:
                                survivor_trips[1] += 1
                            elif pid != victim[1]:
                                restarted[0] += 1
                            yield rocket.yield_now()
                except (ConnectionError, rocket.IncompleteReadError, ValueError):
                    # Only the victim's connections (or one caught in its backlog) may break.
                    assert victim, "a connection broke before any worker was killed"
                    assert pid in (0, victim[1]), "a connection to the survivor broke"

        def main() -> Body:
            stop = rocket.Event()
            pids: dict[int, int] = {}
            streams = []
            while len(pids) < 2:  # find both workers' pids
                stream = yield from rocket.open_connection("127.0.0.1", port)
                index, pid = yield from _greeting(stream)
                pids[index] = pid
                streams.append(stream)
            for stream in streams:
                stream.close()
            fibers = []
            for _ in range(20):
                fibers.append((yield rocket.spawn(connection(stop))))
            with rocket.fail_after(20):
                while survivor_trips[0] < 200:
                    yield rocket.sleep(0.01)
                victim.extend([0, pids[0]])
                os.kill(pids[0], signal.SIGKILL)
                while restarted[0] < 50 or survivor_trips[1] < 200:
                    yield rocket.sleep(0.01)
            stop.set()
            for fiber in fibers:
                yield rocket.join(fiber)

        rocket.run(main(), engine=engine)
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "worker 0 was killed by SIGKILL; restarting it" in err


def test_sigterm_under_load_finishes_in_flight_requests(engine: str, port: int) -> None:
    """SIGTERM: stop accepting, every in-flight request answered in full, exit 0 within grace."""
    grace = 5.0
    proc = _start(engine, port, "hold", grace=grace)
    try:
        _wait_ready(proc)
        complete = [0]
        sent_signal = rocket.Event()
        acked = [0]

        def client(n: int) -> Body:
            stream = yield from rocket.open_connection("127.0.0.1", port)
            with stream:
                yield from _greeting(stream)
                line = f"request {n}\n".encode()
                yield from stream.write(line)
                assert (yield from stream.readline()) == b"ack\n"  # in flight now
                acked[0] += 1
                yield from sent_signal.wait()
                response = yield from stream.read_exactly(len(line) * 100)
                assert response == line * 100
                assert (yield from stream.read(1)) == b""  # then the server closes
                complete[0] += 1

        def main() -> Body:
            fibers = []
            for n in range(200):
                fibers.append((yield rocket.spawn(client(n))))
            while acked[0] < 200:
                yield rocket.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            started[0] = time.monotonic()
            sent_signal.set()
            for fiber in fibers:
                yield rocket.join(fiber)

        started = [0.0]
        rocket.run(main(), engine=engine)
        _, err = proc.communicate(timeout=grace + 5)
        elapsed = time.monotonic() - started[0]
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    assert complete[0] == 200
    assert proc.returncode == 0, err
    assert elapsed < grace, elapsed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_main_raising_at_start_gives_up_with_its_traceback(engine: str, port: int) -> None:
    """A main that raises at start: bounded restarts, then exit 1 with the worker's traceback."""
    proc = _start(engine, port, "raise")
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 1
    assert "rocket.workers.WorkersFailed: run_workers(): worker" in err
    assert f"failed {workers.MAX_FAILED_STARTS} times in a row" in err
    assert err.rstrip().endswith("ValueError: no config file here")
    starts = err.count("before it was ready;")
    assert workers.MAX_FAILED_STARTS <= starts <= 2 * workers.MAX_FAILED_STARTS, err


def test_gives_up_in_process_with_the_traceback_attribute(engine: str) -> None:
    """WorkersFailed carries the failing worker's traceback, and says how often it failed."""

    def main() -> Body:
        yield rocket.sleep(0)
        raise KeyError("missing")

    with pytest.raises(workers.WorkersFailed) as caught:
        rocket.run_workers(main, 1, engine=engine, pin=False)
    assert "KeyError: 'missing'" in caught.value.traceback
    assert f"failed {workers.MAX_FAILED_STARTS} times in a row" in str(caught.value)


def test_workers_whose_main_returns_end_the_run(engine: str) -> None:
    """Workers that return are not restarted; run_workers returns None once all have."""

    def main() -> Body:
        info = rocket.worker_info()
        assert info.count == 3
        assert 0 <= info.index < 3
        yield rocket.sleep(0)

    rocket.run_workers(main, 3, engine=engine)  # returns (None) only if every worker did


def test_threads_mode_runs_one_executor_per_thread(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mode='threads' (forced on here) runs main in each thread, with its own worker_info."""
    monkeypatch.setattr(workers, "free_threaded", lambda: True)
    seen: list[tuple[int, int]] = []

    def main() -> Body:
        yield rocket.sleep(0)
        seen.append((rocket.worker_info().index, rocket.worker_info().count))

    rocket.run_workers(main, 2, mode="threads", engine=engine, pin=False)
    assert sorted(seen) == [(0, 2), (1, 2)]


def _idle() -> Body:
    yield rocket.sleep(0)


def test_threads_mode_says_why_it_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """mode='threads' with the GIL: a RuntimeError that says a free-threaded build is needed."""
    monkeypatch.setattr(workers, "free_threaded", lambda: False)
    with pytest.raises(RuntimeError, match=r"free-threaded CPython.*mode='processes'"):
        rocket.run_workers(_idle, 2, mode="threads")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"main": "main_called"}, TypeError, r"the function itself \(run_workers\(main\)\)"),
        ({"workers": 0}, ValueError, "'workers' must be an int >= 1"),
        ({"mode": "fork"}, ValueError, "'processes' or 'threads'"),
        ({"grace": -1}, ValueError, "'grace' must be seconds >= 0"),
        ({"engine": object()}, TypeError, "each worker creates its own engine"),
    ],
)
def test_bad_arguments_say_what_to_write(kwargs: dict[str, Any], error: type, match: str) -> None:
    """A bad argument to run_workers raises before any worker starts, saying what to write."""

    def main() -> Body:
        yield rocket.sleep(0)

    if kwargs.get("main") == "main_called":
        body = main()
        kwargs["main"] = body
    arguments = {"main": main, **kwargs}
    with pytest.raises(error, match=match):
        rocket.run_workers(**arguments)
    if isinstance(arguments["main"], Generator):
        arguments["main"].close()


def test_worker_info_outside_run_workers_is_one_of_one(engine: str) -> None:
    """Under plain rocket.run a program is worker 0 of 1, not stopping; worker_ready is a no-op."""

    def main() -> Body:
        info = rocket.worker_info()
        rocket.worker_ready()
        yield rocket.sleep(0)
        return info.index, info.count, info.stopping.is_set()

    assert rocket.run(main(), engine=engine) == (0, 1, False)


def test_reuse_port_lets_two_servers_share_a_port(engine: str) -> None:
    """serve_tcp(reuse_port=True) twice on one port works; without it the second bind fails."""

    def handler(stream: rocket.Stream) -> Body:
        yield from stream.write(b"hello\n")

    def main() -> Body:
        first = yield from rocket.serve_tcp(handler, "127.0.0.1", 0, reuse_port=True)
        second = yield from rocket.serve_tcp(handler, "127.0.0.1", first.port, reuse_port=True)
        with pytest.raises(OSError) as caught:
            yield from rocket.serve_tcp(handler, "127.0.0.1", first.port)
        assert caught.value.errno == 98  # EADDRINUSE
        stream = yield from rocket.open_connection("127.0.0.1", first.port)
        with stream:
            assert (yield from stream.readline()) == b"hello\n"
        first.close()
        second.close()

    rocket.run(main(), engine=engine)


def test_reuse_port_must_be_a_bool() -> None:
    """serve_tcp(reuse_port=1) is a TypeError that says to write True or False."""
    with pytest.raises(TypeError, match="'reuse_port' must be True or False"):
        rocket.serve_tcp(lambda stream: iter(()), "127.0.0.1", 0, reuse_port=1)  # type: ignore[arg-type]


def test_stop_accepting_serves_the_connections_it_has(engine: str) -> None:
    """stop_accepting: the listener closes, a connected client is served to the end."""

    def handler(stream: rocket.Stream) -> Body:
        while line := (yield from stream.readline()):
            yield from stream.write(line)

    def main() -> Body:
        server = yield from rocket.serve_tcp(handler, "127.0.0.1", 0)
        stream = yield from rocket.open_connection("127.0.0.1", server.port)
        yield from stream.write(b"one\n")
        assert (yield from stream.readline()) == b"one\n"
        server.stop_accepting()
        yield from stream.write(b"two\n")
        assert (yield from stream.readline()) == b"two\n"
        waiter = yield rocket.spawn(server.serve_forever())
        stream.close()
        yield rocket.join(waiter)  # returns once the last connection ended
        with pytest.raises(ConnectionRefusedError):
            yield from rocket.open_connection("127.0.0.1", server.port)

    rocket.run(main(), engine=engine)


def _connect_and_greet(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert sock.makefile("rb").readline().split()[0] in (b"0", b"1")
    return sock


def test_sigint_stops_gracefully_like_sigterm(engine: str, port: int) -> None:
    """SIGINT to the supervisor: the same graceful stop, exit status 0."""
    proc = _start(engine, port, "echo")
    _wait_ready(proc)
    with _connect_and_greet(port):
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


def test_a_worker_that_will_not_stop_is_killed_after_grace(engine: str, port: int) -> None:
    """A handler that ignores the stop: killed when the grace period ends, exit 1 saying so."""
    proc = _start(engine, port, "stubborn", grace=1.0)
    _wait_ready(proc)
    with _connect_and_greet(port):
        started = time.monotonic()
        _, err = _stop(proc)
    assert 1.0 <= time.monotonic() - started < 5
    assert proc.returncode == 1
    assert "did not stop within the grace period of 1 s and were killed" in err


def test_a_second_signal_kills_the_workers_at_once(engine: str, port: int) -> None:
    """SIGTERM then SIGINT: the workers are killed without waiting out the grace period."""
    proc = _start(engine, port, "stubborn", grace=60.0)
    _wait_ready(proc)
    with _connect_and_greet(port) as sock:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
        assert sock.recv(1) == b""  # its worker is gone
    assert time.monotonic() - started < 10
    # What the later of the two means, as with rocket.run (the kernel may deliver
    # SIGINT first when both are pending): KeyboardInterrupt, or SystemExit(143).
    assert proc.returncode in (-signal.SIGINT, 143)


def test_bench_workers_grid(tmp_path: Path) -> None:
    """python -m rocket bench --workers 2: a row for 1 and 2 workers, every echo checked."""
    out = tmp_path / "figures.json"
    argv = ["--workers", "2", "--clients", "4", "--sizes", "64", "--duration", "0.3"]
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "bench", *argv, "--warmup", "0.2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["workers"]
    assert [row["workers"] for row in rows] == [1, 2]
    for row in rows:
        assert row["errors"] == 0
        assert row["requests_per_s"] > 0
        assert row["server_cpu_us_per_request"] > 0


def test_bench_workers_refuses_a_bad_count() -> None:
    """--workers 0 is a usage error that says what to give."""
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "bench", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "give N (runs 1..N workers) or a list such as 1,2,4" in result.stderr


def test_workers_stop_when_the_supervisor_is_killed(engine: str, port: int) -> None:
    """kill -9 of the supervisor: its workers see the stop pipe close and drain away."""
    proc = _start(engine, port, "echo", grace=1.0)
    _wait_ready(proc)
    with _connect_and_greet(port) as sock:
        _kill_supervisor(proc)
        sock.settimeout(10)
        assert sock.recv(1) == b""  # the worker stopped (cancelled after its drain) and closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_a_worker_that_keeps_crashing_after_ready_backs_off(
    engine: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A worker that fails after it was ready is restarted, the pause doubling each time."""
    starts = tmp_path / "starts"

    def main() -> Body:
        with starts.open("a") as file:
            file.write("start\n")
        rocket.worker_ready()
        yield rocket.sleep(0)
        if len(starts.read_text().splitlines()) < 4:
            raise OSError("the database went away")

    rocket.run_workers(main, 1, engine=engine, pin=False)
    err = capfd.readouterr().err
    assert len(starts.read_text().splitlines()) == 4
    pauses = [line.rsplit(" in ", 1)[1] for line in err.splitlines() if "restarting it" in line]
    assert pauses == ["0.1 s", "0.2 s", "0.4 s"]
    assert "before it was ready" not in err  # each of them had started


@pytest.mark.parametrize("mode", ["processes", "threads"])
def test_ready_is_called_once_every_worker_listens(
    engine: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ready() runs when all workers serve; a SIGTERM sent from it stops them all cleanly."""
    monkeypatch.setattr(workers, "free_threaded", lambda: True)
    calls = []

    def handler(stream: rocket.Stream) -> Body:
        yield from stream.write(b"hi\n")

    def main() -> Body:
        server = yield from rocket.serve_tcp(handler, "127.0.0.1", 0)
        yield from server.serve_forever()

    def ready() -> None:
        calls.append(True)
        os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's handler takes it

    rocket.run_workers(main, 2, mode=mode, engine=engine, pin=False, ready=ready)
    assert calls == [True]


def test_an_orphaned_worker_that_will_not_stop_exits_after_grace(engine: str, port: int) -> None:
    """kill -9 of the supervisor: a worker whose handler ignores the stop still exits at grace."""
    proc = _start(engine, port, "stubborn", grace=1.0)
    _wait_ready(proc)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    _, pid = sock.makefile("rb").readline().split()
    try:
        _kill_supervisor(proc)
        assert sock.recv(1) == b""  # the worker process ended, which closed the connection
    finally:
        sock.close()
        try:
            os.kill(int(pid), signal.SIGKILL)  # (if the test failed: leave no orphan behind)
        except ProcessLookupError:
            pass
