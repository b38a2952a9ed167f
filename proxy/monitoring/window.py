"""Sliding-window samples for percentiles: O(1) to add, sorted only when someone reads them.

A window is a ring buffer of ``maxlen`` samples in flat ``array`` columns (time, value, label code), so
adding a sample allocates nothing the cyclic garbage collector has to trace, however many samples are
kept. Samples older than ``seconds`` are ignored when read; under very heavy load the percentiles describe
the newest ``maxlen`` samples.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Hashable, Iterable
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
    def __init__(self, seconds: float, *, maxlen: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self.seconds = seconds
        self.maxlen = maxlen
        self._clock = clock
        self._times = array("d", bytes(8 * maxlen))
        self._values = array("d", bytes(8 * maxlen))
        self._codes = array("l", bytes(array("l").itemsize * maxlen))
        self._next = 0
        self._count = 0
        self._labels: list[tuple[Any, ...]] = []
        self._code_of: dict[Hashable, int] = {}

    def code(self, labels: tuple[Any, ...]) -> int:
        """A small number standing for ``labels`` (compute it once, then :meth:`add_coded` many times).
        Callers keep label values bounded (the observer caps routes and models)."""
        found = self._code_of.get(labels)
        if found is None:
            found = self._code_of[labels] = len(self._labels)
            self._labels.append(labels)
        return found

    def add_coded(self, at: float, value: float, code: int) -> None:
        i = self._next
        self._times[i] = at
        self._values[i] = value
        self._codes[i] = code
        self._next = i + 1 if i + 1 < self.maxlen else 0
        if self._count < self.maxlen:
            self._count += 1

    def add_many(self, times: list[float], values: list[float], codes: list[int]) -> None:
        """Add samples given as three parallel lists (array slice copies: no per-sample Python work)."""
        count = len(times)
        if count > self.maxlen:  # only the newest fit
            times, values, codes = times[-self.maxlen:], values[-self.maxlen:], codes[-self.maxlen:]
            count = self.maxlen
        done = 0
        while done < count:
            start = self._next
            take = min(count - done, self.maxlen - start)
            self._times[start:start + take] = array("d", times[done:done + take])
            self._values[start:start + take] = array("d", values[done:done + take])
            self._codes[start:start + take] = array("l", codes[done:done + take])
            done += take
            self._next = (start + take) % self.maxlen
        self._count = min(self.maxlen, self._count + count)

    def add(self, value: float, *labels: Any) -> None:
        self.add_coded(self._clock(), value, self.code(labels))

    def samples(self) -> list[Sample]:
        """The samples inside the window, oldest first, as ``(time, value, *labels)``."""
        cutoff = self._clock() - self.seconds
        start = (self._next - self._count) % self.maxlen
        order = range(start, start + self._count)
        times, values, codes, labels, n = self._times, self._values, self._codes, self._labels, self.maxlen
        out = []
        for j in order:
            i = j % n
            if times[i] >= cutoff:
                out.append((times[i], values[i], *labels[codes[i]]))
        return out

    def __len__(self) -> int:
        return self._count
