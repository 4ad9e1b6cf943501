"""Subprocesses for fibers: start one, talk to it through pipe streams, wait for it.

::

    proc = yield rocket.spawn_process(["cat"], stdin=rocket.PIPE, stdout=rocket.PIPE)
    yield proc.stdin.write(b"hello\\n")
    proc.stdin.close()
    line = yield proc.stdout.readline()
    code = yield proc.wait()

    result = yield rocket.run_process(["ls", "-l"], timeout=10)   # like subprocess.run
    print(result.stdout)

How: :class:`subprocess.Popen` starts the child (so ``cwd``, ``env``, errors
such as a missing program behave as there), on pipes that rocket made, whose
parent ends become :class:`~rocket.PipeStream` objects. Waiting needs no
thread and no SIGCHLD handler: ``os.pidfd_open(pid)`` gives an fd that becomes
readable when the child exits (Linux 5.3+), the fiber waits for that with
:func:`rocket.ops.wait_readable`, and then ``Popen.poll()`` reaps the child
(``waitpid(pid, WNOHANG)``) and the pidfd is closed.

Cancellation: a fiber cancelled (or timed out) in :meth:`Process.wait` or
:func:`run_process` kills the child (SIGKILL) and reaps it before the
cancellation goes on, so no zombie and no fd is left behind. That final
``waitpid`` blocks the loop for the moment the kernel takes to end a killed
process.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Generator, Mapping, Sequence
from typing import Any

from rocket import _context
from rocket.group import gather
from rocket.net.pipes import PipeStream
from rocket.ops import WaitReadable
from rocket.request import Composite, Request
from rocket.timeouts import fail_after

__all__ = ["DEVNULL", "PIPE", "STDOUT", "Process", "run_process", "spawn_process"]

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT

_Body = Generator[Request[Any], Any, Any]
_Args = Sequence["str | bytes | os.PathLike[str]"]


class Process:
    """A running child process, made by :func:`spawn_process`.

    ``stdin``, ``stdout``, ``stderr`` are :class:`~rocket.PipeStream` objects
    for the streams opened with ``PIPE``, else None. ``returncode`` is None
    until :meth:`wait` has reaped the child (negative: killed by that signal).
    """

    __slots__ = ("_pidfd", "_popen", "args", "pid", "stderr", "stdin", "stdout")

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: PipeStream | None,
        stdout: PipeStream | None,
        stderr: PipeStream | None,
    ) -> None:
        self._popen = popen
        self.args = popen.args
        self.pid = popen.pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        # Invariant: the pidfd is open until the child has been reaped (-1 after).
        self._pidfd = os.pidfd_open(popen.pid)

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped; ``-N`` if signal N ended it; None before."""
        return self._popen.returncode

    def wait(self) -> Composite[int]:
        """Wait for the child to exit and reap it; the result is its returncode.

        Cancelling the waiting fiber (or a timeout around it) kills the child
        and reaps it first.
        """
        return Composite("Process.wait", self._wait())

    def _wait(self) -> _Body:
        while self._popen.returncode is None:
            try:
                yield WaitReadable(self._pidfd)
            except OSError:
                if self._popen.returncode is None:  # (else: another waiter reaped it)
                    self._kill_and_reap()
                    raise
            except BaseException:
                self._kill_and_reap()
                raise
            if self._popen.poll() is not None:
                self._release()
        return self._popen.returncode

    def _kill_and_reap(self) -> None:
        """Kill the child if it still runs, wait for it (briefly: SIGKILL), close the pidfd."""
        if self._popen.returncode is None:
            self.kill()
            self._popen.wait()
        self._release()

    def _release(self) -> None:
        """Close the pidfd; other fibers still waiting on it end at once (then see returncode)."""
        if self._pidfd >= 0:
            _context.notify_closing(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def send_signal(self, sig: int) -> None:
        """Send signal ``sig`` to the child; nothing once it has been reaped.

        Through the pidfd, so a pid reused by another process is never hit.
        """
        if self._pidfd >= 0 and self._popen.returncode is None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:  # exited, not reaped yet
                pass

    def terminate(self) -> None:
        """Send SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Send SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        """Close the pipe streams; kill and reap the child if it still runs (blocking briefly)."""
        for stream in (self.stdin, self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self._kill_and_reap()

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} returncode={self.returncode}>"


def spawn_process(
    args: _Args,
    *,
    stdin: Any = None,
    stdout: Any = None,
    stderr: Any = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Composite[Process]:
    """Start ``args`` (a list: program and arguments, no shell); the result is a :class:`Process`.

    ``stdin``/``stdout``/``stderr``: ``rocket.PIPE`` (a :class:`~rocket.PipeStream`
    on the process), ``rocket.DEVNULL``, None (inherit this process's), an fd or
    a file object; ``stderr`` may be ``rocket.STDOUT``. Yield the result of
    :meth:`Process.wait` (or use :func:`run_process`) to reap the child.

    Raises:
        TypeError: ``args`` is a string (pass a list, e.g. ``["sh", "-c", cmd]``).
        FileNotFoundError: the program does not exist (as subprocess raises it).
    """
    if isinstance(args, (str, bytes)):
        raise TypeError(
            f"spawn_process() takes a list of arguments, not a string: write "
            f"spawn_process({shlex.split(os.fsdecode(args))!r}), or "
            f"spawn_process(['sh', '-c', {os.fsdecode(args)!r}]) for a shell command"
        )
    return Composite("spawn_process", _spawn(list(args), stdin, stdout, stderr, cwd, env))


def _spawn(args: list[Any], stdin: Any, stdout: Any, stderr: Any, cwd: Any, env: Any) -> _Body:
    yield from ()  # a generator: the child starts when the composite is yielded, not before
    child_ends: list[int] = []
    parent_ends: list[int] = []

    def pipe(spec: Any, child_reads: bool) -> tuple[Any, PipeStream | None]:
        if spec != PIPE:
            return spec, None
        r, w = os.pipe()  # O_CLOEXEC: only the child's dup onto 0/1/2 survives exec
        child, parent = (r, w) if child_reads else (w, r)
        child_ends.append(child)
        parent_ends.append(parent)
        return child, PipeStream(parent)

    try:
        in_spec, in_stream = pipe(stdin, child_reads=True)
        out_spec, out_stream = pipe(stdout, child_reads=False)
        err_spec, err_stream = pipe(stderr, child_reads=False)
        popen = subprocess.Popen(
            args, stdin=in_spec, stdout=out_spec, stderr=err_spec, cwd=cwd, env=env
        )
    except BaseException:
        for fd in parent_ends:
            os.close(fd)
        raise
    finally:
        for fd in child_ends:
            os.close(fd)
    try:
        proc = Process(popen, in_stream, out_stream, err_stream)
    except BaseException:  # pidfd_open failed (EMFILE...): do not leave the child behind
        popen.kill()
        popen.wait()
        for fd in parent_ends:
            os.close(fd)
        raise
    return proc


def run_process(
    args: _Args,
    *,
    input: bytes | None = None,  # noqa: A002 - subprocess.run's name
    capture: bool = True,
    check: bool = True,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Composite[subprocess.CompletedProcess[bytes]]:
    """Run ``args`` to the end; the result is a :class:`subprocess.CompletedProcess`.

    ``input`` goes to the child's stdin (then closed; None: stdin is inherited).
    With ``capture``, stdout and stderr are read (concurrently, so a child
    filling one pipe never blocks on it) into ``result.stdout``/``.stderr``.

    Raises:
        subprocess.CalledProcessError: ``check`` and a nonzero returncode.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (it
            is killed and reaped first).
    """
    if input is not None and not isinstance(input, (bytes, bytearray, memoryview)):
        raise TypeError(f"run_process() argument 'input' must be bytes, not {type(input).__name__}")
    pipe = PIPE if capture else None
    spawn = spawn_process(
        args, stdin=None if input is None else PIPE, stdout=pipe, stderr=pipe, cwd=cwd, env=env
    )
    return Composite("run_process", _run(spawn, input, check, timeout))


def _run(spawn: Composite[Process], input: Any, check: bool, timeout: float | None) -> _Body:  # noqa: A002
    proc: Process = yield from spawn
    outputs: list[list[bytes]] = [[], []]
    try:
        work: list[Any] = [_feed(proc.stdin, input), _drain(proc.stdout, outputs[0])]
        work += [_drain(proc.stderr, outputs[1]), proc.wait()]
        try:
            if timeout is None:
                yield gather(*work)
            else:
                with fail_after(timeout):
                    yield gather(*work)
        except TimeoutError:
            out, err = _joined(proc, outputs)
            raise subprocess.TimeoutExpired(proc.args, timeout or 0.0, out, err) from None
    finally:
        proc.close()  # kills and reaps a child still running (cancelled, timed out)
    code = proc.returncode
    assert code is not None
    out, err = _joined(proc, outputs)
    if check and code:
        raise subprocess.CalledProcessError(code, proc.args, out, err)
    return subprocess.CompletedProcess(proc.args, code, out, err)


def _joined(proc: Process, outputs: list[list[bytes]]) -> tuple[bytes | None, bytes | None]:
    out = b"".join(outputs[0]) if proc.stdout is not None else None
    err = b"".join(outputs[1]) if proc.stderr is not None else None
    return out, err


def _feed(stream: PipeStream | None, data: Any) -> _Body:
    if stream is None:
        return
    try:
        if data:
            yield from stream.write(data)
    except BrokenPipeError:  # the child exited without reading it all, as subprocess.run allows
        pass
    finally:
        stream.close()


def _drain(stream: PipeStream | None, chunks: list[bytes]) -> _Body:
    if stream is None:
        return
    while chunk := (yield from stream.read()):
        chunks.append(chunk)
