"""Command line of ``python -m rocket bench``: run, print the tables, save JSON and a chart."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rocket.bench import echo, micro, multicore, servers
from rocket.bench.loadgen import c_loadgen
from rocket.bench.stats import geomean, interleave, spread

__all__ = ["main"]

QUICK_CLIENTS, QUICK_SIZES, QUICK_DURATION, QUICK_WARMUP = [50], [128], 2.0, 1.0
FULL_CLIENTS, FULL_SIZES, FULL_DURATION, FULL_WARMUP = (
    [1, 50, 150, 300, 500, 1000],
    [1, 128, 512, 1000],
    5.0,
    1.0,
)
#: --quick: the ceiling, rocket's two styles, and what a Python user would pick instead
QUICK_SERVERS = [
    "trampoline",
    "rocket-io_uring",
    "rocket-streams",
    "threads",
    "asyncio-protocol",
    "asyncio-streams",
    "uvloop-protocol",
    "uvloop-streams",
]
#: the columns "x trampoline", "x threads", "x asyncio": server name -> column title
BASELINES = {"trampoline": "x trampoline", "threads": "x threads", "asyncio-streams": "x asyncio"}


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
        "--duration", type=float, help="echo: seconds measured per run (default 5; --quick 2)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help="echo: seconds of load on a separate first set of connections (default 1)",
    )
    parser.add_argument(
        "--repeat", type=int, help="echo: runs of each server per cell (default 3; --quick 1)"
    )
    parser.add_argument("--servers", help="echo: comma-separated server names (default: all here)")
    parser.add_argument(
        "--workers",
        metavar="N",
        help="only the echo grid with rocket.run_workers: N runs 1..N workers, or a list: 1,2,4",
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    parser.add_argument("--plot", metavar="FILE.png", help="draw requests/s against clients")
    return parser


def _runnable(names: list[str], quick: bool) -> list[str]:
    """The servers of ``names`` that can run here; says why each other one is skipped."""
    runnable = []
    for name in names:
        why = servers.available(name)
        if why:
            print(f"  skipping {name}: {why}")
            if quick and name == "rocket-io_uring" and "rocket-selector" not in names:
                print("  (rocket's echo example runs on the selector engine instead)")
                runnable.append("rocket-selector")
        else:
            runnable.append(name)
    return runnable


def summarize(runs: list[echo.Cell]) -> dict[str, Any]:
    """One server's runs at one cell -> medians, ranges and every run (for the JSON)."""
    rate = spread([run.requests_per_s for run in runs])
    cpu = spread([run.server_cpu_us_per_request for run in runs])
    first = runs[0]
    return {
        "server": first.server,
        "clients": first.clients,
        "size": first.size,
        "repeats": len(runs),
        "requests_per_s": rate.median,
        "requests_per_s_min": rate.low,
        "requests_per_s_max": rate.high,
        "server_cpu_us_per_request": cpu.median,
        "server_cpu_us_per_request_min": cpu.low,
        "server_cpu_us_per_request_max": cpu.high,
        "loadgen_cpu_percent": spread([run.loadgen_cpu_percent for run in runs]).median,
        "warmup_requests_per_s": spread([run.warmup_requests_per_s for run in runs]).median,
        "errors": sum(run.errors for run in runs),
        "runs": [run.as_dict() for run in runs],
    }


def run_workers_grid(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--workers``: the echo grid for each number of workers (see rocket.bench.multicore)."""
    counts = multicore.worker_counts(args.workers)
    clients: list[int] = args.clients or (QUICK_CLIENTS if args.quick else [50, 300, 1000])
    sizes: list[int] = args.sizes or (QUICK_SIZES if args.quick else [128])
    duration: float = args.duration or (QUICK_DURATION if args.quick else FULL_DURATION)
    warmup: float = args.warmup if args.warmup is not None else QUICK_WARMUP
    repeat: int = args.repeat or 1
    print(
        f"echo with run_workers, {counts} workers: worker i on core i, load generator on core"
        f" {echo.LOAD_CORE}; {warmup:g} s warm-up, {duration:g} s measured, {repeat} run(s) each"
    )
    rows = []
    for _ in range(repeat):
        for cell in multicore.run_grid(counts, clients, sizes, warmup, duration):
            rows.append({**cell.as_dict(), "workers": int(cell.server.rsplit("-", 1)[1])})
    return rows


def run_echo(args: argparse.Namespace) -> list[dict[str, Any]]:
    clients: list[int] = args.clients or (QUICK_CLIENTS if args.quick else FULL_CLIENTS)
    sizes: list[int] = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    duration: float = args.duration or (QUICK_DURATION if args.quick else FULL_DURATION)
    warmup: float = (
        args.warmup if args.warmup is not None else (QUICK_WARMUP if args.quick else FULL_WARMUP)
    )
    repeat: int = args.repeat or (1 if args.quick else 3)
    if args.servers:
        names = args.servers.split(",")
    else:
        names = QUICK_SERVERS if args.quick else list(servers.SERVERS)
    unknown = [n for n in names if n not in servers.SERVERS]
    if unknown:
        raise SystemExit(f"unknown server(s) {unknown}; choose from {list(servers.SERVERS)}")
    runnable = _runnable(names, args.quick)
    generator = (
        "C load generator"
        if c_loadgen()
        else "Python load generator (no C compiler: lower ceiling)"
    )
    print(
        f"echo: {generator}; server on core 0, load on core 1; per run: {warmup:g} s on a"
        f" first set of connections (closed), then {duration:g} s measured on a new set;"
        f" {repeat} run(s) of each server per cell, interleaved"
    )
    cells: list[dict[str, Any]] = []
    for size in sizes:
        for count in clients:
            runs: dict[str, list[echo.Cell]] = {name: [] for name in runnable}
            for order in interleave(runnable, repeat):
                for name in order:
                    try:
                        runs[name].append(echo.run_cell(name, count, size, warmup, duration))
                    except RuntimeError as exc:  # one broken server must not end the run
                        print(f"  {name} failed at {count} x {size} B: {exc}")
            rows = [summarize(done) for done in runs.values() if done]
            if rows:
                _print_echo(rows)
            cells.extend(rows)
    _print_summary(cells)
    return cells


def _print_echo(rows: list[dict[str, Any]]) -> None:
    by = {row["server"]: row for row in rows}
    repeats = max(row["repeats"] for row in rows)
    what = f"median of {repeats} runs (min-max)" if repeats > 1 else "one run (no spread)"
    print(f"\n  {rows[0]['clients']} clients x {rows[0]['size']} B, {what}")
    print(
        f"  {'server':<17}{'req/s':>9} {'':<19}{'CPU us/req':>10} {'':<11}"
        + "".join(f"{title:>13}" for title in BASELINES.values())
        + f"{'loadgen CPU':>12}{'errors':>7}"
    )
    for row in rows:
        ratios = []
        for base in BASELINES:
            ref = by.get(base)
            ratios.append(f"{row['requests_per_s'] / ref['requests_per_s']:.2f}" if ref else "-")
        rate = cpu = ""  # a range of one run says nothing
        if row["repeats"] > 1:
            rate = f"({row['requests_per_s_min']:,.0f}-{row['requests_per_s_max']:,.0f})"
            cpu = (
                f"({row['server_cpu_us_per_request_min']:.1f}"
                f"-{row['server_cpu_us_per_request_max']:.1f})"
            )
        print(
            f"  {row['server']:<17}{row['requests_per_s']:>9,.0f} {rate:<19}"
            f"{row['server_cpu_us_per_request']:>10.1f} {cpu:<11}"
            + "".join(f"{ratio:>13}" for ratio in ratios)
            + f"{row['loadgen_cpu_percent']:>11.0f}%{row['errors']:>7}"
        )


def _ratio(mine: list[dict[str, Any]], ref: dict[tuple[int, int], dict[str, Any]]) -> str:
    """'speed; CPU' geometric-mean ratios of ``mine`` to ``ref``, cell by cell."""
    pairs = [(c, ref[(c["clients"], c["size"])]) for c in mine if (c["clients"], c["size"]) in ref]
    if not pairs:
        return "-"
    speed = geomean([c["requests_per_s"] / r["requests_per_s"] for c, r in pairs])
    cpu = geomean(
        [c["server_cpu_us_per_request"] / r["server_cpu_us_per_request"] for c, r in pairs]
    )
    return f"{speed:.2f}x; {cpu:.2f}x CPU"


def _print_summary(cells: list[dict[str, Any]]) -> None:
    """Geometric means of the medians over the cells with >= 50 clients, against each baseline."""
    big = [c for c in cells if c["clients"] >= 50]
    if not big:
        return
    names = list(dict.fromkeys(c["server"] for c in big))
    refs = {
        base: {(c["clients"], c["size"]): c for c in big if c["server"] == base}
        for base in BASELINES
    }
    cells_of = {name: [c for c in big if c["server"] == name] for name in names}
    print(
        "\n  geometric mean over the cells with >= 50 clients"
        " (requests/s ratio; server CPU per request ratio)"
    )
    print(f"  {'server':<17}" + "".join(f"{title:>21}" for title in BASELINES.values()))
    for name in names:
        columns = [_ratio(cells_of[name], refs[base]) for base in BASELINES]
        print(f"  {name:<17}" + "".join(f"{column:>21}" for column in columns))


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
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: give 1 or more runs per server and cell")
    report: dict[str, Any] = {}
    if args.workers:
        try:
            multicore.worker_counts(args.workers)
        except ValueError as exc:
            parser.error(str(exc))
        report["workers"] = run_workers_grid(args)
    elif "echo" in args.benchmarks:
        report["echo"] = run_echo(args)
    if "files" in args.benchmarks and not args.workers:
        report["files"] = run_files(args)
    if "switch" in args.benchmarks and not args.workers:
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
