"""Sliding-window samples for percentiles: O(1) to add, sorted only when someone reads them.

A window keeps ``(time, value, *labels)`` tuples of the last ``seconds`` in a bounded deque (the oldest
fall off first, so under very heavy load the percentiles describe the newest ``maxlen`` samples).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

Sample = tuple[Any, ...]  # (unix time, value, *labels)


def summarize(values: Iterable[float], *, scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """count, p50, p90, p99, avg, min and max of ``values`` (multiplied by ``scale``); ``None`` when empty."""
    ordered = sorted(values)
    count = len(ordered)
    if not count:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "avg": None, "min": None, "max": None}

    def rounded(value: float) -> float:
        return round(value * scale, digits)

    return {"count": count, "p50": rounded(percentile(ordered, 50)), "p90": rounded(percentile(ordered, 90)),
            "p99": rounded(percentile(ordered, 99)), "avg": rounded(sum(ordered) / count),
            "min": rounded(ordered[0]), "max": rounded(ordered[-1])}


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Window:
    def __init__(self, seconds: float, *, maxlen: int = 100_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.seconds = seconds
        self._samples: deque[Sample] = deque(maxlen=maxlen)
        self._clock = clock
        #: add a ready-made ``(time, value, *labels)`` sample (times must not go backwards by much)
        self.append: Callable[[Sample], None] = self._samples.append

    def add(self, value: float, *labels: Any) -> None:
        self._samples.append((self._clock(), value, *labels))

    def samples(self) -> list[Sample]:
        """The samples inside the window, oldest first (older ones are dropped on the way)."""
        cutoff = self._clock() - self.seconds
        samples = self._samples
        while samples and samples[0][0] < cutoff:
            samples.popleft()
        return list(samples)

    def __len__(self) -> int:
        return len(self._samples)
