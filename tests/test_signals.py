"""Signals: SIGINT/SIGTERM shutdown of a real server process, signal(), SIGUSR1 dumps."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import rocket

Body = Generator[Any, Any, Any]
ROOT = Path(__file__).resolve().parent.parent

SERVER = '''
import os, signal, socket, sys
import rocket

log_path, engine, mode = sys.argv[1], sys.argv[2], sys.argv[3]


def log(line):
    """Append a line to the log, through rocket: cleanup after a cancel can do I/O."""
    fd = yield rocket.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    yield rocket.write(fd, line.encode() + b"\\n")
    yield rocket.close(fd)


def handler(conn):
    try:
        while True:
            data = yield rocket.recv(conn, 100)
            if not data:
                break
            yield from rocket.sendall(conn, data)
    finally:
        yield from log("handler cleanup")
        conn.close()


def stubborn():
    while True:
        try:
            yield rocket.sleep(10)
        except rocket.Cancelled:
            yield from log("stubborn ignored a cancel")


def spinner():
    while True:
        yield rocket.yield_now()


def main():
    server = socket.create_server(("127.0.0.1", 0))
    if mode == "stubborn":
        yield rocket.spawn(stubborn(), name="stubborn")
    if mode == "busy":
        yield rocket.spawn(spinner(), name="spinner")
    print(server.getsockname()[1], flush=True)
    try:
        while True:
            conn, _ = yield rocket.accept(server)
            yield rocket.spawn(handler(conn), name="handler")
    finally:
        yield from log("server cleanup")
        server.close()


rocket.run(main(), engine=engine, dump_signal=signal.SIGUSR1 if mode == "dump" else None)
'''


class Server:
    """A rocket echo server in a subprocess, with one client connected."""

    def __init__(self, tmp_path: Path, engine: str, mode: str = "plain") -> None:
        script = tmp_path / "server.py"
        script.write_text(SERVER)
        self.log = tmp_path / "cleanup.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.log), engine, mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        assert ready, "the server did not start"
        port = int(self.proc.stdout.readline())
        self.client = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.client.sendall(b"ping")
        assert self.client.recv(4) == b"ping"  # a handler fiber is running

    def stop(self, signum: int, timeout: float = 5.0) -> tuple[int, float, str]:
        """Send ``signum``; return (exit status, seconds until exit, stderr)."""
        start = time.monotonic()
        self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, time.monotonic() - start, err.decode()

    def cleanup_lines(self) -> list[str]:
        return sorted(self.log.read_text().splitlines()) if self.log.exists() else []

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def server_factory(tmp_path: Path, engine: str) -> Iterator[Any]:
    servers: list[Server] = []

    def make(mode: str = "plain") -> Server:
        server = Server(tmp_path, engine, mode)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_sigint_stops_server_promptly_after_cleanup(server_factory: Any) -> None:
    """SIGINT: every fiber's finally runs, run raises KeyboardInterrupt once, no fiber traceback."""
    server = server_factory()
    status, seconds, err = server.stop(signal.SIGINT)
    assert status == -signal.SIGINT  # KeyboardInterrupt, uncaught: Python exits by SIGINT
    assert seconds < 3
    assert server.cleanup_lines() == ["handler cleanup", "server cleanup"]
    assert err.count("KeyboardInterrupt") == 1
    assert "Cancelled" not in err
    assert "never joined" not in err


def test_sigterm_exits_143_after_cleanup(server_factory: Any) -> None:
    """SIGTERM: the same orderly shutdown, exit status 143 and nothing on stderr."""
    server = server_factory()
    status, seconds, err = server.stop(signal.SIGTERM)
    assert status == 143
    assert seconds < 3
    assert server.cleanup_lines() == ["handler cleanup", "server cleanup"]
    assert err == ""


def test_second_sigint_stops_a_fiber_that_ignores_cancel(server_factory: Any) -> None:
    """A fiber that swallows Cancelled keeps the process up; a second SIGINT ends it."""
    server = server_factory("stubborn")
    server.proc.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        server.proc.wait(timeout=0.5)
    status, seconds, err = server.stop(signal.SIGINT)
    assert status == -signal.SIGINT
    assert seconds < 3
    assert "stubborn ignored a cancel" in server.cleanup_lines()
    assert "KeyboardInterrupt" in err


def test_sigint_reaches_a_loop_kept_busy_by_runnable_fibers(server_factory: Any) -> None:
    """With a fiber always runnable (no kernel wait), SIGINT is still handled promptly."""
    server = server_factory("busy")
    status, seconds, _ = server.stop(signal.SIGINT)
    assert status == -signal.SIGINT
    assert seconds < 3
    assert "server cleanup" in server.cleanup_lines()


def test_sigusr1_dumps_the_fibers(server_factory: Any) -> None:
    """dump_signal=SIGUSR1 prints each fiber with its state and request; the server goes on."""
    server = server_factory("dump")
    time.sleep(0.05)  # let the handler get back to its recv
    server.proc.send_signal(signal.SIGUSR1)
    server.client.sendall(b"again")  # still serving after the dump
    assert server.client.recv(5) == b"again"
    status, _, err = server.stop(signal.SIGTERM)
    assert status == 143
    assert "rocket: 2 fibers" in err
    assert "main" in err
    assert "handler" in err
    assert "accept(fd=" in err
    assert "recv(fd=" in err or "send(fd=" in err  # (send: if it was still echoing)
    assert "blocked" in err


# ------------------------------------------------------- in this process


def test_fiber_waits_for_a_signal(engine: str) -> None:
    """yield rocket.signal(SIGUSR2) resumes when the process gets it, even mid-wait."""

    def waiter() -> Body:
        return (yield rocket.signal(signal.SIGUSR2))

    def main() -> Body:
        handle = yield rocket.spawn(waiter())
        yield rocket.yield_now()
        threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        return (yield rocket.join(handle))  # the loop sleeps in the kernel meanwhile

    before = signal.getsignal(signal.SIGUSR2)
    assert rocket.run(main(), engine=engine) == signal.SIGUSR2
    assert signal.getsignal(signal.SIGUSR2) is before  # restored


def test_signal_arriving_between_waits_is_kept(engine: str) -> None:
    """A signal that arrives while nobody waits is delivered to the next wait at once."""

    def main() -> Body:
        got: list[int] = []
        waiter = yield rocket.spawn(_wait_signal(signal.SIGUSR2))
        yield rocket.yield_now()
        os.kill(os.getpid(), signal.SIGUSR2)
        got.append((yield rocket.join(waiter)))
        os.kill(os.getpid(), signal.SIGUSR2)  # nobody waits now
        yield rocket.sleep(0.01)
        got.append((yield rocket.signal(signal.SIGUSR2)))  # returns at once
        return got

    assert rocket.run(main(), engine=engine) == [signal.SIGUSR2, signal.SIGUSR2]


def _wait_signal(signum: int) -> Body:
    return (yield rocket.signal(signum))


def test_waiting_for_a_signal_is_not_a_deadlock_and_can_be_cancelled(engine: str) -> None:
    """A fiber waiting for a signal keeps the loop waiting; fail_after can cut it short."""

    def main() -> Body:
        with rocket.move_on_after(0.02) as scope:
            yield rocket.signal(signal.SIGUSR2)
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is True


def test_handlers_and_wakeup_fd_are_restored(engine: str) -> None:
    """After run, SIGINT/SIGTERM handlers and the wakeup fd are what they were."""

    def main() -> Body:
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        yield rocket.yield_now()

    rocket.run(main(), engine=engine)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1


def test_a_programs_own_sigint_handler_is_left_alone(engine: str) -> None:
    """If the program installed a SIGINT handler, rocket does not replace it."""
    calls: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        calls.append(signum)

    def main() -> Body:
        assert signal.getsignal(signal.SIGINT) is mine
        os.kill(os.getpid(), signal.SIGINT)
        yield rocket.sleep(0.01)
        return "still running"

    old = signal.signal(signal.SIGINT, mine)
    try:
        assert rocket.run(main(), engine=engine) == "still running"
    finally:
        signal.signal(signal.SIGINT, old)
    assert calls == [signal.SIGINT]


def test_signal_outside_main_thread_is_refused(engine: str) -> None:
    """In a non-main thread, rocket.signal raises RuntimeError and dump_signal is refused."""
    results: list[Any] = []

    def main() -> Body:
        try:
            yield rocket.signal(signal.SIGUSR2)
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    def thread() -> None:
        results.append(rocket.run(main(), engine=engine))
        try:
            rocket.run(main(), engine=engine, dump_signal=signal.SIGUSR1)
        except RuntimeError as exc:
            results.append(str(exc))

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join(10)
    assert "main thread" in results[0]
    assert "main thread" in results[1]


def test_bad_signal_numbers() -> None:
    """signal() refuses non-ints, unknown numbers and uncatchable signals."""
    with pytest.raises(TypeError, match="must be an int"):
        rocket.signal("HUP")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="can be caught"):
        rocket.signal(signal.SIGKILL)
    with pytest.raises(ValueError, match="can be caught"):
        rocket.signal(10_000)


def test_fiber_waiting_for_sigint_gets_it_instead_of_a_shutdown(engine: str) -> None:
    """While a fiber waits for SIGINT, Ctrl-C goes to it and nothing is cancelled."""

    def main() -> Body:
        waiter = yield rocket.spawn(_wait_signal(signal.SIGINT))
        yield rocket.yield_now()
        os.kill(os.getpid(), signal.SIGINT)
        got = yield rocket.join(waiter)
        yield rocket.sleep(0.01)  # main was not cancelled
        return got

    assert rocket.run(main(), engine=engine) == signal.SIGINT


def test_runs_leave_no_fd_behind(engine: str) -> None:
    """The wakeup pipe, the workers' eventfd and the engine are all closed after each run."""

    def main() -> Body:
        yield rocket.to_thread(int)
        yield rocket.timeout(1, rocket.sleep(0.001))

    rocket.run(main(), engine=engine)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(10):
        rocket.run(main(), engine=engine)
    assert len(os.listdir("/proc/self/fd")) == before
