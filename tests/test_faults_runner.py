"""What a run leaves behind, and clear errors for input out of range (issue 10)."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import weakref
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import rocket
from rocket import _checks
from rocket.engines import Completion, Engine, create_engine
from rocket.request import IORequest

Body = Generator[Any, Any, Any]


class _Result:
    """A result object that a weakref can watch."""


# ------------------------------------------------------------ what outlives a run


def test_run_frees_its_executor_and_mains_result(engine: str) -> None:
    """After run returns, nothing keeps the executor or main's result alive."""
    refs: list[weakref.ref[Any]] = []

    def main() -> Body:
        me = yield rocket.current()
        refs.append(weakref.ref(me.executor))
        result = _Result()
        refs.append(weakref.ref(result))
        return result

    rocket.run(main(), engine=engine)
    gc.collect()
    assert [ref() for ref in refs] == [None, None]


def test_unjoined_failure_is_reported_when_run_returns(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed fiber nobody joined is reported once run returns, not at interpreter exit."""

    def fails(fail: bool) -> Body:
        if fail:
            raise ValueError("lost failure")
        yield rocket.sleep(0)

    def main() -> Body:
        yield rocket.spawn(fails(True))  # runs after main: the last fiber the executor steps

    rocket.run(main(), engine=engine)
    gc.collect()
    err = capsys.readouterr().err
    assert "failed and was never joined" in err
    assert "lost failure" in err


def test_exit_from_a_fiber_is_not_reported_as_never_joined(
    engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """sys.exit() in main or in a child propagates out of run, with no "never joined" report."""

    def child() -> Body:
        yield rocket.sleep(0)
        sys.exit(4)

    def main(code: int | None) -> Body:
        if code is None:
            yield rocket.join((yield rocket.spawn(child())))
        yield rocket.sleep(0)
        sys.exit(code)

    for code, expected in ((3, 3), (None, 4)):
        with pytest.raises(SystemExit) as info:
            rocket.run(main(code), engine=engine)
        assert info.value.code == expected
        del info
        gc.collect()
        assert "never joined" not in capsys.readouterr().err


class _RefusingEngine:
    """A real engine whose waits fail, like io_uring with io_uring_enter blocked."""

    def __init__(self, name: str) -> None:
        self._inner: Engine = create_engine(name)
        self.name = self._inner.name

    def submit(self, token: int, request: IORequest[Any]) -> None:
        self._inner.submit(token, request)

    def cancel(self, token: int) -> None:
        self._inner.cancel(token)

    def notify_closing(self, fd: int) -> None:
        self._inner.notify_closing(fd)

    def wait(self, timeout: float | None) -> list[Completion]:
        raise PermissionError(1, "Operation not permitted")

    def close(self) -> None:
        self._inner.close()
        raise PermissionError(1, "Operation not permitted")  # close waits too


def _assert_signals_restored() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1


def test_run_failing_at_start_restores_signals(engine: str) -> None:
    """A run whose engine fails at once leaves no SIGINT handler or wakeup fd behind."""

    def main() -> Body:
        yield rocket.sleep(0.001)

    with pytest.raises(PermissionError):
        rocket.run(main(), engine=_RefusingEngine(engine))
    _assert_signals_restored()
    assert rocket.run(main(), engine=engine) is None  # and the next run works


def test_engine_none_is_refused_before_anything_is_installed(engine: str) -> None:
    """engine=None (or an engine class) raises TypeError saying what to pass; nothing installed."""

    def main() -> Body:
        yield rocket.sleep(0)

    with pytest.raises(TypeError, match="'auto', 'io_uring', 'selector' or an engine") as info:
        rocket.run(main(), engine=None)  # type: ignore[arg-type]
    assert "NoneType" in str(info.value)
    _assert_signals_restored()
    with pytest.raises(TypeError, match=r"not the class itself; write engine=_RefusingEngine\(\)"):
        rocket.run(main(), engine=_RefusingEngine)  # type: ignore[arg-type]
    _assert_signals_restored()
    assert rocket.run(main(), engine=engine) is None


def test_sigint_just_before_main_returns_is_not_lost(engine: str) -> None:
    """A Ctrl-C that arrives as main returns (the loop never reads it) still raises."""

    def main() -> Body:
        yield rocket.sleep(0)
        os.kill(os.getpid(), signal.SIGINT)
        return "finished"

    with pytest.raises(KeyboardInterrupt):
        rocket.run(main(), engine=engine)
    _assert_signals_restored()


def test_a_handler_the_program_sets_during_the_run_stays(engine: str) -> None:
    """A SIGTERM handler installed by a fiber is still there after run (not reset to SIG_DFL)."""

    def mine(signum: int, frame: Any) -> None:
        pass

    def main() -> Body:
        signal.signal(signal.SIGTERM, mine)
        yield rocket.sleep(0)

    try:
        rocket.run(main(), engine=engine)
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_child_of_a_fork_in_a_fiber_can_run_rocket(engine: str) -> None:
    """After os.fork() in a fiber, the child has the default signal setup and can call run."""

    def child_main() -> Body:
        yield rocket.sleep(0)
        return 42

    def child() -> int:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return 3
        if signal.set_wakeup_fd(-1) != -1:
            return 4  # still the parent's pipe: the child's signals would wake the parent
        try:
            return 0 if rocket.run(child_main(), engine=engine) == 42 else 5
        except RuntimeError:  # "already running in this thread"
            return 6

    def main() -> Body:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                code = child()
            finally:
                os._exit(code)
        _, status = yield rocket.to_thread(os.waitpid, pid, 0)
        return os.waitstatus_to_exitcode(status)

    assert rocket.run(main(), engine=engine) == 0


# ------------------------------------------------------------------ bad input


def test_dump_signal_must_be_a_catchable_signal(engine: str) -> None:
    """run(dump_signal=9) says which signals are allowed, and installs nothing."""

    def main() -> Body:
        yield rocket.sleep(0)

    for bad in (signal.SIGKILL, signal.SIGSTOP, signal.SIGINT, 10_000):
        with pytest.raises(ValueError, match="SIGUSR1") as info:
            rocket.run(main(), engine=engine, dump_signal=bad)
        assert "dump_signal" in str(info.value)
        _assert_signals_restored()
    with pytest.raises(TypeError, match="dump_signal"):
        rocket.run(main(), engine=engine, dump_signal="USR1")  # type: ignore[arg-type]
    _assert_signals_restored()


def test_huge_durations_mean_practically_forever(engine: str) -> None:
    """sleep(1e19) sleeps (until cancelled) and timeout(1e19, ...) does not fire."""

    def main() -> Body:
        with rocket.move_on_after(0.02) as scope:
            yield rocket.sleep(1e19)
        yield rocket.timeout(1e19, rocket.sleep(0.01))
        return scope.timed_out

    assert rocket.run(main(), engine=engine) is True
    assert rocket.sleep(1e19).seconds == _checks.MAX_SECONDS
    assert rocket.timeout(1e300, rocket.sleep(0)).seconds == _checks.MAX_SECONDS


def _error(make: Any) -> str:
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    return str(info.value)


def test_out_of_range_fds_and_offsets_raise_clear_errors(engine: str) -> None:
    """fd > 2**31-1 and offsets > 2**63-1 raise ValueError naming the range, not OverflowError."""

    def main() -> Body:
        messages = [
            _error(lambda: rocket.read(2**31, 10)),
            _error(lambda: rocket.write(2**63, b"x")),
            _error(lambda: rocket.close(2**40)),
            _error(lambda: rocket.recv(2**31, 10)),
            _error(lambda: rocket.accept(2**31)),
        ]
        for message in messages:
            assert "2147483647" in message, message
        assert "9223372036854775807" in _error(lambda: rocket.read(0, 10, 2**63))
        yield rocket.sleep(0)

    rocket.run(main(), engine=engine)


def test_open_with_a_mode_string_says_what_to_write(engine: str, tmp_path: Path) -> None:
    """open(path, "r") raises TypeError asking for os.O_* flags and showing how."""
    path = tmp_path / "f"
    path.write_bytes(b"x")

    def main() -> Body:
        message = _error(lambda: rocket.open(path, "r"))  # type: ignore[arg-type]
        assert "os.O_" in message
        assert "rocket.open(path)" in message
        assert "rocket.open(path, os.O_WRONLY | os.O_CREAT)" in message
        assert "flags" in _error(lambda: rocket.open(path, 2**40))
        assert "0o7777" in _error(lambda: rocket.open(path, os.O_RDONLY, 0o100000))
        fd = yield rocket.open(path)
        yield rocket.close(fd)

    rocket.run(main(), engine=engine)


def test_unix_path_longer_than_the_kernel_allows(engine: str, tmp_path: Path) -> None:
    """connect, open_unix_connection and serve_unix say an AF_UNIX path is too long."""
    long_path = str(tmp_path / ("s" * 120))

    async def handler(stream: Any) -> None:
        pass

    def main() -> Body:
        sock = socket.socket(socket.AF_UNIX)
        try:
            messages = [
                _error(lambda: rocket.connect(sock, long_path)),
                _error(lambda: rocket.open_unix_connection(long_path)),
                _error(lambda: rocket.serve_unix(handler, long_path)),
            ]
        finally:
            sock.close()
        for message in messages:
            assert "107 bytes" in message, message
        yield rocket.sleep(0)

    rocket.run(main(), engine=engine)


def test_scopes_and_time_limits_longer_than_epoll_can_wait(engine: str) -> None:
    """fail_after(3e6) and timeout(3e6, to_thread(...)) work (epoll waits at most ~24.8 days)."""

    def main() -> Generator[Any, Any, Any]:
        with rocket.fail_after(3e6):
            yield rocket.sleep(0.01)
            value = yield rocket.timeout(3e6, rocket.to_thread(lambda: 7))
        return value

    assert rocket.run(main(), engine=engine) == 7
