"""What a run leaves behind, and clear errors for input out of range (issue 10)."""

from __future__ import annotations

import gc
import os
import signal
import sys
import weakref
from collections.abc import Generator
from typing import Any

import pytest

import rocket
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
    """engine=None raises a TypeError naming the choices; the signal handlers stay as they were."""

    def main() -> Body:
        yield rocket.sleep(0)

    with pytest.raises(TypeError, match="'auto', 'io_uring', 'selector' or an engine") as info:
        rocket.run(main(), engine=None)  # type: ignore[arg-type]
    assert "NoneType" in str(info.value)
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
