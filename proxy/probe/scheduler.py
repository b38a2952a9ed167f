"""The probe's scheduler: a cycle every ``PROBE_INTERVAL``, run by the one replica that leads.

:meth:`ProbeScheduler.tick` is the job the job runner repeats (several times per lock period): it keeps the
lead, finishes the TTL steps that are due, and starts a cycle when one is due or was asked for. It never
waits for a cycle: cycles and TTL steps run as spawned work, so the lead is renewed on time however long
they take.

A cycle lists the models (``PROBE_MODELS``; ``all``: the text models of ``GET /models``, which also gives
their prices), most out of date first (never probed, then the oldest latest verdict), so one cut short
leaves the models it did not reach at the front of the next. It is skipped before its first request when
its estimate does not fit the day's budget or the balance is below the floor (:mod:`proxy.probe.budget`),
and stops before its next model once that changes or the replica stops leading. Up to
``PROBE_CONCURRENCY`` models are probed at once, each after a random pause of up to a tenth of
``PROBE_JITTER``; the next cycle is due ``PROBE_INTERVAL`` after this one started, plus up to ``PROBE_JITTER``.
Each run's requests and verdict are stored together; the TTL test is stepped across cycles
(:mod:`proxy.probe.stepper`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from proxy.errors import CachegateError
from proxy.platform.tasks import complete
from proxy.probe.budget import Estimate, Limits, day_start, estimate_tokens
from proxy.probe.catalog import Advertised, advertised, is_text_model
from proxy.probe.clock import Clock
from proxy.probe.leader import Leadership
from proxy.probe.metrics import ProbeMetrics
from proxy.probe.provider import provider_of
from proxy.probe.records import CycleRow, ResultRow, result_row, verdict_row
from proxy.probe.report import ProbeReport
from proxy.probe.stepper import TtlStepper, ttl_figures
from proxy.probe.store import ProbeStore
from proxy.probe.verdict import CACHING

logger = logging.getLogger("cachegate.probe")

ProbeFn = Callable[[str, Advertised, str], Awaitable[ProbeReport]]  # model, its prices, correlation id
CatalogFn = Callable[[], Awaitable[dict[str, dict[str, Any]]]]  # GET /models, by id
Spawn = Callable[[Coroutine[Any, Any, Any]], Any]


@dataclass(frozen=True)
class Plan:
    interval: float
    concurrency: int
    jitter: float
    tests: tuple[str, ...]
    models: tuple[str, ...]  # ("all",): the text models of GET /models
    tick: float = 5.0  # seconds between ticks (the job runner's period of :meth:`ProbeScheduler.tick`)


class ProbeScheduler:
    def __init__(self, *, store: ProbeStore, clock: Clock, leadership: Leadership, limits: Limits, plan: Plan,
                 probe: ProbeFn, catalog: CatalogFn, stepper: TtlStepper, metrics: ProbeMetrics, spawn: Spawn,
                 replica: str, rng: random.Random | None = None) -> None:
        self.store = store
        self.clock = clock
        self.leadership = leadership
        self.limits = limits
        self.plan = plan
        self.probe = probe
        self.catalog = catalog
        self.stepper = stepper
        self.metrics = metrics
        self.spawn = spawn
        self.replica = replica
        self.rng = rng or random.Random()
        self.running: CycleRow | None = None
        self.next_run: float | None = None
        #: holds the lock and has taken over (the earlier leader's schedule): what ``state`` reports as leading,
        #: so that no reader sees a leader without its next run
        self.leading = False
        self.entries: dict[str, dict[str, Any]] = {}  # the last GET /models, by id
        self.ttl_paused: str | None = None

    @property
    def leads(self) -> bool:
        """This replica runs the schedule: it took over, and still holds the lock (one lost since the last tick
        is lost now)."""
        return self.leading and self.leadership.leader

    # -- the job ------------------------------------------------------------------------------------

    async def tick(self) -> None:
        was_leader = self.leadership.leader
        leader = await self.leadership.hold()
        await self.refresh()
        if not leader:
            self.leading = False
            return
        if not was_leader or not self.leading:
            self.leading = False
            await self._take_over()
            self.leading = True
        self.ttl_paused = await self._stop_reason()
        if self.ttl_paused is None:
            for model in self.stepper.due():
                self.spawn(self._ttl(model, None))
        requested = await self.leadership.take_run_request()
        if self.running is None and (requested or self.next_run is None or self.clock.wall() >= self.next_run):
            await self.start("manual" if requested else "scheduled")

    async def _take_over(self) -> None:
        now = self.clock.wall()
        interrupted = await self.store.interrupt_cycles(replica=self.replica, at=now)
        if interrupted:
            logger.info("probe scheduler: %d cycle(s) of an earlier leader marked interrupted", interrupted)
        await self.stepper.load()
        last = await self.store.cycles(1)
        start = last[0].started_at + self.plan.interval if last else now
        self.next_run = start + self.rng.uniform(0, self.plan.jitter)

    async def refresh(self) -> None:
        """Bring the exported per-model figures up to date from the store (every replica, every tick)."""
        ttl = {model: ttl_figures(state) for model, state in (await self.store.ttl_states()).items()}
        self.metrics.show(await self.store.latest_verdicts(), ttl=ttl, last_success=await self.store.last_successes())

    # -- a cycle ------------------------------------------------------------------------------------

    async def start(self, trigger: str) -> CycleRow:
        """Start a cycle now (or answer the one running); a cycle that must not run is recorded as skipped."""
        if self.running is not None:
            return self.running
        now = self.clock.wall()
        cycle = CycleRow(uuid.uuid4().hex, self.replica, trigger, now)
        self.next_run = now + self.plan.interval + self.rng.uniform(0, self.plan.jitter)
        try:
            self.entries = await self.catalog()
        except CachegateError as exc:
            if self.plan.models == ("all",):
                return await self._finish(cycle, "failed", f"GET /models failed: {exc.message}")
            logger.warning("probe scheduler: GET /models failed, probing without prices: %s", exc.message)
        if self.plan.models == ("all",):
            models = [m for m, entry in self.entries.items() if is_text_model(entry)]
        else:
            models = list(self.plan.models)
        latest = {row.model: row for row in await self.store.latest_verdicts()}
        cycle.planned = sorted(models, key=lambda m: (latest[m].ts if m in latest else float("-inf"), m))
        tokens, usd = 0, 0.0
        for model in cycle.planned:
            last = latest.get(model)
            spend = estimate_tokens(self.plan.tests, last.tokens_spent if last else None)
            tokens += spend
            cost = last.cost_usd if last and last.cost_usd is not None else advertised(
                self.entries.get(model)).cost(spend, 0, 0)
            usd += cost or 0.0
        spent = await self.store.spend(day_start(now))
        refusal = self.limits.refusal(spent, Estimate(tokens, usd), await self.store.latest_balance())
        if refusal is not None:
            return await self._finish(cycle, "skipped", refusal)
        await self.store.save_cycle(cycle)
        self.running = cycle
        self.spawn(self._run(cycle))
        logger.info("probe cycle %s (%s): %d models", cycle.id, trigger, len(cycle.planned))
        return cycle

    async def _finish(self, cycle: CycleRow, status: str, reason: str | None) -> CycleRow:
        cycle.status, cycle.reason, cycle.finished_at = status, reason, self.clock.wall()
        cycle.cost_usd = round(cycle.cost_usd, 8)
        if status != "completed":
            logger.warning("probe cycle %s %s: %s", cycle.id, status, reason)
        try:
            await self.store.save_cycle(cycle)
        finally:
            if self.running is cycle:
                self.running = None
        return cycle

    async def _stop_reason(self) -> str | None:
        if not self.leadership.leader:
            return "this replica no longer leads the probe scheduler"
        spent = await self.store.spend(day_start(self.clock.wall()))
        return self.limits.stop(spent, await self.store.latest_balance())

    async def _run(self, cycle: CycleRow) -> None:
        gate = asyncio.Semaphore(self.plan.concurrency)
        stopped: str | None = None

        async def one(model: str) -> None:
            nonlocal stopped
            async with gate:
                stopped = stopped or await self._stop_reason()
                if stopped is not None:
                    return
                if self.plan.jitter:
                    await self.clock.sleep(self.rng.uniform(0, self.plan.jitter / 10))
                await self._probe_one(cycle, model)

        try:
            await asyncio.gather(*(one(model) for model in cycle.planned))
        except asyncio.CancelledError:  # recorded to its end, though a stopping job is cancelled again
            await complete(self._finish(cycle, "interrupted", "the process stopped"))
            raise
        except Exception as exc:
            logger.exception("probe cycle %s failed", cycle.id)
            await self._finish(cycle, "failed", f"{type(exc).__name__}: {exc}")
            return
        await self._finish(cycle, "stopped" if stopped else "completed", stopped)

    async def _probe_one(self, cycle: CycleRow, model: str) -> None:
        entry = self.entries.get(model)
        prices = advertised(entry)
        try:
            report = await self.probe(model, prices, uuid.uuid4().hex)
            rows = [result_row(ex, source="cycle", cycle_id=cycle.id, advertised=prices) for ex in report.exchanges]
            ttl = self.stepper.figures(model) if "ttl" in self.plan.tests else None
            verdict = verdict_row(report, rows, cycle_id=cycle.id, ttl=ttl)
            verdict.report["provider"] = provider_of(model, entry)
            await self.store.add_run(rows, verdict)
        except Exception:
            logger.exception("probe cycle %s: %s failed", cycle.id, model)
            return
        self._count(cycle, rows)
        self.metrics.note(verdict)
        cycle.probed.append(model)
        if "ttl" in self.plan.tests and verdict.verdict in CACHING and self.stepper.wants(model):
            self.spawn(self._ttl(model, report))

    def _count(self, cycle: CycleRow | None, rows: list[ResultRow]) -> None:
        self.metrics.count(rows)
        if cycle is not None:
            cycle.requests += len(rows)
            cycle.tokens += sum(row.tokens for row in rows)
            cycle.estimated_tokens += sum(row.estimated_tokens for row in rows)
            cycle.cost_usd += sum(row.cost_usd or 0.0 for row in rows)

    async def _ttl(self, model: str, report: ProbeReport | None) -> None:
        """Begin the TTL search of a model that was just probed, or take its step that is due."""
        prices = advertised(self.entries.get(model))
        try:
            if report is not None:
                rows = await self.stepper.begin(report, prices)
            else:
                rows = await self.stepper.advance(model, prices)
        except Exception:
            logger.exception("probe TTL step of %s failed", model)
            return
        self._count(None, rows)

    # -- what /probe/api/scheduler shows --------------------------------------------------------------

    async def state(self) -> dict[str, Any]:
        now = self.clock.wall()
        last = await self.store.cycles(1)
        spent = await self.store.spend(day_start(now))
        balance = await self.store.latest_balance()
        floor = self.limits.floor
        leading = self.leads
        return {
            "now": now, "replica": self.replica, "leader": leading,
            "leadership": self.leadership.describe(), "running": self.running is not None,
            "current_cycle": self.running.as_dict() if self.running else None,
            "next_run": self.next_run if leading else None,
            "last_cycle": last[0].as_dict() if last else None,
            "interval_seconds": self.plan.interval, "tick_seconds": self.plan.tick,
            "concurrency": self.plan.concurrency,
            "jitter_seconds": self.plan.jitter, "tests": list(self.plan.tests), "models": list(self.plan.models),
            "budget": self.limits.left(spent),
            "balance": {"usd": balance.usd if balance else None, "diem": balance.diem if balance else None,
                        "at": balance.at if balance else None,
                        "floor": None if floor is None else {"amount": floor[0], "unit": floor[1]},
                        "below_floor": self.limits.floor_breach(balance)},
            "ttl": {"measuring": sorted(m for m, s in self.stepper.states.items() if s.completed_at is None),
                    "busy": sorted(self.stepper.busy), "paused": self.ttl_paused,
                    "pending": sum(1 for s in self.stepper.states.values() if s.pending is not None)},
        }
