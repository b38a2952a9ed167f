"""What a fault run's log says: failures, wrong answers, latency in each window, how the hit rate recovered."""

from __future__ import annotations

from dataclasses import dataclass

from bench._harness import pct
from bench.faults.load import Record
from bench.faults.runs import Outcome

SLIDE = 3.0  # seconds of the sliding window the hit rate is taken over
STEP = 0.5


@dataclass
class Row:
    name: str
    note: str
    requests: int
    failed: tuple[int, int, int]  # steady, fault, recovery
    failed_unstored: int  # of the failures: prompts with no answer stored to serve (see :class:`Answered`)
    wrong: int
    p50: tuple[float, float]  # steady, fault (ms)
    p99: tuple[float, float]
    within_bound: bool  # fault p99 <= steady p99 + REDIS_TIMEOUT
    hit_before: float
    hit_lowest: float
    back_after: float | None  # seconds after the fault ended until the hit rate is 95 % of before; None: not in the run
    stale: int
    burst_calls: list[int]
    burst_failed: int
    burst_wrong: int
    errors: list[str]


def _hit_rate(records: list[Record]) -> float:
    pooled = [r for r in records if not r.fresh and not r.failed]
    return sum(r.cache == "HIT" for r in pooled) / len(pooled) if pooled else 0.0


class Answered:
    """When each (tenant, prompt) was last answered, over the runs: an answer is in the cache, fresh or kept
    to serve stale, for ``keep`` seconds (``CACHE_TTL`` + ``CACHE_STALE_IF_ERROR``) after it was given. A
    request that fails with none that recent had nothing to be served from (a new prompt while the upstream is
    down): it counts apart from the failures the proxy could have avoided."""

    def __init__(self, keep: float) -> None:
        self.keep = keep
        self.last: dict[tuple[int, str], float] = {}

    def stored(self, record: Record, started: float) -> bool:
        at = self.last.get((record.tenant, record.prompt))
        return at is not None and started + record.sent - at < self.keep

    def note(self, record: Record, started: float) -> None:
        if not record.failed and record.tier != "semantic":  # a semantic hit stores nothing under its own key
            self.last[(record.tenant, record.prompt)] = started + record.sent + record.ms / 1000


def _unstored(records: list[Record], started: float, answered: Answered) -> int:
    """Failures with nothing stored to serve; and ``answered`` learns this run's answers, in order."""
    count = 0
    for record in sorted(records, key=lambda r: r.sent):
        count += record.failed and not answered.stored(record, started)
        answered.note(record, started)
    return count


def analyse(out: Outcome, *, redis_timeout: float, answered: Answered) -> Row:
    records = out.records
    steady = [r for r in records if r.sent < out.fault_start]
    fault = [r for r in records if out.fault_start <= r.sent < out.fault_end]
    after = [r for r in records if r.sent >= out.fault_end]
    end = max((r.sent for r in records), default=out.fault_end)
    before = _hit_rate(steady)
    lowest, back = before, None
    t = out.fault_start
    while t + SLIDE <= end:
        rate = _hit_rate([r for r in records if t <= r.sent < t + SLIDE])
        lowest = min(lowest, rate)
        if back is None and t + SLIDE >= out.fault_end and rate >= 0.95 * before:
            back = max(0.0, t + SLIDE - out.fault_end)
        t += STEP
    steady_ms = [r.ms for r in steady] or [0.0]
    fault_ms = [r.ms for r in fault] or [0.0]
    p99 = (pct(steady_ms, 99), pct(fault_ms, 99))
    burst = [record for _, answers in out.bursts for record in answers]
    failures = [r for r in records + burst if r.failed]
    return Row(
        name=out.name, note=out.note, requests=len(records),
        failed=(sum(r.failed for r in steady), sum(r.failed for r in fault), sum(r.failed for r in after)),
        failed_unstored=_unstored(records, out.started, answered),
        wrong=sum(r.right is False for r in records), p50=(pct(steady_ms, 50), pct(fault_ms, 50)), p99=p99,
        within_bound=p99[1] <= p99[0] + redis_timeout * 1000, hit_before=before, hit_lowest=lowest,
        back_after=back, stale=sum(r.cache == "STALE" for r in records),
        burst_calls=[calls for calls, _ in out.bursts], burst_failed=sum(r.failed for r in burst),
        burst_wrong=sum(r.right is False for r in burst),
        errors=sorted({f"{r.status} {r.error[:120]}" for r in failures})[:5])


def table(rows: list[Row], *, redis_timeout: float) -> str:
    head = ("| run | requests | failed (steady / fault / recovery) | wrong | p50 ms steady → fault | "
            f"p99 ms steady → fault | fault p99 ≤ steady p99 + {redis_timeout * 1000:.0f} ms | hit rate before → lowest"
            " | back to 95 % after | upstream calls per 20 identical misses | stale answers |")
    lines = [head, "|" + "---|" * 11]
    for row in rows:
        failed = f"{row.failed[0]} / {row.failed[1]} / {row.failed[2]}"
        if row.failed_unstored:
            failed += f" ({row.failed_unstored} with nothing stored to serve)"
        back = "—" if row.back_after is None else f"{row.back_after:.1f} s"
        if row.hit_lowest >= 0.95 * row.hit_before:
            back = "never below"
        calls = ", ".join(map(str, row.burst_calls)) if row.burst_calls else "—"
        if row.burst_failed or row.burst_wrong:
            calls += f" ({row.burst_failed} failed, {row.burst_wrong} wrong)"
        lines.append(f"| {row.name} | {row.requests} | {failed} | {row.wrong} | {row.p50[0]:.0f} → {row.p50[1]:.0f} | "
                     f"{row.p99[0]:.0f} → {row.p99[1]:.0f} | {'yes' if row.within_bound else '**no**'} | "
                     f"{row.hit_before:.0%} → {row.hit_lowest:.0%} | {back} | {calls} | {row.stale} |")
    notes = [f"- {row.name}: {row.note}" + (f"; failures: {'; '.join(row.errors)}" if row.errors else "")
             for row in rows]
    return "\n".join([*lines, "", *notes])
