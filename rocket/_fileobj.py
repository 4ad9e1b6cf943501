"""``File``: a file object for fibers (:func:`rocket.open_file` makes one).

The invariants and the design are in :mod:`rocket.files`' docstring.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Generator
from typing import Any, AnyStr, Generic

from rocket import _checks
from rocket.ops import ToThread, Write, close, fsync, read
from rocket.request import Composite, Request

__all__ = ["File"]

_Body = Generator[Request[Any], Any, Any]
_CHUNK = 65536
_BIG_CHUNK = 1 << 20  # read(-1) reads in larger chunks: a 5 MiB file in 5 requests


class File(Generic[AnyStr]):
    """An open file for fibers, made by :func:`open_file`; see the module docstring.

    ``File[bytes]`` in binary mode, ``File[str]`` in text mode.
    """

    def __init__(
        self, fd: int, name: str, mode: str, readable: bool, writable: bool, append: bool
    ) -> None:
        self.name = name
        self.mode = mode
        self._fd = fd  # Invariant: -1 once closed
        self._readable = readable
        self._writable = writable
        self._append = append
        self._pos = 0
        self._rbuf = bytearray()
        self._busy = False
        self._text = False
        self._decoder: Any = None
        self._encoder: Any = None
        self._decoded = ""  # text read and decoded but not yet returned
        self._newline: str | None = None

    def _set_text(self, encoding: str, errors: str, newline: str | None) -> None:
        self._text = True
        self._newline = newline
        decoder: Any = codecs.getincrementaldecoder(encoding)(errors)
        if newline is None or newline == "":
            decoder = io.IncrementalNewlineDecoder(decoder, translate=newline is None)
        self._decoder = decoder
        self._encoder = codecs.getincrementalencoder(encoding)(errors)

    # ----------------------------------------------------------- checks

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._fd < 0

    def fileno(self) -> int:
        """The file's fd.

        Raises:
            ValueError: the file is closed.
        """
        return self._check("fileno")

    def _check(self, op: str, need: str = "") -> int:
        if self._fd < 0:
            raise ValueError(f"File.{op}(): I/O on a closed file {self.name!r}")
        if need == "r" and not self._readable:
            raise io.UnsupportedOperation(
                f"File.{op}(): {self.name!r} is not readable (opened with mode {self.mode!r}); "
                "open it with 'rb', 'r+b', 'r' or 'r+' to read"
            )
        if need == "w" and not self._writable:
            raise io.UnsupportedOperation(
                f"File.{op}(): {self.name!r} is not writable (opened with mode {self.mode!r}); "
                "open it with 'wb', 'ab', 'r+b', 'w', 'a' or 'r+' to write"
            )
        return self._fd

    def _run(self, op: str, body: _Body) -> Composite[Any]:
        return Composite(f"File.{op}", self._exclusive(op, body))

    def _exclusive(self, op: str, body: _Body) -> _Body:
        if self._busy:
            raise RuntimeError(
                f"File.{op}(): another fiber is already doing I/O on {self.name!r}; use a File "
                "from one fiber at a time (or open the file once per fiber)"
            )
        self._busy = True
        try:
            return (yield from body)
        finally:
            self._busy = False

    # ----------------------------------------------------------- reading

    def read(self, size: int = -1) -> Composite[AnyStr]:
        """Read ``size`` bytes (characters in text mode), fewer only at end of file.

        ``size=-1`` (the default) reads to the end of the file.
        """
        fd = self._check("read", "r")
        negative = type(size) is int and size < 0
        size = -1 if negative else _checks.size(size, "File.read")
        return self._run("read", self._read_text(fd, size) if self._text else self._read(fd, size))

    def _fill(self, fd: int, size: int) -> _Body:
        """Read one chunk into ``_rbuf``; False at end of file."""
        chunk = yield read(fd, size, self._pos + len(self._rbuf))
        self._rbuf += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        data = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        self._pos += len(data)
        return data

    def _read(self, fd: int, size: int) -> _Body:
        while size < 0 or len(self._rbuf) < size:
            want = _BIG_CHUNK if size < 0 else max(size - len(self._rbuf), _CHUNK)
            if not (yield from self._fill(fd, want)):
                break
        return self._take(len(self._rbuf) if size < 0 else size)

    def _decode_more(self, fd: int) -> _Body:
        """Decode one more chunk into ``_decoded``; False at end of file."""
        more = yield from self._fill(fd, _CHUNK)
        self._decoded += self._decoder.decode(self._take(len(self._rbuf)), final=not more)
        return more

    def _read_text(self, fd: int, size: int) -> _Body:
        while size < 0 or len(self._decoded) < size:
            if not (yield from self._decode_more(fd)):
                break
        n = len(self._decoded) if size < 0 else size
        text, self._decoded = self._decoded[:n], self._decoded[n:]
        return text

    def readline(self) -> Composite[AnyStr]:
        """Read one line, its line ending included; ``b""`` or ``""`` at end of file."""
        fd = self._check("readline", "r")
        return self._run("readline", self._readline_text(fd) if self._text else self._readline(fd))

    def _readline(self, fd: int) -> _Body:
        start = 0
        while (end := self._rbuf.find(b"\n", start)) < 0:
            start = len(self._rbuf)
            if not (yield from self._fill(fd, _CHUNK)):
                return self._take(len(self._rbuf))
        return self._take(end + 1)

    def _line_end(self, eof: bool) -> int:
        """Where the first line of ``_decoded`` ends, or -1 (not known yet)."""
        text, newline = self._decoded, self._newline
        if newline != "":
            end = text.find(newline or "\n")
            return end + len(newline or "\n") if end >= 0 else -1
        for i, c in enumerate(text):  # newline="": any ending, left as it is
            if c == "\n":
                return i + 1
            if c == "\r":
                if i + 1 < len(text):
                    return i + 2 if text[i + 1] == "\n" else i + 1
                return i + 1 if eof else -1
        return -1

    def _readline_text(self, fd: int) -> _Body:
        more = True
        while (end := self._line_end(not more)) < 0:
            if not more:
                end = len(self._decoded)
                break
            more = yield from self._decode_more(fd)
        line, self._decoded = self._decoded[:end], self._decoded[end:]
        return line

    def __aiter__(self) -> File[AnyStr]:
        return self

    async def __anext__(self) -> AnyStr:
        """The next line (``async for line in f``), until end of file."""
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # ----------------------------------------------------------- writing

    def write(self, data: Any) -> Composite[int]:
        """Write all of ``data`` (bytes; str in text mode); the result is its length."""
        fd = self._check("write", "w")
        if not self._text:
            raw = _checks.data(data, "File.write")
            return self._run("write", self._write(fd, raw, len(raw)))
        if not isinstance(data, str):
            raise TypeError(f"File.write() in text mode takes str, not {type(data).__name__}")
        return self._run("write", self._write_text(fd, data))

    def _write_text(self, fd: int, text: str) -> _Body:
        """Encode when the write runs, so a write refused as busy leaves the encoder alone."""
        length = len(text)
        if self._newline not in (None, "", "\n"):
            text = text.replace("\n", self._newline or "\n")
        return (yield from self._write(fd, self._encoder.encode(text), length))

    def _write(self, fd: int, raw: bytes, length: int) -> _Body:
        if self._decoded:
            raise io.UnsupportedOperation(
                f"File.write(): {self.name!r} has decoded text not yet read; "
                "seek() before writing after a text read"
            )
        self._rbuf.clear()  # what follows _pos is about to change
        done = 0
        while done < len(raw):
            offset = None if self._append else self._pos
            n = yield Write(fd, raw[done:], offset)
            if n == 0:  # the kernel reports a full disk as ENOSPC; 0 would loop forever
                raise OSError(f"File.write(): {self.name!r} took 0 of {len(raw) - done} bytes")
            done += n
            self._pos += n
        if self._append and raw:
            # O_APPEND put the data at the end and moved the kernel's position there
            # (the one request here that uses it); lseek(SEEK_CUR) reads it, no I/O.
            self._pos = os.lseek(fd, 0, os.SEEK_CUR)
        return length

    def truncate(self, size: int | None = None) -> Composite[int]:
        """Cut (or extend) the file to ``size`` bytes (default: the position); returns the size."""
        fd = self._check("truncate", "w")
        if size is not None:
            _checks.size(size, "File.truncate")
        return self._run("truncate", self._truncate(fd, size))

    def _truncate(self, fd: int, size: int | None) -> _Body:
        size = self._pos if size is None else size
        yield ToThread(os.ftruncate, (fd, size), {}, "ftruncate")
        self._rbuf.clear()
        return size

    def fsync(self) -> Request[None]:
        """Flush the file's data and metadata to storage."""
        return fsync(self._check("fsync"))

    # ----------------------------------------------------------- position

    def tell(self) -> int:
        """The position, in bytes from the start of the file.

        Raises:
            io.UnsupportedOperation: text mode, with decoded text not yet read.
        """
        self._check("tell")
        if self._decoded:
            raise io.UnsupportedOperation(
                "File.tell(): unknown in text mode while decoded text is waiting to be read"
            )
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> Composite[int]:
        """Move the position (``whence`` as for ``os.lseek``); the result is the new position.

        Text mode takes only ``seek(0)``, ``seek(f.tell())`` and ``seek(0, os.SEEK_END)``.
        """
        fd = self._check("seek")
        if whence not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END):
            raise ValueError(
                f"File.seek(): whence must be os.SEEK_SET, SEEK_CUR or SEEK_END, got {whence!r}"
            )
        if self._text and ((whence != os.SEEK_SET and offset != 0) or offset < 0):
            raise io.UnsupportedOperation(
                "File.seek(): text mode takes seek(0), seek(f.tell()) or seek(0, os.SEEK_END)"
            )
        return self._run("seek", self._seek(fd, offset, whence))

    def _seek(self, fd: int, offset: int, whence: int) -> _Body:
        base = 0
        if whence == os.SEEK_CUR:
            base = self._pos
        elif whence == os.SEEK_END:
            base = (yield ToThread(os.fstat, (fd,), {}, "fstat")).st_size
        if base + offset < 0:
            raise ValueError(f"File.seek(): negative position {base + offset}")
        self._pos = base + offset
        self._rbuf.clear()
        self._decoded = ""
        if self._decoder is not None:
            self._decoder.reset()
        return self._pos

    # ----------------------------------------------------------- closing

    def close(self) -> Composite[None]:
        """Close the file; idempotent (closing it again does nothing)."""
        return Composite("File.close", self._close())

    def _close(self) -> _Body:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            yield close(fd)

    def __enter__(self) -> File[AnyStr]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the fd at once (``os.close`` of a file does not wait for the disk)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    async def __aenter__(self) -> File[AnyStr]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<File {self.name!r} mode={self.mode!r} {state}>"
