"""``ttl``: how long an idle cached prefix survives, as a bracket ``[lower, upper]`` seconds, and whether a hit
refreshes it.

Each step measures one gap with a fresh prompt: write it (the prime), stay idle for the gap, ask again; a
hit means TTL > gap, a miss TTL <= gap. :class:`TtlSearch` is the pure, resumable part (``as_dict`` /
``from_dict``): it starts at the low end of the range, multiplies the gap by 4 while it hits, then
bisects (geometrically) between the largest gap that hit and the smallest that missed. Gaps of minutes
are scheduled steps, not waits inside a request: :func:`prime_step` returns a :class:`PendingGap` due
``gap`` seconds later and :func:`finish_step` completes it; :func:`ttl` runs the steps one after the
other, sleeping on the injected clock in between.

Refresh-on-hit: once ``upper < 2 * lower``, a prompt is read back after ``a`` (< lower: a hit) and again
``b`` later (< lower, but ``a + b`` > upper): a hit then means the first hit renewed the entry.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from proxy.probe.exchange import CheckResult, Exchange
from proxy.probe.session import ModelSession, Prompt


@dataclass
class TtlSearch:
    low: float
    high: float
    resolution: float = 1.25  # stop when upper / lower is at most this
    max_steps: int = 14
    lower: float | None = None  # the largest gap that hit
    upper: float | None = None  # the smallest gap that missed
    steps: list[list[Any]] = field(default_factory=list)  # [gap, hit]
    refresh_on_hit: bool | None = None
    refresh_gaps: list[float] | None = None

    def next_gap(self) -> float | None:
        """The next idle gap to measure, or ``None`` when the bracket is found."""
        if len(self.steps) >= self.max_steps:
            return None
        if not self.steps:
            return self.low
        if self.lower is None:  # the shortest gap already missed
            return None
        if self.upper is None:
            return None if self.lower >= self.high else min(self.high, self.lower * 4)
        if self.upper / self.lower <= self.resolution or self.upper - self.lower <= 1.0:
            return None
        return round(math.sqrt(self.lower * self.upper), 1)

    def record(self, gap: float, hit: bool) -> None:
        self.steps.append([gap, hit])
        if hit:
            self.lower = gap if self.lower is None else max(self.lower, gap)
        else:
            self.upper = gap if self.upper is None else min(self.upper, gap)

    def refresh_plan(self) -> tuple[float, float] | None:
        """(a, b) for the refresh test, possible only once the bracket is tighter than a factor of 2."""
        if self.refresh_on_hit is not None or not self.lower or self.upper is None or self.upper >= 2 * self.lower:
            return None
        a = round((self.upper / 2 + self.lower) / 2, 1)
        return a, a

    @property
    def bracket(self) -> list[float | None] | None:
        if not self.steps:
            return None
        return [self.lower if self.lower is not None else 0.0, self.upper]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TtlSearch:
        return cls(**data)


@dataclass
class PendingGap:
    """A primed prompt waiting for its gap to pass; ``due`` is on the probe clock's ``now`` scale."""

    prompt: Prompt
    gap: float
    due: float
    prime: Exchange


async def prime_step(session: ModelSession, gap: float, step: str) -> PendingGap:
    prompt = session.prompt(session.cheap_size)
    prime = await session.ask(prompt, test="ttl", step=step, role="prime")
    return PendingGap(prompt, gap, session.clock.now() + gap, prime)


async def finish_step(session: ModelSession, pending: PendingGap, step: str) -> Exchange:
    return await session.ask(pending.prompt, test="ttl", step=step, role="repeat")


async def _wait_until(session: ModelSession, due: float) -> None:
    await session.clock.sleep(max(0.0, due - session.clock.now()))


async def ttl(session: ModelSession, search: TtlSearch | None = None) -> CheckResult:
    cfg = session.config
    low = max(cfg.ttl_range[0], session.recipe.settle)  # shorter gaps would measure the write delay
    search = search or TtlSearch(low, max(low, cfg.ttl_range[1]), cfg.ttl_resolution, cfg.ttl_max_steps)
    evidence: list[Exchange] = []
    while (gap := search.next_gap()) is not None:
        pending = await prime_step(session, gap, f"gap {gap:g}s")
        await _wait_until(session, pending.due)
        again = await finish_step(session, pending, f"gap {gap:g}s")
        evidence += [pending.prime, again]
        if not (pending.prime.ok and again.ok):
            break  # an upstream failure says nothing about the TTL
        search.record(gap, again.hit)
    plan = search.refresh_plan()
    if plan is not None:
        a, b = plan
        pending = await prime_step(session, a, f"refresh {a:g}+{b:g}s")
        await _wait_until(session, pending.due)
        middle = await finish_step(session, pending, f"refresh {a:g}s")
        await session.clock.sleep(b)
        last = await finish_step(session, pending, f"refresh {a:g}+{b:g}s")
        evidence += [pending.prime, middle, last]
        if middle.hit and last.ok:
            search.refresh_on_hit, search.refresh_gaps = last.hit, [a, b]
    figures = {"ttl_seconds": search.bracket, "refresh_on_hit": search.refresh_on_hit,
               "range": [search.low, search.high], "steps": search.steps, "search": search.as_dict()}
    return CheckResult("ttl", figures, evidence)
