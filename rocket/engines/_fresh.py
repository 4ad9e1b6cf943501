"""Bytes objects for the kernel to fill: a big file read without zero-filling first.

``bytes(n)`` zero-fills its ``n`` bytes (calloc: 1.7 ms for 16 MiB on the
development machine), all of which a full read then overwrites. CPython's own
``os.read`` asks ``PyBytes_FromStringAndSize(NULL, n)`` for storage that is not
initialised; :func:`unfilled_bytes` does the same through ``ctypes``.

Invariant: such an object is seen by no one but the kernel until its read has
completed; the finisher hands out only the bytes the kernel wrote (a short
read's are copied out, the rest is dropped unseen). Where the C API is not
reachable (an interpreter without ``ctypes.pythonapi``) it is plain ``bytes(n)``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["unfilled_bytes"]


def _c_api() -> Callable[[int], bytes]:
    try:
        import ctypes

        new = ctypes.pythonapi.PyBytes_FromStringAndSize
    except (ImportError, AttributeError):  # pragma: no cover - not CPython
        return bytes
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]

    def unfilled(size: int) -> bytes:
        data: bytes = new(None, size)
        return data

    return unfilled


#: ``unfilled_bytes(n)``: a bytes object of length n whose contents are undefined.
unfilled_bytes: Callable[[int], bytes] = _c_api()
