"""Subprocesses: spawn_process, Process.wait on a pidfd, run_process, on every engine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Generator
from typing import Any

import pytest

import rocket

_Body = Generator[Any, Any, Any]
_LIMIT = 20  # every child is bounded: no test waits longer than this for one


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _gone(pid: int) -> bool:
    """The child was reaped: it is not our child any more and /proc has no entry for it."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not os.path.exists(f"/proc/{pid}")
    return False


def test_true_and_false_exit_codes(engine: str) -> None:
    """wait() gives 0 for `true` and 1 for `false`, and returncode says the same."""

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            ok = yield rocket.spawn_process(["true"])
            bad = yield rocket.spawn_process(["false"])
            assert ok.returncode is None or ok.returncode == 0
            good_code = yield ok.wait()
            bad_code = yield bad.wait()
        assert ok.returncode == 0
        assert bad.returncode == 1
        return good_code, bad_code

    assert rocket.run(main(), engine=engine) == (0, 1)


def test_cat_echoes_one_mebibyte_through_stdin_and_stdout(engine: str) -> None:
    """1 MiB written to `cat`'s stdin comes back whole on its stdout (written while read)."""
    data = os.urandom(1 << 20)

    def feed(proc: rocket.Process) -> _Body:
        assert proc.stdin is not None
        yield proc.stdin.write(data)
        proc.stdin.close()

    def drain(proc: rocket.Process) -> _Body:
        assert proc.stdout is not None
        chunks = []
        while chunk := (yield proc.stdout.read()):
            chunks.append(chunk)
        proc.stdout.close()
        return b"".join(chunks)

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            proc = yield rocket.spawn_process(["cat"], stdin=rocket.PIPE, stdout=rocket.PIPE)
            _, echoed, code = yield rocket.gather(feed(proc), drain(proc), proc.wait())
        return echoed, code

    echoed, code = rocket.run(main(), engine=engine)
    assert code == 0
    assert echoed == data


def test_run_process_captures_stdout_stderr_and_checks(engine: str) -> None:
    """run_process captures both streams; check=True raises CalledProcessError with them."""
    script = ["sh", "-c", "echo out; echo err >&2; exit 3"]

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            result = yield rocket.run_process(script, check=False)
            with pytest.raises(subprocess.CalledProcessError) as info:
                yield rocket.run_process(script)
            piped = yield rocket.run_process(["cat"], input=b"fed\n")
        return result, info.value, piped

    result, error, piped = rocket.run(main(), engine=engine)
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert (error.returncode, error.output, error.stderr) == (3, b"out\n", b"err\n")
    assert error.cmd == script
    assert piped.stdout == b"fed\n"


def test_run_process_timeout_kills_the_child_in_time(engine: str) -> None:
    """timeout=0.5 on `sleep 10` raises TimeoutExpired in well under 10 s, with the child reaped."""
    before = _fds()
    command = ["sh", "-c", "echo $$; exec sleep 10"]  # the pid, then sleep in that process
    started = time.monotonic()

    def main() -> _Body:
        with pytest.raises(subprocess.TimeoutExpired) as info:
            yield rocket.run_process(command, timeout=0.5)
        return info.value

    error = rocket.run(main(), engine=engine)
    assert time.monotonic() - started < 5
    assert error.timeout == 0.5
    assert error.cmd == command
    assert _gone(int(error.output))  # what it printed before the timeout is kept
    assert _fds() == before


def test_cancelling_wait_kills_and_reaps_the_child(engine: str) -> None:
    """A fiber cancelled in proc.wait() kills the child and reaps it: no zombie, no fd left."""
    before = _fds()

    def main() -> _Body:
        proc = yield rocket.spawn_process(["sleep", "10"], stdout=rocket.PIPE)
        with rocket.move_on_after(0.1) as scope:
            yield proc.wait()
        assert scope.timed_out
        assert proc.returncode == -signal.SIGKILL
        proc.stdout.close()
        return proc.pid

    started = time.monotonic()
    pid = rocket.run(main(), engine=engine)
    assert time.monotonic() - started < 5
    assert _gone(pid)
    assert _fds() == before


def test_fifty_concurrent_true_processes_are_all_reaped(engine: str) -> None:
    """50 processes waited for concurrently all exit 0 and leave no zombie and no fd."""
    before = _fds()

    def one() -> _Body:
        proc = yield rocket.spawn_process(["true"])
        code = yield proc.wait()
        return proc.pid, code

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            return (yield rocket.gather(*(one() for _ in range(50))))

    results = rocket.run(main(), engine=engine)
    assert [code for _, code in results] == [0] * 50
    assert all(_gone(pid) for pid, _ in results)
    assert _fds() == before


def test_terminate_ends_the_child_with_sigterm(engine: str) -> None:
    """terminate() sends SIGTERM: wait() gives -SIGTERM; signals after the reap do nothing."""

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            proc = yield rocket.spawn_process(["sleep", "10"])
            proc.terminate()
            code = yield proc.wait()
        proc.kill()  # reaped already: a no-op, never another process with a reused pid
        return code

    assert rocket.run(main(), engine=engine) == -signal.SIGTERM


def test_spawn_errors_say_what_to_write(engine: str) -> None:
    """A string command is a TypeError showing the list; a missing program, FileNotFoundError."""
    before = _fds()

    def main() -> _Body:
        with pytest.raises(TypeError, match=r"\['echo', 'hi'\].*\['sh', '-c', 'echo hi'\]"):
            rocket.spawn_process("echo hi")
        with pytest.raises(FileNotFoundError):
            yield rocket.spawn_process(
                ["/nonexistent/program"], stdin=rocket.PIPE, stdout=rocket.PIPE
            )

    rocket.run(main(), engine=engine)
    assert _fds() == before


def test_two_fibers_waiting_for_one_process_both_get_its_code(engine: str) -> None:
    """wait() from two fibers at once: both return the exit status; the child is reaped once."""

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            proc = yield rocket.spawn_process(["sh", "-c", "sleep 0.1; exit 7"])
            return (yield rocket.gather(proc.wait(), proc.wait())), proc.pid

    codes, pid = rocket.run(main(), engine=engine)
    assert codes == [7, 7]
    assert _gone(pid)


def test_stderr_to_stdout_merges_both_into_one_pipe(engine: str) -> None:
    """stderr=rocket.STDOUT sends the child's stderr into its stdout pipe; proc.stderr is None."""

    def main() -> _Body:
        with rocket.fail_after(_LIMIT):
            proc = yield rocket.spawn_process(
                ["sh", "-c", "echo out; echo err >&2"], stdout=rocket.PIPE, stderr=rocket.STDOUT
            )
            assert proc.stderr is None
            first = yield proc.stdout.readline()
            second = yield proc.stdout.readline()
            proc.stdout.close()
            yield proc.wait()
        return {first, second}

    assert rocket.run(main(), engine=engine) == {b"out\n", b"err\n"}
