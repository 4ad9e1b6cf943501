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


def test_echo_server(engine: str) -> None:
    """The echo server echoes for several clients at once and stops on Ctrl-C."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", str(port), "--engine", engine],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
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
