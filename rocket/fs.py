"""Whole files and directories for fibers: ``read_file``, ``write_file``, ``unlink``...

::

    text = yield rocket.read_file("notes.txt", encoding="utf-8")
    yield rocket.write_file("copy.txt", text, encoding="utf-8")
    names = yield rocket.listdir(".")

``read_file``/``write_file`` open a :class:`~rocket.File` and close it however
they end; the directory helpers run their ``os`` call in a worker thread
(:func:`rocket.to_thread`: no engine has a request for them yet).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Generator
from typing import Any, overload

from rocket import _checks
from rocket.files import File, open_file
from rocket.ops import ToThread
from rocket.request import Composite, Request

__all__ = ["listdir", "mkdir", "read_file", "rename", "scandir", "unlink", "write_file"]

_Body = Generator[Request[Any], Any, Any]


@overload
def read_file(
    path: str | bytes | os.PathLike[str], *, encoding: None = ..., errors: None = ...
) -> Composite[bytes]: ...


@overload
def read_file(
    path: str | bytes | os.PathLike[str], *, encoding: str, errors: str | None = ...
) -> Composite[str]: ...


@overload
def read_file(
    path: str | bytes | os.PathLike[str], *, encoding: str | None = ..., errors: str | None = ...
) -> Composite[Any]: ...


def read_file(
    path: str | bytes | os.PathLike[str],
    *,
    encoding: str | None = None,
    errors: str | None = None,
) -> Composite[Any]:
    """The whole content of ``path``: bytes, or str when ``encoding`` is given."""
    text = encoding is not None or errors is not None
    opening = open_file(path, "r" if text else "rb", encoding=encoding, errors=errors)
    return Composite("read_file", _read_all(opening))


def _read_all(opening: Composite[File[Any]]) -> _Body:
    f = yield from opening
    try:
        return (yield from f.read())
    finally:
        yield from f.close()


def write_file(
    path: str | bytes | os.PathLike[str],
    data: Any,
    *,
    encoding: str | None = None,
    errors: str | None = None,
) -> Composite[int]:
    """Replace the content of ``path`` with ``data`` (bytes, or str: encoded, utf-8 by default).

    The result is ``len(data)``.
    """
    opening: Composite[File[Any]]
    if isinstance(data, str):
        opening = open_file(path, "w", encoding=encoding, errors=errors, newline="")
    else:
        if encoding is not None or errors is not None:
            raise TypeError("write_file(): encoding and errors are for str data, not bytes")
        data = _checks.data(data, "write_file")
        opening = open_file(path, "wb")
    return Composite("write_file", _write_all(opening, data))


def _write_all(opening: Composite[File[Any]], data: Any) -> _Body:
    f = yield from opening
    try:
        return (yield from f.write(data))
    finally:
        yield from f.close()


def unlink(path: str | bytes | os.PathLike[str]) -> ToThread[None]:
    """Remove a file (``os.unlink``, in a worker thread)."""
    path = _checks.path(path, "unlink")
    return ToThread(os.unlink, (path,), {}, f"unlink({path!r})")


def rename(
    src: str | bytes | os.PathLike[str], dst: str | bytes | os.PathLike[str]
) -> ToThread[None]:
    """Rename ``src`` to ``dst``, replacing it (``os.replace``, in a worker thread)."""
    src, dst = _checks.path(src, "rename", "src"), _checks.path(dst, "rename", "dst")
    return ToThread(os.replace, (src, dst), {}, f"rename({src!r}, {dst!r})")


def mkdir(
    path: str | bytes | os.PathLike[str],
    mode: int = 0o777,
    parents: bool = False,
    exist_ok: bool = False,
) -> ToThread[None]:
    """Make a directory, as ``pathlib.Path.mkdir`` does (in a worker thread)."""
    path = _checks.path(path, "mkdir")
    mode = _checks.mode(mode, "mkdir")
    return ToThread(
        pathlib.Path(path).mkdir, (mode, bool(parents), bool(exist_ok)), {}, f"mkdir({path!r})"
    )


def listdir(path: str | bytes | os.PathLike[str] = ".") -> ToThread[list[str]]:
    """The names in a directory (``os.listdir``, in a worker thread)."""
    path = _checks.path(path, "listdir")
    return ToThread(os.listdir, (path,), {}, f"listdir({path!r})")


def _scandir(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return list(entries)


def scandir(path: str | bytes | os.PathLike[str] = ".") -> ToThread[list[os.DirEntry[str]]]:
    """A directory's entries as a list of ``os.DirEntry`` (read in a worker thread)."""
    path = _checks.path(path, "scandir")
    return ToThread(_scandir, (path,), {}, f"scandir({path!r})")
