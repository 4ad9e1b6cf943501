"""``python -m rocket info``: what rocket finds on this machine.

Prints the platform, the kernel, Python, the ``liburing`` package, which engine
``engine="auto"`` chooses and why, and which io_uring operations the kernel
supports (the probe), marking those rocket needs.
"""

from __future__ import annotations

import os
import platform
import sys

from rocket.engines import auto_choice

__all__ = ["main"]


def _liburing_version() -> str:
    try:
        from rocket.engines import _liburing
    except ImportError as exc:
        return f"not importable ({exc})"
    return _liburing.LIBURING_VERSION


def _probe() -> list[str]:
    """One line per operation rocket needs: supported or missing."""
    try:
        from rocket.engines import _liburing
        from rocket.engines.uring import REQUIRED_OPS
    except Exception as exc:  # ImportError, or EngineUnavailable from the engine module
        return [f"  (no probe: {exc})"]
    try:
        supported = _liburing.probe_ops()
    except (OSError, RuntimeError) as exc:  # the package raises RuntimeError on EPERM
        return [
            f"  (the probe failed: {exc}; io_uring_register may be refused by a seccomp filter)"
        ]
    lines = [f"  {op:<28} {'yes' if supported.get(op) else 'MISSING'}" for op in REQUIRED_OPS]
    others = sum(1 for op, ok in supported.items() if ok and op not in REQUIRED_OPS)
    lines.append(f"  (and {others} more operations rocket does not use)")
    return lines


def main(argv: list[str]) -> int:
    """Print the report; returns the exit status (0)."""
    if argv:
        print("usage: python -m rocket info", file=sys.stderr)
        return 2
    disabled_path = "/proc/sys/kernel/io_uring_disabled"
    try:
        with open(disabled_path) as file:
            disabled = file.read().strip()
    except OSError:
        disabled = "(not present)"
    engine, why = auto_choice()
    print(f"platform:          {platform.platform()}")
    print(f"kernel:            {platform.system()} {platform.release()}")
    print(f"python:            {sys.version.split()[0]} ({sys.executable})")
    print(f"liburing package:  {_liburing_version()}")
    print(f"io_uring_disabled: {disabled}")
    print(f"ROCKET_ENGINE:     {os.environ.get('ROCKET_ENGINE', '(not set)')}")
    print(f"auto chooses:      {engine}")
    print(f"because:           {why}")
    print("io_uring operations rocket needs:")
    for line in _probe():
        print(line)
    return 0
