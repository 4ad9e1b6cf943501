"""Command line of ``python -m rocket bench``: run, print the tables, save JSON and a chart."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from rocket.bench import echo, micro, servers
from rocket.bench.loadgen import c_loadgen

__all__ = ["main"]

QUICK_CLIENTS, QUICK_SIZES, QUICK_DURATION, QUICK_WARMUP = [50], [128], 2.0, 0.5
FULL_CLIENTS, FULL_SIZES, FULL_DURATION, FULL_WARMUP = (
    [1, 50, 150, 300, 500, 1000],
    [1, 128, 512, 1000],
    5.0,
    1.0,
)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rocket bench", description="rocket against the Python peers, in one run"
    )
    parser.add_argument(
        "benchmarks", nargs="*", metavar="echo|files|switch", help="which to run (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="one echo cell, small runs (< 1 min)")
    parser.add_argument("--clients", type=_ints, help="echo: e.g. 1,50,150,300,500,1000")
    parser.add_argument("--sizes", type=_ints, help="echo: message bytes, e.g. 1,128,512,1000")
    parser.add_argument(
        "--duration", type=float, help="echo: seconds measured per cell (default 5)"
    )
    parser.add_argument("--servers", help="echo: comma-separated server names (default: all here)")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="draw requests/s against clients")
    return parser


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def run_echo(args: argparse.Namespace) -> list[dict[str, Any]]:
    clients: list[int] = args.clients or (QUICK_CLIENTS if args.quick else FULL_CLIENTS)
    sizes: list[int] = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    duration: float = args.duration or (QUICK_DURATION if args.quick else FULL_DURATION)
    warmup = QUICK_WARMUP if args.quick else FULL_WARMUP
    names = args.servers.split(",") if args.servers else list(servers.SERVERS)
    unknown = [n for n in names if n not in servers.SERVERS]
    if unknown:
        raise SystemExit(f"unknown server(s) {unknown}; choose from {list(servers.SERVERS)}")
    runnable = []
    for name in names:
        why = servers.available(name)
        if why:
            print(f"  skipping {name}: {why}")
        else:
            runnable.append(name)
    generator = (
        "C load generator"
        if c_loadgen()
        else "Python load generator (no C compiler: lower ceiling)"
    )
    print(f"echo: {generator}; server on core 0, load on core 1; {duration:g} s per cell")
    cells: list[dict[str, Any]] = []
    for size in sizes:
        for count in clients:
            rows = []
            for name in runnable:
                try:
                    rows.append(echo.run_cell(name, count, size, warmup, duration))
                except RuntimeError as exc:  # one broken server must not end the run
                    print(f"  {name} failed at {count} x {size} B: {exc}")
            _print_echo(rows)
            cells.extend(row.as_dict() for row in rows)
    _print_summary(cells)
    return cells


def _print_echo(rows: list[echo.Cell]) -> None:
    by = {row.server: row for row in rows}
    print(f"\n  {rows[0].clients} clients x {rows[0].size} B")
    print(
        f"  {'server':<18}{'req/s':>10}{'CPU us/req':>12}{'x threads':>11}{'x asyncio':>11}"
        f"{'loadgen CPU':>13}{'errors':>8}"
    )
    for row in rows:
        ratios = []
        for base in ("threads", "asyncio-streams"):
            ref = by.get(base)
            ratios.append(f"{row.requests_per_s / ref.requests_per_s:.2f}" if ref else "-")
        print(
            f"  {row.server:<18}{row.requests_per_s:>10,.0f}{row.server_cpu_us_per_request:>12.1f}"
            f"{ratios[0]:>11}{ratios[1]:>11}{row.loadgen_cpu_percent:>12.0f}%{row.errors:>8}"
        )


def _print_summary(cells: list[dict[str, Any]]) -> None:
    """Geometric means over the cells with >= 50 clients, relative to threads and asyncio."""
    big = [c for c in cells if c["clients"] >= 50]
    if not big:
        return
    names = sorted({c["server"] for c in big})
    print("\n  geometric mean over cells with >= 50 clients (requests/s ratio; CPU/request ratio)")
    for base in ("threads", "asyncio-streams"):
        ref = {(c["clients"], c["size"]): c for c in big if c["server"] == base}
        if not ref:
            continue
        for name in names:
            if name == base:
                continue
            mine = [c for c in big if c["server"] == name and (c["clients"], c["size"]) in ref]
            speed = _geomean(
                [
                    c["requests_per_s"] / ref[(c["clients"], c["size"])]["requests_per_s"]
                    for c in mine
                ]
            )
            cpu = _geomean(
                [
                    c["server_cpu_us_per_request"]
                    / ref[(c["clients"], c["size"])]["server_cpu_us_per_request"]
                    for c in mine
                ]
            )
            print(f"  {name:<18} vs {base:<16} {speed:6.2f}x req/s   {cpu:6.2f}x CPU/req")


def run_files(args: argparse.Namespace) -> list[dict[str, Any]]:
    loops = 100 if args.quick else 500
    results = []
    for size in [4096] if args.quick else [4096, 16 * 1024 * 1024]:
        count = loops if size <= 65536 else 2
        print(f"\nfiles: 20 workers x {count} loops of open/write/read/close, {size} B")
        rows = {name: micro.files(name, 20, count, size) for name in micro.FILES}
        for name, rate in rows.items():
            print(
                f"  {name:<20}{rate:>12,.0f} loops/s  {rate / rows['threads']:6.2f}x threads"
                f"  {rate / rows['asyncio-to_thread']:6.2f}x asyncio"
            )
            results.append({"benchmark": "files", "server": name, "size": size, "per_s": rate})
    return results


def run_switch(args: argparse.Namespace) -> list[dict[str, Any]]:
    switches = 100_000 if args.quick else 1_000_000
    print(f"\nswitch: two workers passing the turn, {switches:,} switches")
    rows: dict[str, float] = {}
    for name, bench in micro.SWITCH.items():
        try:
            rows[name] = bench(switches // (100 if name == "threads" else 1))
        except ImportError:
            print(f"  skipping {name}: not installed")
    results = []
    for name, rate in rows.items():
        print(
            f"  {name:<20}{rate:>14,.0f} switches/s  {rate / rows['asyncio']:6.2f}x asyncio"
            f"  {rate / rows['threads']:8.1f}x threads"
        )
        results.append({"benchmark": "switch", "server": name, "per_s": rate})
    return results


def _plot(cells: list[dict[str, Any]], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'rocket[bench]'") from None
    sizes = sorted({c["size"] for c in cells})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        for name in sorted({c["server"] for c in cells}):
            points = sorted(
                (c["clients"], c["requests_per_s"])
                for c in cells
                if c["server"] == name and c["size"] == size
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_title(f"echo, {size} B messages")
        ax.set_xlabel("clients")
        ax.set_ylabel("requests/s")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    print(f"chart written to {path}")


def main(argv: list[str]) -> int:
    """Run the chosen benchmarks; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.benchmarks = args.benchmarks or ["echo", "files", "switch"]
    wrong = set(args.benchmarks) - {"echo", "files", "switch"}
    if wrong:
        parser.error(f"unknown benchmark(s) {sorted(wrong)}; choose from echo, files, switch")
    report: dict[str, Any] = {}
    if "echo" in args.benchmarks:
        report["echo"] = run_echo(args)
    if "files" in args.benchmarks:
        report["files"] = run_files(args)
    if "switch" in args.benchmarks:
        report["switch"] = run_switch(args)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
        print(f"figures written to {args.json}")
    if args.plot:
        if not report.get("echo"):
            print("--plot draws the echo benchmark; run it too", file=sys.stderr)
            return 2
        _plot(report["echo"], args.plot)
    return 0
