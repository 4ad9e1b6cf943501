"""rocket.files: File objects, read_file/write_file and the directory helpers, on every engine."""

from __future__ import annotations

import io
import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

import rocket
import rocket._fileobj

_Gen = Generator[Any, Any, Any]
_T = TypeVar("_T")

if TYPE_CHECKING:
    from typing import assert_type
else:

    def assert_type(value: _T, _type: object) -> _T:
        """typing.assert_type, which Python 3.10 lacks (mypy does the checking)."""
        return value


def _open_fds() -> int:
    """How many fds this process has open now."""
    return len(os.listdir("/proc/self/fd"))


def test_bytes_round_trip_generator_fiber(engine: str, tmp_path: Path) -> None:
    """Bytes written with File.write read back the same with File.read, in a generator fiber."""
    path = tmp_path / "data.bin"
    payload = bytes(range(256)) * 10

    def main() -> _Gen:
        f = yield rocket.open_file(path, "wb")
        written = yield f.write(payload)
        yield f.fsync()
        yield f.close()
        f = yield rocket.open_file(path, "rb")
        head = yield f.read(10)
        rest = yield f.read()
        end = yield f.read()
        yield f.close()
        return written, head, rest, end

    written, head, rest, end = rocket.run(main(), engine=engine)
    assert (written, head + rest, end) == (len(payload), payload, b"")
    assert path.read_bytes() == payload


def test_bytes_round_trip_async_fiber(engine: str, tmp_path: Path) -> None:
    """The same round trip works with await and async with in an async def fiber."""
    path = tmp_path / "data.bin"

    async def main() -> bytes:
        async with await rocket.open_file(path, "xb") as f:
            assert await f.write(b"async bytes") == 11
        async with await rocket.open_file(path) as f:
            data: bytes = await f.read()
        assert f.closed
        return data

    assert rocket.run(main(), engine=engine) == b"async bytes"


def test_read_to_eof_of_a_5_mib_file(engine: str, tmp_path: Path) -> None:
    """read() with no size returns all of a file far bigger than one request's 64 KiB."""
    path = tmp_path / "big.bin"
    payload = os.urandom(5 << 20)
    path.write_bytes(payload)

    def main() -> _Gen:
        f = yield rocket.open_file(path)
        with f:
            data = yield f.read(-1)
            return data, f.tell()

    data, position = rocket.run(main(), engine=engine)
    assert len(data) == len(payload)
    assert data == payload
    assert position == len(payload)


def test_read_n_returns_n_bytes_across_requests(engine: str, tmp_path: Path) -> None:
    """read(n) with n above one request's size still returns n bytes (fewer only at EOF)."""
    path = tmp_path / "big.bin"
    payload = os.urandom(300_000)
    path.write_bytes(payload)

    def main() -> _Gen:
        f = yield rocket.open_file(path)
        with f:
            first = yield f.read(200_000)
            second = yield f.read(200_000)
            return first, second

    first, second = rocket.run(main(), engine=engine)
    assert first == payload[:200_000]
    assert second == payload[200_000:]


def test_text_multibyte_character_split_at_the_64_kib_boundary(engine: str, tmp_path: Path) -> None:
    """A utf-8 character whose bytes straddle two read requests decodes whole."""
    path = tmp_path / "text.txt"
    text = "a" * 65535 + "€ü漢\n" + "é" * 70000 + "\nlast"
    path.write_bytes(text.encode("utf-8"))

    def main() -> _Gen:
        f = yield rocket.open_file(path, "r", encoding="utf-8")
        with f:
            return (yield f.read())

    assert rocket.run(main(), engine=engine) == text


def test_text_small_chunks_universal_newlines(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3-byte reads, split characters and a split \\r\\n still give lines ending in \\n."""
    monkeypatch.setattr(rocket._fileobj, "_CHUNK", 3)
    path = tmp_path / "text.txt"
    path.write_bytes("a€\r\nbé\rc\n€d\r".encode())

    def main() -> _Gen:
        f = yield rocket.open_file(path, "r")
        lines = []
        with f:
            while line := (yield f.readline()):
                lines.append(line)
        return lines

    assert rocket.run(main(), engine=engine) == ["a€\n", "bé\n", "c\n", "€d\n"]


@pytest.mark.parametrize(
    ("newline", "lines"),
    [
        ("", ["a\r\n", "b\r", "c\n", "d"]),
        ("\n", ["a\r\n", "b\rc\n", "d"]),
        ("\r\n", ["a\r\n", "b\rc\nd"]),
        ("\r", ["a\r", "\nb\r", "c\nd"]),
    ],
)
def test_text_newline_argument_for_reading(
    engine: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    newline: str,
    lines: list[str],
) -> None:
    """newline='' and the explicit endings split lines as open() does and keep the endings."""
    monkeypatch.setattr(rocket._fileobj, "_CHUNK", 2)
    path = tmp_path / "text.txt"
    path.write_bytes(b"a\r\nb\rc\nd")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "r", newline=newline)
        got = []
        with f:
            while line := (yield f.readline()):
                got.append(line)
        return got

    assert rocket.run(main(), engine=engine) == lines
    with open(path, newline=newline) as f:
        assert f.readlines() == lines


def test_text_w_plus_truncates_and_reads_back(engine: str, tmp_path: Path) -> None:
    """'w+' empties the file, and what it writes reads back after seek(0)."""
    path = tmp_path / "out.txt"
    path.write_text("old old old", encoding="latin-1")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "w+", encoding="latin-1")
        with f:
            yield f.write("ñew")
            yield f.seek(0)
            return (yield f.read())

    assert rocket.run(main(), engine=engine) == "ñew"
    assert path.read_bytes() == "ñew".encode("latin-1")


def test_text_write_utf16_writes_one_bom(engine: str, tmp_path: Path) -> None:
    """Several text writes with utf-16 make one BOM, as open() does (incremental encoder)."""
    path = tmp_path / "out.txt"

    def main() -> _Gen:
        f = yield rocket.open_file(path, "w", encoding="utf-16", newline="\r\n")
        with f:
            yield f.write("héllo\n")
            yield f.write("wörld\n")

    rocket.run(main(), engine=engine)
    assert path.read_bytes() == "héllo\r\nwörld\r\n".encode("utf-16")


def test_write_loops_on_short_writes(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File.write writes all of its data when each write request takes at most 3 bytes."""

    def short_write(fd: int, data: bytes, offset: int | None) -> rocket.ops.Write:
        return rocket.ops.Write(fd, data[:3], offset)

    monkeypatch.setattr(rocket._fileobj, "Write", short_write)
    path = tmp_path / "f"

    def main() -> _Gen:
        f = yield rocket.open_file(path, "w", encoding="utf-8", newline="\r\n")
        with f:
            n = yield f.write("grüße\nwelt\n")
            return n, f.tell()

    assert rocket.run(main(), engine=engine) == (11, 15)
    assert path.read_bytes() == "grüße\r\nwelt\r\n".encode()


def test_typed_fibers_get_bytes_or_str(engine: str, tmp_path: Path) -> None:
    """Binary files give bytes and text files str, to mypy (assert_type) and at run time."""
    path = tmp_path / "f"

    async def main() -> tuple[bytes, str, str]:
        await rocket.write_file(path, b"line\n")
        async with await rocket.open_file(path) as b:
            assert_type(b, rocket.File[bytes])
            raw = await b.read()
        async with await rocket.open_file(path, "r") as t:
            lines = [line async for line in t]
        text = await rocket.read_file(path, encoding="utf-8")
        return assert_type(raw, bytes), assert_type(lines[0], str), assert_type(text, str)

    assert rocket.run(main(), engine=engine) == (b"line\n", "line\n", "line\n")


def test_append_mode_writes_at_the_end(engine: str, tmp_path: Path) -> None:
    """'ab' appends to what is there, even after a seek, and tell() follows the end."""
    path = tmp_path / "log"
    path.write_bytes(b"one\n")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "ab")
        with f:
            start = f.tell()
            yield f.write(b"two\n")
            yield f.seek(0)
            yield f.write(b"three\n")
            return start, f.tell()

    start, end = rocket.run(main(), engine=engine)
    assert path.read_bytes() == b"one\ntwo\nthree\n"
    assert (start, end) == (4, 14)


def test_append_text_mode(engine: str, tmp_path: Path) -> None:
    """'a' (text) appends encoded text."""
    path = tmp_path / "log"
    path.write_text("ä\n", encoding="utf-8")

    async def main() -> None:
        async with await rocket.open_file(path, "a", encoding="utf-8") as f:
            await f.write("ö\n")

    rocket.run(main(), engine=engine)
    assert path.read_text(encoding="utf-8") == "ä\nö\n"


def test_seek_and_tell(engine: str, tmp_path: Path) -> None:
    """seek with each whence moves the position that reads and writes use; tell reports it."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "r+b")
        with f:
            seen = []
            seen.append((yield f.seek(3)))
            seen.append((yield f.read(2)))
            seen.append(f.tell())
            seen.append((yield f.seek(-2, os.SEEK_END)))
            seen.append((yield f.read()))
            seen.append((yield f.seek(-5, os.SEEK_CUR)))
            seen.append((yield f.write(b"ab")))
            seen.append(f.tell())
            seen.append((yield f.read(1)))
            kernel_position = os.lseek(f.fileno(), 0, os.SEEK_CUR)
            return seen, kernel_position

    seen, kernel_position = rocket.run(main(), engine=engine)
    assert seen == [3, b"34", 5, 8, b"89", 5, 2, 7, b"7"]
    assert path.read_bytes() == b"01234ab789"
    assert kernel_position == 0  # offset reads and writes: the kernel's position is untouched


def test_seek_errors(engine: str, tmp_path: Path) -> None:
    """A negative position, a bad whence and a text-mode relative seek each say what is allowed."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "rb")
        with f:
            with pytest.raises(ValueError, match="negative position"):
                yield f.seek(-1, os.SEEK_CUR)
            with pytest.raises(ValueError, match="whence"):
                f.seek(0, 7)
        f = yield rocket.open_file(path, "r")
        with f:
            with pytest.raises(io.UnsupportedOperation, match=r"seek\(0\)"):
                f.seek(1, os.SEEK_CUR)
            assert (yield f.seek(0, os.SEEK_END)) == 3

    rocket.run(main(), engine=engine)


def test_readline_and_async_iteration(engine: str, tmp_path: Path) -> None:
    """readline returns lines with their ending; async for yields each line, bytes or str."""
    path = tmp_path / "lines"
    path.write_bytes(b"alpha\nbeta\n\ngamma")

    async def main() -> tuple[list[bytes], list[str], bytes]:
        async with await rocket.open_file(path) as f:
            raw = [line async for line in f]
            end: bytes = await f.readline()
        async with await rocket.open_file(path, "r") as t:
            text = [line async for line in t]
        return raw, text, end

    raw, text, end = rocket.run(main(), engine=engine)
    assert raw == [b"alpha\n", b"beta\n", b"\n", b"gamma"]
    assert text == ["alpha\n", "beta\n", "\n", "gamma"]
    assert end == b""


def test_readline_then_read_keeps_order(engine: str, tmp_path: Path) -> None:
    """Bytes readline buffered come first in the next read; tell counts only bytes returned."""
    path = tmp_path / "lines"
    path.write_bytes(b"first\nsecond\nthird\n")

    def main() -> _Gen:
        f = yield rocket.open_file(path)
        with f:
            line = yield f.readline()
            position = f.tell()
            rest = yield f.read()
            return line, position, rest

    assert rocket.run(main(), engine=engine) == (b"first\n", 6, b"second\nthird\n")


def test_truncate(engine: str, tmp_path: Path) -> None:
    """truncate() cuts at the position by default, or at the size given, without moving it."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "r+b")
        with f:
            yield f.seek(6)
            first = yield f.truncate()
            second = yield f.truncate(2)
            return first, second, f.tell()

    assert rocket.run(main(), engine=engine) == (6, 2, 6)
    assert path.read_bytes() == b"01"


def test_write_file_and_read_file(engine: str, tmp_path: Path) -> None:
    """write_file replaces a file's content; read_file returns it as bytes, or str with encoding."""
    path = tmp_path / "f"
    path.write_bytes(b"old content that is longer")

    def main() -> _Gen:
        n = yield rocket.write_file(path, b"new")
        data = yield rocket.read_file(path)
        m = yield rocket.write_file(path, "grüße\r\n", encoding="utf-8")
        text = yield rocket.read_file(path, encoding="utf-8")
        return n, data, m, text

    assert rocket.run(main(), engine=engine) == (3, b"new", 7, "grüße\n")
    assert path.read_bytes() == "grüße\r\n".encode()


def test_read_file_async(engine: str, tmp_path: Path) -> None:
    """read_file and write_file work with await too."""
    path = tmp_path / "f"

    async def main() -> bytes:
        await rocket.write_file(path, bytearray(b"xyz"))
        data: bytes = await rocket.read_file(path)
        return data

    assert rocket.run(main(), engine=engine) == b"xyz"


def test_directory_helpers(engine: str, tmp_path: Path) -> None:
    """mkdir (parents, exist_ok), listdir, scandir, rename and unlink act like os/pathlib."""
    top = tmp_path / "a"
    deep = top / "b" / "c"

    def main() -> _Gen:
        with pytest.raises(FileNotFoundError):
            yield rocket.mkdir(deep)
        yield rocket.mkdir(deep, parents=True)
        with pytest.raises(FileExistsError):
            yield rocket.mkdir(deep)
        yield rocket.mkdir(deep, exist_ok=True)
        yield rocket.write_file(top / "x", b"1")
        names = yield rocket.listdir(top)
        entries = yield rocket.scandir(top)
        yield rocket.rename(top / "x", top / "y")
        renamed = yield rocket.listdir(top)
        yield rocket.unlink(top / "y")
        with pytest.raises(FileNotFoundError):
            yield rocket.unlink(top / "y")
        left = yield rocket.listdir(top)
        return names, entries, renamed, left

    names, entries, renamed, left = rocket.run(main(), engine=engine)
    assert sorted(names) == ["b", "x"]
    assert all(isinstance(e, os.DirEntry) for e in entries)
    assert sorted((e.name, e.is_dir()) for e in entries) == [("b", True), ("x", False)]
    assert sorted(renamed) == ["b", "y"]
    assert left == ["b"]
    assert deep.is_dir()


@pytest.mark.parametrize("mode", ["", "rw", "rr", "q", "rbt", "b", "+", "r+bb", "U"])
def test_bad_mode_says_what_to_pass(tmp_path: Path, mode: str) -> None:
    """A bad mode string raises ValueError naming the modes to pass, before any I/O."""
    with pytest.raises(ValueError, match=r"invalid mode .*pass 'rb', 'wb'"):
        rocket.open_file(tmp_path / "f", mode)


def test_bad_open_file_arguments(tmp_path: Path) -> None:
    """A non-str mode, text arguments in binary mode and a bad newline each raise at the call."""
    with pytest.raises(TypeError, match="must be a str"):
        rocket.open_file(tmp_path / "f", 0)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="binary mode 'rb' takes no encoding"):
        rocket.open_file(tmp_path / "f", "rb", encoding="utf-8")
    with pytest.raises(ValueError, match="newline must be one of"):
        rocket.open_file(tmp_path / "f", "r", newline="x")
    with pytest.raises(LookupError):
        rocket.open_file(tmp_path / "f", "r", encoding="no-such-codec")


def test_rocket_open_with_a_mode_string_says_to_use_flags(tmp_path: Path) -> None:
    """rocket.open(path, "w") (a mode string, not flags) raises TypeError showing the flags."""
    with pytest.raises(TypeError, match=r"not 'w'.*os\.O_WRONLY \| os\.O_CREAT"):
        rocket.open(tmp_path / "f", "w")  # type: ignore[arg-type]


def test_closed_file_errors(engine: str, tmp_path: Path) -> None:
    """Every I/O method of a closed File raises ValueError; closing again does nothing."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "r+b")
        yield f.close()
        yield f.close()
        f.__exit__(None, None, None)
        for call in (f.read, f.readline, f.fsync, f.tell, f.fileno, f.truncate):
            with pytest.raises(ValueError, match="closed file"):
                call()
        with pytest.raises(ValueError, match="closed file"):
            f.write(b"x")
        with pytest.raises(ValueError, match="closed file"):
            f.seek(0)
        return f

    assert rocket.run(main(), engine=engine).closed


def test_read_only_and_write_only_files(engine: str, tmp_path: Path) -> None:
    """Writing a file opened to read (or reading one opened to write) says which mode to use."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")

    def main() -> _Gen:
        f = yield rocket.open_file(path, "rb")
        with f, pytest.raises(io.UnsupportedOperation, match=r"not writable.*'r\+b'"):
            f.write(b"x")
        f = yield rocket.open_file(path, "ab")
        with f, pytest.raises(io.UnsupportedOperation, match=r"not readable.*'rb'"):
            f.read()

    rocket.run(main(), engine=engine)


def test_text_write_takes_str_and_binary_takes_bytes(engine: str, tmp_path: Path) -> None:
    """Writing bytes to a text file or str to a binary file is a TypeError that says why."""

    def main() -> _Gen:
        t = yield rocket.open_file(tmp_path / "t", "w")
        with t, pytest.raises(TypeError, match="text mode takes str"):
            t.write(b"x")
        b = yield rocket.open_file(tmp_path / "b", "wb")
        with b, pytest.raises(TypeError, match="not str"):
            b.write("x")

    rocket.run(main(), engine=engine)


def test_second_fiber_on_a_busy_file_raises(engine: str, tmp_path: Path) -> None:
    """A second fiber's request on a File whose read is under way raises RuntimeError."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100_000)

    def reader(f: rocket.File[bytes]) -> _Gen:
        return (yield f.read())

    def main() -> _Gen:
        f = yield rocket.open_file(path)
        with f:
            first = yield rocket.spawn(reader(f))
            second = yield rocket.spawn(reader(f))
            data = yield rocket.join(first)
            with pytest.raises(RuntimeError, match="another fiber is already doing I/O"):
                yield rocket.join(second)
            return data

    assert rocket.run(main(), engine=engine) == b"x" * 100_000


def test_two_files_on_one_path_keep_their_own_positions(engine: str, tmp_path: Path) -> None:
    """Fibers reading one file through their own File objects each get all of it, in order."""
    path = tmp_path / "f"
    payload = os.urandom(400_000)
    path.write_bytes(payload)

    def reader() -> _Gen:
        f = yield rocket.open_file(path)
        with f:
            chunks = []
            while chunk := (yield f.read(10_000)):
                chunks.append(chunk)
            return b"".join(chunks)

    def main() -> _Gen:
        fibers = []
        for _ in range(4):
            fibers.append((yield rocket.spawn(reader())))
        results = []
        for fiber in fibers:
            results.append((yield rocket.join(fiber)))
        return results

    assert rocket.run(main(), engine=engine) == [payload] * 4


def test_cancelled_read_skips_and_repeats_nothing(engine: str, tmp_path: Path) -> None:
    """A read cut short by a timeout leaves the File usable; the next read goes on from there."""
    path = tmp_path / "f"
    path.write_bytes(b"abcdef" * 20_000)

    def main() -> _Gen:
        f = yield rocket.open_file(path)
        with f:
            first = b""
            with rocket.move_on_after(0):
                first = yield f.read(3)
            position = f.tell()
            second = yield f.read(3)
            return first, position, second

    first, position, second = rocket.run(main(), engine=engine)
    assert position == len(first)
    assert first + second == b"abcdef"[: len(first) + 3]


def test_no_fd_leak(engine: str, tmp_path: Path) -> None:
    """Opening, failing to open, reading and writing files leaves no fd open."""
    path = tmp_path / "f"
    path.write_bytes(b"abc\n")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xff")

    def main() -> _Gen:
        for _ in range(20):
            f = yield rocket.open_file(path, "r+b")
            with f:
                yield f.readline()
            f = yield rocket.open_file(path, "a", encoding="utf-8")
            yield f.write("x")
            yield f.close()
            with pytest.raises(FileExistsError):
                yield rocket.open_file(path, "xb")
            with pytest.raises(FileNotFoundError):
                yield rocket.read_file(tmp_path / "missing")
            with pytest.raises(UnicodeDecodeError):
                yield rocket.read_file(bad, encoding="ascii")
            yield rocket.write_file(tmp_path / "g", b"data")
            yield rocket.read_file(tmp_path / "g")

    before = _open_fds()
    rocket.run(main(), engine=engine)
    assert _open_fds() == before
