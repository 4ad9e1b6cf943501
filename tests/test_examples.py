"""Every example runs, on every engine, and prints what its docstring promises."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, engine: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ROCKET_ENGINE": engine}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_odd_even(engine: str) -> None:
    """Fibers and threads both print 0..9 in order."""
    result = run_example("odd_even.py", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "fibers:  0 1 2 3 4 5 6 7 8 9",
        "threads: 0 1 2 3 4 5 6 7 8 9",
    ]


def test_cat(engine: str, tmp_path: Path) -> None:
    """cat prints the files in order, and reports a missing file clearly."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"first\n")
    second.write_bytes(b"second\n" * 20000)  # more than one read
    result = run_example("cat.py", str(first), str(second), engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "first\n" + "second\n" * 20000
    missing = run_example("cat.py", str(tmp_path / "missing"), engine=engine)
    assert missing.returncode == 1
    assert "No such file or directory: open(path=" in missing.stderr


def _start_echo_server(engine: str) -> tuple[subprocess.Popen[str], int, str]:
    """examples/echo_server.py on a free port; returns (process, port, its banner line)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", str(port), "--engine", engine],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, port, server.stdout.readline()


def test_echo_server(engine: str) -> None:
    """The echo server echoes for several clients at once and stops on Ctrl-C."""
    server, port, banner = _start_echo_server(engine)
    try:
        assert f"echo server on 127.0.0.1:{port} ({engine} engine)" in banner
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        for round_ in range(3):
            for i, client in enumerate(clients):
                client.sendall(f"client {i} round {round_}".encode())
            for i, client in enumerate(clients):
                expected = f"client {i} round {round_}".encode()
                got = b""
                while len(got) < len(expected):
                    got += client.recv(100)
                assert got == expected
        for client in clients:
            client.close()
        time.sleep(0.1)
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=10)
        assert "bye" in out
        assert server.returncode == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_pipeline(engine: str) -> None:
    """The pipeline hashes every item through a Queue and a TaskGroup, then times out twice."""
    result = run_example("pipeline.py", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "hashed 12 items with 3 workers",
        "item 0 -> f5201cf5",
        "slow block cut short: True",
        "timeout: sleep(10) did not complete within 0.05 s",
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_teaching_docstring(name: str) -> None:
    """Each example starts with a docstring that explains its fiber concept."""
    source = (EXAMPLES / name).read_text()
    assert source.startswith('"""'), name
    docstring = source.split('"""')[1]
    assert len(docstring.splitlines()) >= 5, f"{name}: the docstring should teach something"
    assert "Run it:" in docstring, f"{name}: say how to run it"


def test_fibers_from_scratch() -> None:
    """The 40-line trampoline interleaves two fibers by their fake I/O times."""
    result = run_example("fibers_from_scratch.py", engine="auto")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert lines.index("B: got <b1.txt>") < lines.index("A: got <a1.txt>")  # B's read is quicker
    assert lines[-1] == "A: got <a2.txt>"
    assert "    blocked table: {1: 'A', 2: 'B'}" in result.stdout


def test_trace_files(engine: str) -> None:
    """With fibers both files are opened before either is read; blocking calls go one by one."""
    result = run_example("trace_files.py", engine=engine)
    assert result.returncode == 0, result.stderr
    fibers, blocking = result.stdout.split("== with blocking calls ==")
    steps = [line for line in fibers.splitlines() if line.startswith(">>>")]
    assert steps[:2] == [">>> first: open", ">>> second: open"]
    assert [line for line in blocking.splitlines() if line.startswith(">>>")] == [
        f">>> {name}: {op}" for name in ("first", "second") for op in ("open", "read", "close")
    ]
    assert "blocked: {1: 2 first, 2: 3 second}" in result.stdout
    assert result.stdout.count("results: [b'contents of a\\n', b'contents of b\\n']") == 2


def test_echo_client_against_echo_server(engine: str) -> None:
    """echo_client's fibers each get their own lines back from echo_server."""
    server, port, _ = _start_echo_server(engine)  # the banner: the server is listening
    try:
        result = run_example(
            "echo_client.py",
            "--port",
            str(port),
            "--clients",
            "3",
            "--messages",
            "2",
            engine=engine,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"client {n} got back: client {n} message 0, client {n} message 1" for n in range(3)
        ]
    finally:
        server.kill()
        server.wait()


def test_async_await(engine: str) -> None:
    """The async def echo server answers three concurrent async clients."""
    result = run_example("async_await.py", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"hello from client {n}" for n in range(3)]


def test_timeouts_and_cancellation(engine: str) -> None:
    """cancel, fail_after and move_on_after behave as the example narrates."""
    result = run_example("timeouts_and_cancellation.py", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "job: started, sleeping 60 s",
        "job: cancelled while sleeping",
        "job: cleanup done",
        "main: joining the job raised Cancelled (cancelled=True)",
        "main: fail_after(0.05) raised TimeoutError",
        "main: move_on_after(0.05) left the block, timed_out=True",
        "main: a quick block under move_on_after(5), timed_out=False",
    ]


def test_file_copy(engine: str, tmp_path: Path) -> None:
    """file_copy's demo copies 8 MiB exactly; given paths, it copies those."""
    result = run_example("file_copy.py", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "copied 8400953 bytes with 4 reads in flight; checksums match: True"
    )
    source, dest = tmp_path / "in", tmp_path / "out"
    source.write_bytes(bytes(range(256)) * 3000)
    result = run_example("file_copy.py", str(source), str(dest), engine=engine)
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == source.read_bytes()


def test_chat_server_demo(engine: str) -> None:
    """Broadcasts reach every member in order; leaving is announced and cleaned up."""
    result = run_example("chat_server.py", "--demo", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "alice heard: * alice joined | * bob joined | alice: hi all | * bob left",
        "bob heard: * bob joined | alice: hi all",
        "members left in the room: []",
    ]


def test_http_fetch(engine: str) -> None:
    """Fetches overlap; the slow URL times out alone and the total stays short."""
    result = run_example("http_fetch.py", engine=engine)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "http://demo/: 200, 16 bytes (fast)",
        "http://demo/data: 200, 100000 bytes (fast)",
        "http://demo/missing: 404, 0 bytes (fast)",
        "http://demo/slow: timed out after 1 s",
        "all done in under 1.5 s: True",
    ]
