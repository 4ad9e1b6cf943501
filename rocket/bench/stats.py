"""The few statistics the benchmark reports: medians, spreads, run order, geometric means.

A shared two-core machine is noisy, so a single run of a server says little. The
echo benchmark repeats each cell, runs every server once per repeat in a rotating
order (so that no server always runs first, or always right after the same
neighbour, while the machine drifts), and reports the median of the repeats with
their range (min-max). With three repeats an inter-quartile range would be no
different from min-max, so min-max it is.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Spread", "geomean", "interleave", "spread"]


@dataclass
class Spread:
    """The median of some repeated measurements and their range."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:g} ({self.low:g}-{self.high:g})"


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max of ``values`` (at least one)."""
    if not values:
        raise ValueError("spread() of no values: run the measurement at least once")
    return Spread(statistics.median(values), min(values), max(values))


def interleave(names: Sequence[str], repeat: int) -> list[list[str]]:
    """The run order: one list per repeat, every name once, rotated by one each repeat.

    >>> interleave(["a", "b", "c"], 3)
    [['a', 'b', 'c'], ['b', 'c', 'a'], ['c', 'a', 'b']]
    """
    count = len(names)
    return [[names[(r + i) % count] for i in range(count)] if count else [] for r in range(repeat)]


def geomean(values: Sequence[float]) -> float:
    """The geometric mean of positive ``values``; NaN for none."""
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")
