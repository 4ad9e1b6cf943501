"""``python -m rocket``: command-line tools.

* ``python -m rocket bench [--quick] ...`` -- the benchmarks (see ``docs/benchmarks.md``).
* ``python -m rocket info`` -- platform, kernel, and which engine ``auto`` picks and why.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit status."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    command, rest = args[0], args[1:]
    if command == "bench":
        from rocket.bench.cli import main as bench_main

        return bench_main(rest)
    if command == "info":
        from rocket.info import main as info_main

        return info_main(rest)
    print(f"python -m rocket: unknown command {command!r}; try 'bench' or 'info'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
