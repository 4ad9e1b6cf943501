"""Argument checks shared by the request constructors.

Each check returns the normalised value or raises ``TypeError``/``ValueError``
with a message that names the operation, the argument and what was expected,
e.g. ``read() argument 'size' must be >= 0, got -1``.
"""

from __future__ import annotations

import math
import os
import socket
from typing import Any

__all__ = [
    "MAX_FD",
    "MAX_OFFSET",
    "MAX_SECONDS",
    "MAX_SIZE",
    "MAX_UNIX_PATH",
    "buffer",
    "data",
    "fileno",
    "mode",
    "offset",
    "open_flags",
    "path",
    "seconds",
    "size",
    "unix_path",
]

#: Largest size accepted for one read: Linux transfers at most 0x7ffff000 bytes.
MAX_SIZE = 0x7FFFF000
#: File descriptors are C ints.
MAX_FD = 2**31 - 1
#: File offsets are a signed 64-bit off_t.
MAX_OFFSET = 2**63 - 1
#: Longer durations are shortened to this (about 31.7 years): "practically
#: forever", and still within what every engine's timers can hold.
MAX_SECONDS = 1e9
#: An AF_UNIX path's bytes; ``sun_path`` holds 108 with the terminating NUL.
MAX_UNIX_PATH = 107


def _kind(value: object) -> str:
    return type(value).__name__


def fileno(value: Any, op: str, arg: str = "fd") -> int:
    """An fd from an int or from an object with ``fileno()`` (e.g. a socket)."""
    fd: int
    kind = type(value)
    if kind is int:
        fd = value
    elif kind is socket.socket:  # the common case, kept to one call
        fd = int(value.fileno())
    elif isinstance(value, bool) or not (isinstance(value, int) or hasattr(value, "fileno")):
        raise TypeError(
            f"{op}() argument {arg!r} must be an int file descriptor or an object "
            f"with fileno(), not {_kind(value)}"
        )
    else:
        fd = int(value) if isinstance(value, int) else int(value.fileno())
    if fd < 0 or fd > MAX_FD:
        raise ValueError(
            f"{op}() argument {arg!r} must be an open file descriptor (0 to {MAX_FD}), got {fd}"
        )
    return fd


def size(value: Any, op: str, arg: str = "size") -> int:
    """A byte count: an int from 0 to :data:`MAX_SIZE`."""
    count: int
    if type(value) is int:
        count = value
    else:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{op}() argument {arg!r} must be an int, not {_kind(value)}")
        count = int(value)
    if count < 0 or count > MAX_SIZE:
        raise ValueError(f"{op}() argument {arg!r} must be between 0 and {MAX_SIZE}, got {count}")
    return count


def offset(value: Any, op: str) -> int | None:
    """A file offset (int >= 0), or None for the current file position."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}() argument 'offset' must be an int or None, not {_kind(value)}")
    if value < 0:
        raise ValueError(f"{op}() argument 'offset' must be >= 0 or None, got {value}")
    if value > MAX_OFFSET:
        raise ValueError(
            f"{op}() argument 'offset' must be at most {MAX_OFFSET} (2**63-1), got {value}"
        )
    return int(value)


def open_flags(value: Any, op: str) -> int:
    """``os.open`` flags: an int made of ``os.O_*`` constants."""
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f"{value!r}" if isinstance(value, str) else _kind(value)
        raise TypeError(
            f"{op}() argument 'flags' must be os.O_* flags (an int), not {hint}: write "
            f"rocket.open(path) to read, or rocket.open(path, os.O_WRONLY | os.O_CREAT) to write"
        )
    if value < 0 or value > MAX_FD:
        raise ValueError(
            f"{op}() argument 'flags' must be os.O_* flags (0 to {MAX_FD}), got {value}"
        )
    return int(value)


def mode(value: Any, op: str) -> int:
    """Permission bits for a new file, e.g. ``0o644``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}() argument 'mode' must be an int such as 0o644, not {_kind(value)}")
    if value < 0 or value > 0o7777:
        raise ValueError(
            f"{op}() argument 'mode' must be permission bits from 0 to 0o7777 (e.g. 0o644), "
            f"got {value:#o}"
        )
    return int(value)


def data(value: Any, op: str, arg: str = "data") -> bytes:
    """Bytes to send or write; other bytes-like objects are copied into bytes."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        raise TypeError(
            f"{op}() argument {arg!r} must be bytes-like, not str (encode it first, "
            f"e.g. text.encode())"
        )
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"{op}() argument {arg!r} must be bytes-like, not {_kind(value)}") from None


def buffer(value: Any, op: str, arg: str = "buffer") -> Any:
    """A writable buffer (bytearray, writable memoryview, array...)."""
    if type(value) is bytearray:
        return value
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(
            f"{op}() argument {arg!r} must be a writable buffer such as bytearray, "
            f"not {_kind(value)}"
        ) from None
    if view.readonly:
        raise TypeError(
            f"{op}() argument {arg!r} must be writable, but {_kind(value)} is read-only"
        )
    if not view.c_contiguous:  # the kernel fills one run of bytes
        raise TypeError(
            f"{op}() argument {arg!r} must be a contiguous buffer, but this "
            f"{_kind(value)} has gaps (a strided slice such as view[::2]); pass a "
            f"bytearray and copy the bytes where they belong afterwards"
        )
    return value


def path(value: Any, op: str, arg: str = "path") -> str:
    """A file system path (str, bytes or os.PathLike) as str."""
    try:
        text = os.fsdecode(value)
    except TypeError:
        raise TypeError(
            f"{op}() argument {arg!r} must be str, bytes or os.PathLike, not {_kind(value)}"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{op}() argument {arg!r} must not contain a NUL byte: {text!r}")
    if not text:
        raise ValueError(f"{op}() argument {arg!r} must not be empty")
    return text


def unix_path(value: Any, op: str, arg: str = "path") -> str:
    """A file system path that fits in an AF_UNIX address (:data:`MAX_UNIX_PATH` bytes)."""
    text = path(value, op, arg)
    length = len(os.fsencode(text))
    if length > MAX_UNIX_PATH:
        raise ValueError(
            f"{op}() argument {arg!r} is {length} bytes long, but an AF_UNIX socket path can "
            f"have at most {MAX_UNIX_PATH} bytes (108 with the terminating NUL, the kernel's "
            f"limit); use a shorter path, e.g. in a directory nearer to '/' or relative to the "
            f"current directory: {text!r}"
        )
    return text


def seconds(value: Any, op: str, arg: str = "seconds", *, infinite_ok: bool = False) -> float:
    """A duration in seconds: a finite int or float >= 0 (or ``inf`` if ``infinite_ok``).

    Durations above :data:`MAX_SECONDS` (about 31.7 years) are shortened to it,
    on every engine: they mean "practically forever", and the kernel's timers
    reject (io_uring: EINVAL) or overflow on values near 2**63 ns. ``inf`` (a
    scope with no limit) stays ``inf``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}() argument {arg!r} must be a number of seconds, not {_kind(value)}")
    if infinite_ok:
        if math.isnan(value) or value < 0:
            raise ValueError(f"{op}() argument {arg!r} must be >= 0 (inf: no limit), got {value!r}")
        if value == math.inf:
            return math.inf
    elif not math.isfinite(value) or value < 0:
        raise ValueError(f"{op}() argument {arg!r} must be a finite number >= 0, got {value!r}")
    return min(float(value), MAX_SECONDS)
