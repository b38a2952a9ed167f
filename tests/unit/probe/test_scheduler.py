"""The scheduler's decisions with a fake clock and a probe that answers at once: most out of date first, at
most PROBE_CONCURRENCY at a time, jitter within its bounds, budgets and leadership that stop a cycle.
The store is the real SQLite one."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from proxy.core.usage import normalize_usage
from proxy.errors import UpstreamError
from proxy.monitoring.registry import Metrics
from proxy.platform.sqlite import Database
from proxy.probe.budget import Limits
from proxy.probe.catalog import Advertised
from proxy.probe.exchange import Exchange
from proxy.probe.leader import SoloLeader
from proxy.probe.metrics import ProbeMetrics
from proxy.probe.records import VerdictRow
from proxy.probe.report import ProbeReport
from proxy.probe.scheduler import Plan, ProbeScheduler
from proxy.probe.schema import FILENAME, MIGRATIONS
from proxy.probe.session import ProbeConfig
from proxy.probe.sql_store import SqlProbeStore
from proxy.probe.stepper import TtlStepper
from proxy.probe.verdict import Verdict


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


class FakeProbe:
    """Answers every model with one 100-token exchange; counts how many run at once."""

    def __init__(self, clock: FakeClock, gate: asyncio.Event | None = None) -> None:
        self.clock = clock
        self.gate = gate
        self.order: list[str] = []
        self.running = 0
        self.most = 0

    async def __call__(self, model: str, prices: Advertised, correlation_id: str) -> ProbeReport:
        self.order.append(model)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            for _ in range(3):
                await asyncio.sleep(0)
        finally:
            self.running -= 1
        ex = Exchange(model, "basic", "repeats", "prime", correlation_id, self.clock.wall(), status=200)
        ex.raw_usage = {"prompt_tokens": 99, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 0}}
        ex.usage = normalize_usage(ex.raw_usage)
        verdict = Verdict("no_caching", None, 0.0, False, None, None)
        return ProbeReport(model, correlation_id, self.clock.wall(), self.clock.wall(), verdict, exchanges=[ex])


class Harness:
    def __init__(self, store: SqlProbeStore, tmp: Path) -> None:
        self.store = store
        self.clock = FakeClock()
        self.tasks: list[asyncio.Task[Any]] = []
        self.leader = SoloLeader(self.clock, "me")

    def scheduler(self, probe: FakeProbe, *, models: tuple[str, ...], concurrency: int = 1, jitter: float = 0.0,
                  limits: Limits | None = None, catalog: Any = None) -> ProbeScheduler:
        async def no_catalog() -> dict[str, dict[str, Any]]:
            return {}

        stepper = TtlStepper(store=self.store, clock=self.clock, config=ProbeConfig(), client=lambda cid: None)
        return ProbeScheduler(store=self.store, clock=self.clock, leadership=self.leader, limits=limits or Limits(),
                              plan=Plan(600.0, concurrency, jitter, ("basic",), models), probe=probe,
                              catalog=catalog or no_catalog, stepper=stepper, metrics=ProbeMetrics(Metrics()),
                              spawn=lambda coro: self.tasks.append(asyncio.ensure_future(coro)), replica="me",
                              rng=random.Random(7))

    async def settle(self) -> None:
        while pending := [t for t in self.tasks if not t.done()]:
            await asyncio.gather(*pending)


async def until(check: Any) -> None:
    """Let the loop (and the database thread) run until ``check()`` holds."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the scheduler never got there")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = SqlProbeStore(Database(tmp_path / FILENAME, MIGRATIONS))
    await store.open()
    yield Harness(store, tmp_path)
    await store.close()


def verdict(model: str, ts: float, tokens: int = 10) -> VerdictRow:
    return VerdictRow(ts=ts, started_at=ts, cycle_id=None, run_id="r", model=model, verdict="caches", hint=None,
                      hit_ratio=1.0, cache_rate=1.0, min_prefix_tokens=None, step_tokens=None, ttl_lower=None,
                      ttl_upper=None, speedup=None, contaminated=False, advertised_caching=None, drift=None,
                      tokens_spent=tokens, cost_usd=None, error=None)


async def test_most_out_of_date_first_and_bounded_concurrency(harness: Harness) -> None:
    await harness.store.add_run([], verdict("c", 10.0))
    await harness.store.add_run([], verdict("a", 20.0))
    gate = asyncio.Event()
    probe = FakeProbe(harness.clock, gate)
    scheduler = harness.scheduler(probe, models=("a", "b", "c", "d", "e"), concurrency=2)
    await scheduler.tick()
    cycle = scheduler.running
    assert cycle is not None and cycle.planned == ["b", "d", "e", "c", "a"]  # never probed (by name), then oldest
    await until(lambda: probe.running == 2)
    await asyncio.sleep(0.05)
    assert probe.running == 2  # two at once, the others wait
    assert await scheduler.start("manual") is cycle  # a cycle runs already: it is the answer
    await scheduler.tick()
    assert scheduler.running is cycle
    gate.set()
    await harness.settle()
    assert probe.most == 2 and probe.order == cycle.planned
    [done] = await harness.store.cycles(1)
    assert (done.status, done.probed, done.requests, done.tokens) == ("completed", cycle.planned, 5, 500)
    assert scheduler.next_run == done.started_at + 600.0
    assert [v.model for v in await harness.store.latest_verdicts()] == ["a", "b", "c", "d", "e"]


async def test_jitter_stays_within_its_bounds(harness: Harness) -> None:
    probe = FakeProbe(harness.clock)
    scheduler = harness.scheduler(probe, models=("a", "b", "c"), jitter=30.0)
    await harness.leader.hold()
    started = harness.clock.t
    await scheduler.start("manual")
    assert started + 600.0 <= (scheduler.next_run or 0) <= started + 630.0
    await harness.settle()
    assert len(harness.clock.slept) == 3 and all(0 <= s <= 3.0 for s in harness.clock.slept)


async def test_a_budget_used_up_mid_cycle_stops_it(harness: Harness) -> None:
    for model in ("a", "b", "c"):
        await harness.store.add_run([], verdict(model, 1.0, tokens=10))  # estimates: 10 tokens each
    probe = FakeProbe(harness.clock)
    scheduler = harness.scheduler(probe, models=("a", "b", "c"), limits=Limits(daily_tokens=150))
    await harness.leader.hold()
    await scheduler.start("scheduled")
    await harness.settle()
    [cycle] = await harness.store.cycles(1)
    assert (cycle.status, cycle.probed) == ("stopped", ["a", "b"])  # 100 + 100 tokens spent: the third waits
    assert cycle.reason == "today's PROBE_DAILY_TOKEN_BUDGET (150 tokens) is used up"


async def test_a_leader_that_stops_leading_stops_its_cycle(harness: Harness) -> None:
    gate = asyncio.Event()
    probe = FakeProbe(harness.clock, gate)
    scheduler = harness.scheduler(probe, models=("a", "b"))
    await scheduler.tick()
    await until(lambda: probe.running == 1)
    await harness.leader.release()  # as if the lock were lost
    gate.set()
    await harness.settle()
    [cycle] = await harness.store.cycles(1)
    assert (cycle.status, cycle.probed, cycle.reason) == ("stopped", ["a"], "this replica no longer leads the "
                                                                            "probe scheduler")


async def test_all_models_without_a_catalog_is_a_failed_cycle(harness: Harness) -> None:
    async def broken() -> dict[str, dict[str, Any]]:
        raise UpstreamError("GET /models answered 500: boom")

    scheduler = harness.scheduler(FakeProbe(harness.clock), models=("all",), catalog=broken)
    cycle = await scheduler.start("scheduled")
    assert (cycle.status, cycle.reason) == ("failed", "GET /models failed: GET /models answered 500: boom")
    assert await harness.store.cycles(1) == [cycle]


async def test_a_replica_taking_over_is_not_shown_leading_before_it_has_a_schedule(harness: Harness) -> None:
    gate = asyncio.Event()
    interrupt = harness.store.interrupt_cycles

    async def slow_interrupt(**kwargs: Any) -> int:  # the take-over's first step, held
        await gate.wait()
        return await interrupt(**kwargs)

    harness.store.interrupt_cycles = slow_interrupt  # type: ignore[method-assign]
    scheduler = harness.scheduler(FakeProbe(harness.clock), models=("a",))
    tick = asyncio.create_task(scheduler.tick())
    await until(lambda: harness.leader.leader)  # the lock is held; the take-over waits
    state = await scheduler.state()
    assert (state["leader"], state["next_run"]) == (False, None)
    gate.set()
    await tick
    state = await scheduler.state()
    assert state["leader"] is True and state["next_run"] == scheduler.next_run is not None
    await harness.settle()
