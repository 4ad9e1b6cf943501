"""Choosing an engine: auto falls back only where io_uring is unavailable, and says why."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import rocket
from rocket.engines import auto_choice, available_engines, create_engine


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
    from rocket.engines import _uring_setup as uring

    monkeypatch.setattr(uring, "io_uring_disabled", lambda: 2)
    assert auto_choice()[0] == "selector"
    with pytest.raises(rocket.EngineUnavailable, match="io_uring_disabled is 2"):
        create_engine("io_uring")


def test_missing_opcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without an operation rocket needs: auto falls back, the message names it."""
    from rocket.engines import _uring_setup as uring

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


def _refused(*args: object) -> None:
    raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))


def test_refused_io_uring_enter_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """io_uring_setup works but io_uring_enter is refused: auto uses selector, io_uring says why."""
    from rocket.engines import _liburing

    monkeypatch.setattr(_liburing.Ring, "submit", _refused)
    engine = create_engine("auto")
    try:
        assert engine.name == "selector"
    finally:
        engine.close()
    with pytest.raises(rocket.EngineUnavailable, match="io_uring_enter was refused") as info:
        create_engine("io_uring")
    assert "engine='selector'" in str(info.value)
    choice, why = auto_choice()
    assert choice == "selector"
    assert "io_uring_enter" in why


def test_refused_io_uring_register_falls_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The opcode probe (io_uring_register) fails: auto uses selector, and info still reports."""
    from rocket import info
    from rocket.engines import _liburing
    from rocket.engines import _uring_setup as uring

    def probe_fails() -> dict[str, bool]:
        raise RuntimeError("Linux kernel version does not support `probe()`")  # the package's

    monkeypatch.setattr(uring, "_probe_cache", None)
    monkeypatch.setattr(_liburing, "probe_ops", probe_fails)
    engine = create_engine("auto")
    try:
        assert engine.name == "selector"
    finally:
        engine.close()
    with pytest.raises(rocket.EngineUnavailable, match="io_uring_register"):
        create_engine("io_uring")
    assert info.main([]) == 0
    out = capsys.readouterr().out
    assert "auto chooses:      selector" in out
    assert "the probe failed" in out


_SECCOMP = r"""
import ctypes, errno, struct, subprocess, sys

NUMBERS = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427}


def block(names):
    # A classic BPF seccomp filter: EPERM for these system calls, allow the rest.
    nrs = [NUMBERS[name] for name in names]
    code = [(0x20, 0, 0, 0)]  # load the system call number
    code += [(0x15, len(nrs) - i, 0, nr) for i, nr in enumerate(nrs)]  # jump if equal
    code += [(0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x00050000 | errno.EPERM)]
    program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *c) for c in code))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    prog = Prog(len(code), ctypes.addressof(program))
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
        print("no seccomp:", ctypes.get_errno())
        sys.exit(0)


block(sys.argv[1:])
import rocket
from rocket.engines import create_engine


def main():
    yield rocket.sleep(0.001)
    return "ran"


print(create_engine("auto").name)
print(rocket.run(main()))
info = subprocess.run([sys.executable, "-m", "rocket", "info"], capture_output=True, text=True)
print("info exit", info.returncode, repr(info.stderr[-300:]))
print([line for line in info.stdout.splitlines() if "auto chooses" in line])
"""


@pytest.mark.skipif(
    os.uname().machine not in ("x86_64", "aarch64"), reason="system call numbers for these only"
)
@pytest.mark.parametrize(
    "blocked",
    [
        ("io_uring_enter",),
        ("io_uring_register",),
        ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    ],
)
def test_real_seccomp_filters(blocked: tuple[str, ...]) -> None:
    """Under a real seccomp filter blocking io_uring calls, auto runs on selector and info works."""
    env = {k: v for k, v in os.environ.items() if k != "ROCKET_ENGINE"}
    result = subprocess.run(
        [sys.executable, "-c", _SECCOMP, *blocked],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if lines[0].startswith("no seccomp"):
        pytest.skip(f"seccomp filters cannot be installed here ({lines[0]})")
    assert lines == [
        "selector",
        "ran",
        "info exit 0 ''",
        "['auto chooses:      selector']",
    ], result.stdout + result.stderr


def test_available_engines_lists_what_works_here_io_uring_first() -> None:
    """available_engines() names the selector always, and io_uring first where it builds."""
    names = available_engines()
    assert names[-1] == "selector"
    try:
        create_engine("io_uring").close()
    except rocket.EngineUnavailable:
        assert names == ["selector"]
    else:
        assert names == ["io_uring", "selector"]
