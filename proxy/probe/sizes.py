"""``sizes``: the minimum cached prefix (within one step) and the step above it, from ``cached_tokens``.

:class:`SizeSearch` is the pure part: it proposes the next prompt size and learns from each
(prompt tokens, cached tokens) answer. A provider that caches in blocks reports
``cached = minimum + step * floor((matched - minimum) / step)`` for a prompt found whole, and 0 below
the minimum. The search

1. climbs a ladder of sizes until one caches (``c``, a cached value, lies on a block boundary);
2. finds the step: prompts of ``c + d`` tokens for d = 16, 32, 64, ... cache ``c + step * floor(d / step)``,
   so the first d that adds anything, after one that did not, adds exactly one step (d is halved instead
   while every d adds, down to 1 token: a cache that covers whole marked prefixes has a step of 1);
3. bisects the minimum over the boundaries ``c - k * step`` between the largest size that missed and the
   smallest cached value, until they are one step apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.probe.exchange import CheckResult
from proxy.probe.session import ModelSession


@dataclass
class SizeSearch:
    ladder: tuple[int, ...]
    refine: bool = True
    max_probes: int = 20
    points: list[tuple[int, int]] = field(default_factory=list)  # (prompt tokens, cached tokens) per answer
    step: int | None = None
    _base: int | None = None  # the cached value the step is measured from
    _flat: int = 0  # the largest d that added nothing
    _rising: tuple[int, int] | None = None  # (d, added) of the smallest d that added something

    def next_size(self) -> int | None:
        if len(self.points) >= self.max_probes:
            return None
        hits = [c for _, c in self.points if c > 0]
        if not hits:
            measured = {size for size, _ in self.points}
            pending = [n for n in self.ladder if n > max(measured, default=0)]
            return pending[0] if pending else None
        if not self.refine:
            return None
        if self._base is None:
            self._base = min(hits)
        if self.step is None:
            if self._rising is None:
                d = max(16, self._flat * 2)
                return None if d > 8192 else self._base + d
            return self._base + self._rising[0] // 2
        low, high = self.bracket
        if high - low <= self.step:
            return None
        candidates = (high - low - 1) // self.step  # boundaries high - k*step that lie above low
        return high - ((candidates + 1) // 2) * self.step

    def record(self, prompt_tokens: int, cached: int) -> None:
        self.points.append((prompt_tokens, cached))
        if self._base is None or self.step is not None:
            return
        d, added = prompt_tokens - self._base, cached - self._base
        if d <= 0:
            return
        if added <= 0:
            self._flat = max(self._flat, d)
        elif self._rising is None or d < self._rising[0]:
            self._rising = (d, added)
        # every d up to _flat added nothing, so step > _flat; a rise at d <= 2 * _flat + 1 < 2 * step is one step
        if self._rising is not None and self._rising[0] <= 2 * self._flat + 1:
            self.step = self._rising[1]

    @property
    def bracket(self) -> tuple[int, int]:
        """(largest prompt that cached nothing below the smallest cached value, that value)."""
        hits = [c for _, c in self.points if c > 0]
        high = min(hits) if hits else 0
        low = max((p for p, c in self.points if c == 0 and p < high), default=0)
        return low, high

    def figures(self) -> dict[str, Any]:
        hits = [c for _, c in self.points if c > 0]
        low, high = self.bracket
        return {"min_prefix_tokens": high if hits else None, "min_prefix_bracket": [low, high] if hits else None,
                "step_tokens": self.step, "largest_uncached": max((p for p, c in self.points if c == 0), default=None),
                "points": [list(p) for p in self.points]}


async def sizes(session: ModelSession) -> CheckResult:
    cfg = session.config
    search = SizeSearch(cfg.size_ladder, refine=cfg.refine_sizes, max_probes=cfg.max_size_probes)
    evidence = []
    while (size := search.next_size()) is not None:
        # one repeat after the settle time: basic and hints have made a repeat of a cacheable prompt hit
        trial = await session.trial(size, test="sizes", step=str(size), repeats=1)
        evidence += trial
        answered = [ex for ex in trial[1:] if ex.ok and ex.usage.prompt_tokens is not None]
        if not answered:
            break  # the upstream failed: keep what was measured
        best = max(answered, key=lambda ex: ex.cached or 0)
        search.record(best.usage.prompt_tokens or 0, best.cached or 0)
    figures = search.figures()
    minimum = figures["min_prefix_tokens"]
    if minimum:
        # later tests need a prompt that caches; the TTL steps, many, take the cheapest safe one
        session.recipe.small_size = int(minimum * 1.25) + (search.step or 0)
        session.recipe.size = max(session.recipe.size, session.recipe.small_size)
    return CheckResult("sizes", figures, evidence)
