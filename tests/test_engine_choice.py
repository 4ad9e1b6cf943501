"""Choosing an engine: auto falls back only where io_uring is unavailable, and says why."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import rocket
from rocket.engines import auto_choice, create_engine


def _io_uring_works() -> bool:
    try:
        create_engine("io_uring").close()
    except (rocket.EngineUnavailable, OSError):
        return False
    return True


pytestmark = pytest.mark.skipif(not _io_uring_works(), reason="io_uring does not work here")


def _refuse(code: int):  # type: ignore[no-untyped-def]
    def ring(entries: int) -> None:
        raise OSError(code, os.strerror(code))

    return ring


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EPERM, "seccomp"),
        (errno.EACCES, "seccomp"),
        (errno.ENOSYS, "ENOSYS"),
    ],
)
def test_refused_setup_falls_back_and_explicit_request_explains(
    monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    """EPERM/EACCES/ENOSYS from io_uring_setup: auto uses selector, io_uring says why."""
    from rocket.engines import _liburing

    monkeypatch.setattr(_liburing, "Ring", _refuse(code))
    engine = create_engine("auto")
    try:
        assert engine.name == "selector"
    finally:
        engine.close()
    with pytest.raises(rocket.EngineUnavailable, match=words) as info:
        create_engine("io_uring")
    assert "engine='selector'" in str(info.value)


def test_io_uring_disabled_sysctl(monkeypatch: pytest.MonkeyPatch) -> None:
    """io_uring_disabled=2 is reported by name, and auto falls back."""
    from rocket.engines import uring

    monkeypatch.setattr(uring, "io_uring_disabled", lambda: 2)
    assert auto_choice()[0] == "selector"
    with pytest.raises(rocket.EngineUnavailable, match="io_uring_disabled is 2"):
        create_engine("io_uring")


def test_missing_opcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without an operation rocket needs: auto falls back, the message names it."""
    from rocket.engines import uring

    monkeypatch.setattr(uring, "missing_ops", lambda: ["IORING_OP_SHUTDOWN"])
    engine = create_engine("auto")
    try:
        assert engine.name == "selector"
    finally:
        engine.close()
    with pytest.raises(rocket.EngineUnavailable, match="lacks IORING_OP_SHUTDOWN"):
        create_engine("io_uring")


def test_out_of_locked_memory_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOMEM is a real error, not "unavailable": it names RLIMIT_MEMLOCK, even for auto."""
    from rocket.engines import _liburing

    monkeypatch.setattr(_liburing, "Ring", _refuse(errno.ENOMEM))
    for name in ("io_uring", "auto"):
        with pytest.raises(OSError, match="RLIMIT_MEMLOCK") as info:
            create_engine(name)
        assert not isinstance(info.value, rocket.EngineUnavailable)


def test_environment_variable_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """ROCKET_ENGINE chooses the engine that "auto" means."""
    monkeypatch.setenv("ROCKET_ENGINE", "selector")
    engine = create_engine("auto")
    try:
        assert engine.name == "selector"
    finally:
        engine.close()
    monkeypatch.setenv("ROCKET_ENGINE", "bogus")
    with pytest.raises(ValueError, match="auto, io_uring, selector"):
        create_engine("auto")


_WITHOUT_LIBURING = """
import socket, sys
sys.modules["liburing"] = None  # as if the package were not installed
import rocket
from rocket.engines import create_engine

def main():
    left, right = socket.socketpair()
    yield from rocket.sendall(left, b"no liburing needed")
    data = yield rocket.recv(right)
    left.close(); right.close()
    return data

print(create_engine("auto").name)
print(rocket.run(main()).decode())
try:
    create_engine("io_uring")
except rocket.EngineUnavailable as exc:
    print("explicit:", exc)
"""


def test_rocket_works_without_liburing() -> None:
    """With liburing unimportable, rocket imports, auto picks selector, sockets work."""
    env = {k: v for k, v in os.environ.items() if k != "ROCKET_ENGINE"}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_LIBURING],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "selector"
    assert lines[1] == "no liburing needed"
    assert "'liburing' package cannot be imported" in lines[2]
    assert "pip install liburing" in lines[2]


def test_info_command() -> None:
    """python -m rocket info names the kernel, the auto choice and the probe."""
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "info"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"kernel:            Linux {os.uname().release}" in out
    assert "auto chooses:      io_uring" in out
    assert "IORING_OP_RECV               yes" in out
