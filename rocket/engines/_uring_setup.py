"""Whether io_uring can be used here, and why not: the checks behind the io_uring engine.

``open_ring`` makes the engine's ring or raises :class:`~rocket.EngineUnavailable`
with the reason and what to do about it (the sysctl, the seccomp profile, the
kernel, the locked-memory limit); ``engine='auto'`` falls back on that error.
"""

from __future__ import annotations

import errno
import platform
import resource

from rocket.engines import _liburing
from rocket.errors import EngineUnavailable

__all__ = [
    "ADVICE",
    "IO_URING_DISABLED",
    "REQUIRED_OPS",
    "io_uring_disabled",
    "missing_ops",
    "open_ring",
]

#: Kernel operations the engine uses; the probe must report all of them.
REQUIRED_OPS = (
    "IORING_OP_READ",
    "IORING_OP_WRITE",
    "IORING_OP_OPENAT",
    "IORING_OP_CLOSE",
    "IORING_OP_FSYNC",
    "IORING_OP_STATX",
    "IORING_OP_ACCEPT",
    "IORING_OP_CONNECT",
    "IORING_OP_RECV",
    "IORING_OP_SEND",
    "IORING_OP_SHUTDOWN",
    "IORING_OP_TIMEOUT",
    "IORING_OP_LINK_TIMEOUT",
    "IORING_OP_ASYNC_CANCEL",
    "IORING_OP_POLL_ADD",
    "IORING_OP_SPLICE",
)

#: Linux's switch: 0 io_uring for all, 1 only for kernel.io_uring_group, 2 for nobody.
IO_URING_DISABLED = "/proc/sys/kernel/io_uring_disabled"

ADVICE = "or use engine='selector' (what engine='auto' falls back to)"


def io_uring_disabled() -> int | None:
    """The value of :data:`IO_URING_DISABLED`, or None where it does not exist."""
    try:
        with open(IO_URING_DISABLED) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


_probe_cache: list[str] | None = None


def missing_ops() -> list[str]:
    """The :data:`REQUIRED_OPS` that this kernel's io_uring lacks (probed once)."""
    global _probe_cache
    if _probe_cache is None:
        supported = _liburing.probe_ops()
        _probe_cache = [op for op in REQUIRED_OPS if not supported.get(op)]
    return list(_probe_cache)


def _unavailable(exc: OSError, disabled: int | None) -> EngineUnavailable | OSError:
    """Explain a failed io_uring_setup: why, and what to do about it.

    EPERM, EACCES and ENOSYS mean io_uring cannot be used here (so ``auto`` falls
    back); anything else, such as ENOMEM, is a real error and stays an OSError.
    """
    code = exc.errno
    if code == errno.EPERM and disabled == 1:
        why = (
            "io_uring_setup was refused (EPERM): /proc/sys/kernel/io_uring_disabled is 1, "
            "so only members of the group in /proc/sys/kernel/io_uring_group may use it; "
            "add this user to that group,"
        )
    elif code in (errno.EPERM, errno.EACCES):
        why = (
            f"io_uring_setup was refused ({errno.errorcode[code]}), most likely by a seccomp "
            f"filter: the default profiles of Docker, Podman and containerd block io_uring. "
            f"Run with a seccomp profile that allows io_uring_setup, io_uring_enter and "
            f"io_uring_register (docker run --security-opt seccomp=PROFILE.json),"
        )
    elif code == errno.ENOSYS:
        why = (
            f"io_uring_setup does not exist here (ENOSYS): the kernel (Linux "
            f"{platform.release()}) is older than 5.1 or built without CONFIG_IO_URING, or a "
            f"sandbox such as gVisor hides it; use another kernel,"
        )
    elif code == errno.ENOMEM:
        soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft} bytes"
        return OSError(
            errno.ENOMEM,
            f"io_uring_setup failed with ENOMEM even for a 64-entry ring: the locked-memory "
            f"limit (RLIMIT_MEMLOCK, 'ulimit -l') is {limit}; raise it (ulimit -l unlimited, "
            f"or LimitMEMLOCK=infinity for a systemd service), {ADVICE}",
        )
    else:
        return exc
    return EngineUnavailable(f"io_uring engine unavailable: {why} {ADVICE}")


def open_ring(entries: int) -> _liburing.Ring:
    """A ring of (up to) ``entries`` SQEs, or EngineUnavailable saying why there is none.

    Raises:
        EngineUnavailable: io_uring cannot be used here (disabled, refused by a
            seccomp filter, missing from the kernel, or lacking an opcode).
        OSError: a real error, such as ENOMEM, explained.
    """
    disabled = io_uring_disabled()
    if disabled == 2:
        raise EngineUnavailable(
            f"io_uring engine unavailable: io_uring is disabled on this machine "
            f"(/proc/sys/kernel/io_uring_disabled is 2); an administrator can allow it "
            f"with 'sysctl kernel.io_uring_disabled=0', {ADVICE}"
        )
    try:
        # Retries with fewer entries on ENOMEM, and without the fast flags on EINVAL.
        ring = _liburing.Ring(entries)
    except OSError as exc:
        raise _unavailable(exc, disabled) from exc
    missing = missing_ops()
    if missing:
        ring.close()
        raise EngineUnavailable(
            f"io_uring engine unavailable: this kernel's io_uring (Linux "
            f"{platform.release()}) lacks {', '.join(missing)}, which rocket needs "
            f"(Linux 5.11 and newer have them all); upgrade the kernel, {ADVICE}"
        )
    return ring
