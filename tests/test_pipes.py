"""PipeStream over pipes and fds 0/1, and the wait_readable request, on every engine."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

import rocket
from rocket.testing import VirtualEngine

_Body = Generator[Any, Any, Any]


def test_pipe_stream_readline_read_exactly_write_round_trip(engine: str) -> None:
    """Bytes written to a pipe come back in order through readline, read_exactly and read."""

    def main() -> _Body:
        r, w = os.pipe()
        with rocket.PipeStream(r) as reader, rocket.PipeStream(w) as writer, rocket.fail_after(10):
            yield writer.write(b"line one\nabcdefXYZ")
            assert (yield reader.readline()) == b"line one\n"
            assert (yield reader.read_exactly(6)) == b"abcdef"
            writer.close()
            assert (yield reader.read()) == b"XYZ"
            assert (yield reader.read()) == b""
            assert (yield reader.readline()) == b""

    rocket.run(main(), engine=engine)


def test_pipe_write_bigger_than_the_pipe_buffer_arrives_whole(engine: str) -> None:
    """A 1 MiB write to a 64 KiB pipe completes (short writes continue) while a reader drains it."""
    data = bytes(range(256)) * 4096

    def drain(reader: rocket.PipeStream) -> _Body:
        chunks = []
        while chunk := (yield reader.read()):
            chunks.append(chunk)
        return b"".join(chunks)

    def feed(writer: rocket.PipeStream) -> _Body:
        yield writer.write(data)
        writer.close()

    def main() -> _Body:
        r, w = os.pipe()
        with rocket.PipeStream(r) as reader, rocket.PipeStream(w) as writer, rocket.fail_after(10):
            got, _ = yield rocket.gather(drain(reader), feed(writer))
        return got

    assert rocket.run(main(), engine=engine) == data


def test_pipe_stream_close_ends_a_waiting_read(engine: str) -> None:
    """close() from another fiber makes a read waiting on the pipe return b"" (end of stream)."""

    def main() -> _Body:
        r, w = os.pipe()
        reader = rocket.PipeStream(r)
        try:
            with rocket.fail_after(10):
                fiber = yield rocket.spawn(reader.read())
                yield rocket.sleep(0.01)
                reader.close()
                assert (yield rocket.join(fiber)) == b""
        finally:
            os.close(w)
        assert reader.fileno() == -1
        with pytest.raises(ValueError, match="closed stream"):
            reader.read()

    rocket.run(main(), engine=engine)


def test_pipe_stream_refuses_a_second_reader(engine: str) -> None:
    """A read while another fiber reads the same PipeStream raises RuntimeError naming it."""

    def main() -> _Body:
        r, w = os.pipe()
        with rocket.PipeStream(r) as reader, rocket.PipeStream(w) as writer:
            first = yield rocket.spawn(reader.readline())
            yield rocket.sleep(0.01)
            with pytest.raises(RuntimeError, match=r"PipeStream\.read\(\): another fiber"):
                yield reader.read()
            yield writer.write(b"ok\n")
            assert (yield rocket.join(first)) == b"ok\n"

    rocket.run(main(), engine=engine)


def test_stdout_stream_writes_fd_1_and_leaves_it_open(
    engine: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """rocket.stdout() writes to fd 1; closing it (and stdin()) does not close fds 0 and 1."""

    def main() -> _Body:
        with rocket.stdout() as out:
            assert out.fileno() == 1
            yield out.write(b"hello from a fiber\n")
        rocket.stdin().close()

    rocket.run(main(), engine=engine)
    os.fstat(0)
    os.fstat(1)
    assert capfd.readouterr().out == "hello from a fiber\n"


def test_wait_readable_returns_once_a_pipe_has_data(engine: str) -> None:
    """wait_readable(fd) waits while a pipe is empty and returns None once a byte was written."""

    def main() -> _Body:
        r, w = os.pipe()
        try:
            with rocket.move_on_after(0.05) as scope:
                yield rocket.wait_readable(r)
            assert scope.timed_out
            os.write(w, b"x")
            with rocket.fail_after(10):
                assert (yield rocket.wait_readable(r)) is None
            assert os.read(r, 1) == b"x"  # it waited, it did not read
        finally:
            os.close(r)
            os.close(w)

    rocket.run(main(), engine=engine)


def test_wait_readable_on_a_closed_fd_raises_ebadf(engine: str) -> None:
    """wait_readable on an fd that is not open fails with OSError EBADF naming the request."""

    def main() -> _Body:
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        with pytest.raises(OSError, match=rf"wait_readable\(fd={r}\)"):
            yield rocket.wait_readable(r)

    rocket.run(main(), engine=engine)


def test_wait_readable_is_scripted_on_the_virtual_engine() -> None:
    """The virtual engine completes wait_readable by its script, in virtual time."""
    engine = VirtualEngine()
    engine.script("wait_readable", 9, None, delay=2.0)

    def main() -> _Body:
        return (yield rocket.wait_readable(9))

    assert rocket.run(main(), engine=engine) is None
    assert engine.now == 2.0
