"""Smoke test of ``python -m rocket bench``: a tiny grid runs and reports checked echoes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_tiny_echo_grid(tmp_path: Path) -> None:
    """Two servers, one cell: every echo verified (0 errors), figures in the table and JSON."""
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rocket",
            "bench",
            "echo",
            "--servers",
            "rocket-selector,threads",
            "--clients",
            "4",
            "--sizes",
            "64",
            "--duration",
            "0.5",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "4 clients x 64 B" in result.stdout
    cells = json.loads(out.read_text())["echo"]
    assert {cell["server"] for cell in cells} == {"rocket-selector", "threads"}
    for cell in cells:
        assert cell["errors"] == 0
        assert cell["requests_per_s"] > 0
        assert cell["server_cpu_us_per_request"] > 0


def test_switch_and_files_report_ratios(tmp_path: Path) -> None:
    """The switch and files benchmarks print each contender with its ratios."""
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "bench", "switch", "files", "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for name in ("rocket-selector", "threads", "asyncio", "asyncio-to_thread"):
        assert f"  {name} " in result.stdout
    assert "x asyncio" in result.stdout


def test_unknown_benchmark_is_refused() -> None:
    """A misspelt benchmark name is an error that lists the choices."""
    result = subprocess.run(
        [sys.executable, "-m", "rocket", "bench", "echoo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "choose from echo, files, switch" in result.stderr
