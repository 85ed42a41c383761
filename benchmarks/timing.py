"""Timing two things side by side, so a noisy machine's drift hits both alike."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def side_by_side(first: Callable[[int], object], second: Callable[[int], object], repeats: int
                 ) -> tuple[float, float]:
    """Median seconds of `first(i)` and of `second(i)`, run alternately for i in range(repeats)."""
    a, b = [], []
    for i in range(repeats):
        for fn, times in ((first, a), (second, b)):
            t = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)
