"""``python -m rocket bench``: rocket against the Python peers, in one run.

* ``echo``: the C project's echo benchmark -- each server in its own process
  pinned to one core, a C load generator pinned to the other.
* ``files``: fibers looping over open/write/read/close, against threads and
  asyncio with ``to_thread``.
* ``switch``: two fibers passing the turn, against threads and asyncio.

See ``docs/benchmarks.md``.
"""

from __future__ import annotations

__all__: list[str] = []
