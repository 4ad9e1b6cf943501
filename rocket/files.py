"""File objects for fibers, made of the file requests (whole files, directories: :mod:`rocket.fs`).

::

    f = yield rocket.open_file("notes.txt", "w", encoding="utf-8")
    with f:
        yield f.write("héllo\\n")

Everything here is built on requests an engine already performs (``open``,
``read``, ``write``, ``close``, ``fsync``) and, for what has no request
(``ftruncate``, ``fstat``, directories), :func:`rocket.to_thread`. Every method of
:class:`File` that does I/O returns something to yield (a request or a
:class:`~rocket.Composite`), in both fiber styles.

A :class:`File` tracks its position itself and reads and writes at explicit
offsets (``pread``/``pwrite``), so the kernel's file position is never used: two
:class:`File` objects on one file, or fibers sharing a dup'd fd, cannot move each
other's position. Append mode writes with ``O_APPEND`` (the kernel puts every
write at the end). One fiber does I/O on a :class:`File` at a time; a second
fiber's request while one is under way raises ``RuntimeError`` (as
:class:`~rocket.Stream` does), because both would use the same offset.

Invariant: ``_rbuf`` holds the bytes of the file from offset ``_pos`` on that were
read and not yet returned; ``_pos + len(_rbuf)`` is where the next read starts.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Generator
from typing import Any, Literal, overload

from rocket import _checks
from rocket._fileobj import File
from rocket.ops import ToThread, close
from rocket.ops import open as open_fd
from rocket.request import Composite, Request

__all__ = ["File", "open_file"]

_Body = Generator[Request[Any], Any, Any]
_MODE_HINT = (
    "pass 'rb', 'wb', 'ab', 'xb' or 'r+b' for bytes, or 'r', 'w', 'a', 'x' or 'r+' for text"
)
_NEWLINES = (None, "", "\n", "\r", "\r\n")


def _parse_mode(mode: Any) -> tuple[int, bool, bool, bool, bool]:
    """``(flags, binary, readable, writable, append)`` for an ``open()`` mode string."""
    if not isinstance(mode, str):
        raise TypeError(f"open_file() argument 'mode' must be a str, not {type(mode).__name__}")
    kinds = [c for c in mode if c in "rwax"]
    if (
        len(kinds) != 1
        or len(set(mode)) != len(mode)
        or set(mode) - set("rwax+bt")
        or ("b" in mode and "t" in mode)
    ):
        raise ValueError(f"open_file(): invalid mode {mode!r}; {_MODE_HINT}")
    kind, plus = kinds[0], "+" in mode
    flags = {
        "r": 0,
        "w": os.O_CREAT | os.O_TRUNC,
        "a": os.O_CREAT | os.O_APPEND,
        "x": os.O_CREAT | os.O_EXCL,
    }[kind]
    flags |= os.O_RDWR if plus else (os.O_RDONLY if kind == "r" else os.O_WRONLY)
    return flags, "b" in mode, kind == "r" or plus, kind != "r" or plus, kind == "a"


_BinaryMode = Literal[
    "rb", "wb", "ab", "xb", "r+b", "w+b", "a+b", "x+b", "rb+", "wb+", "ab+", "xb+", "br"
]
_TextMode = Literal["r", "w", "a", "x", "r+", "w+", "a+", "x+", "rt", "wt", "at", "xt"]


@overload
def open_file(
    path: str | bytes | os.PathLike[str],
    mode: _BinaryMode = ...,
    *,
    encoding: None = ...,
    errors: None = ...,
    newline: None = ...,
    perms: int = ...,
) -> Composite[File[bytes]]: ...


@overload
def open_file(
    path: str | bytes | os.PathLike[str],
    mode: _TextMode,
    *,
    encoding: str | None = ...,
    errors: str | None = ...,
    newline: str | None = ...,
    perms: int = ...,
) -> Composite[File[str]]: ...


@overload
def open_file(
    path: str | bytes | os.PathLike[str],
    mode: str,
    *,
    encoding: str | None = ...,
    errors: str | None = ...,
    newline: str | None = ...,
    perms: int = ...,
) -> Composite[File[Any]]: ...


def open_file(
    path: str | bytes | os.PathLike[str],
    mode: str = "rb",
    *,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    perms: int = 0o666,
) -> Composite[File[Any]]:
    """Open ``path`` like the built-in ``open()``; the result is a :class:`File`.

    Args:
        path: the file.
        mode: ``"rb"``, ``"wb"``, ``"ab"``, ``"xb"``, ``"r+b"`` (bytes) or ``"r"``,
            ``"w"``, ``"a"``, ``"x"``, ``"r+"`` (text), ``+`` allowed on each.
        encoding: text mode only; default ``"utf-8"`` (not the locale's).
        errors: text mode only, as for ``bytes.decode`` (default ``"strict"``).
        newline: text mode only, as for ``open()``: None reads any of ``\\n``,
            ``\\r\\n``, ``\\r`` as ``\\n``.
        perms: permission bits of a file it creates (the umask applies).

    Raises:
        ValueError: a bad mode, or text arguments in binary mode.
    """
    flags, binary, readable, writable, append = _parse_mode(mode)
    path = _checks.path(path, "open_file")
    if binary and (encoding is not None or errors is not None or newline is not None):
        raise ValueError(
            f"open_file(): binary mode {mode!r} takes no encoding, errors or newline; "
            f"drop them, or open in text mode (e.g. {mode.replace('b', '')!r})"
        )
    if newline not in _NEWLINES:
        raise ValueError(f"open_file(): newline must be one of {_NEWLINES}, got {newline!r}")
    if not binary:
        codecs.lookup(encoding or "utf-8")  # LookupError now, not at the first read
    request = open_fd(path, flags, perms)

    def body() -> _Body:
        fd = yield request
        try:
            f = File(fd, path, mode, readable, writable, append)
            if not binary:
                f._set_text(encoding or "utf-8", errors or "strict", newline)
            if append:
                f._pos = (yield ToThread(os.fstat, (fd,), {}, "fstat")).st_size
        except BaseException:
            yield close(fd)
            raise
        return f

    return Composite("open_file", body())
