"""The TTL search of the monitor, one step at a time across cycles, so a gap of minutes never blocks one.

Per model a :class:`TtlState` holds the resumable :class:`~proxy.probe.ttl.TtlSearch`, what the model's last
run learnt (its recipe and token gauge, so later prompts are sized and hinted alike) and the step that is
waiting for its gap: the prompt written (nonce and size), when, and when it is due. It lives in the store,
so a restart or a new leader picks the search up where it was. Gaps up to :data:`INLINE_GAP` are waited
out at once; a longer one is left pending and finished by the scheduler's tick once it is due. The gap
recorded is the one that really passed (from the prime's answer to the repeat), not the one planned.

A finished bracket stands for :data:`REMEASURE_AFTER`; then the next run of the model starts a new search
(the last bracket is shown until the new one is done).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from proxy.probe.catalog import Advertised
from proxy.probe.clock import Clock
from proxy.probe.exchange import Exchange, ProbeClient
from proxy.probe.prompts import TokenGauge, messages
from proxy.probe.records import ResultRow, result_row
from proxy.probe.report import ProbeReport
from proxy.probe.session import ModelSession, ProbeConfig, Prompt, Recipe
from proxy.probe.store import ProbeStore
from proxy.probe.ttl import TtlSearch

INLINE_GAP = 30.0
REMEASURE_AFTER = 86400.0


@dataclass
class TtlState:
    search_id: str
    started_at: float
    search: TtlSearch
    recipe: dict[str, Any]
    gauge: dict[str, float]
    pending: dict[str, Any] | None = None  # nonce, words, stage (gap|refresh|refresh2), gap, b, primed_at, due
    refresh_tried: bool = False
    completed_at: float | None = None
    bracket: list[float | None] | None = None  # the last finished bracket
    refresh_on_hit: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["search"] = self.search.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TtlState:
        return cls(**{**data, "search": TtlSearch.from_dict(data["search"])})

    def figures(self) -> dict[str, Any]:
        return ttl_figures(self.as_dict())


def ttl_figures(state: dict[str, Any]) -> dict[str, Any]:
    """What a verdict shows of a (stored) TTL state: the finished bracket, else the bracket so far."""
    search = state.get("search") or {}
    done = state.get("completed_at") is not None
    bracket = state.get("bracket")
    if bracket is None and search.get("steps"):
        bracket = [search.get("lower") if search.get("lower") is not None else 0.0, search.get("upper")]
    refresh = state.get("refresh_on_hit") if state.get("bracket") is not None else search.get("refresh_on_hit")
    pending = state.get("pending") or {}
    return {"ttl_seconds": bracket, "ttl_status": "measured" if done else "measuring", "refresh_on_hit": refresh,
            "ttl_due": pending.get("due")}


ClientFactory = Callable[[str], ProbeClient]  # correlation id -> a client of the probe's upstream


class TtlStepper:
    def __init__(self, *, store: ProbeStore, clock: Clock, config: ProbeConfig, client: ClientFactory) -> None:
        self.store = store
        self.clock = clock
        self.config = config
        self.client = client
        self.states: dict[str, TtlState] = {}
        self.busy: set[str] = set()
        self.loaded = False

    async def load(self) -> None:
        self.states = {model: TtlState.from_dict(data) for model, data in (await self.store.ttl_states()).items()}
        self.loaded = True

    def figures(self, model: str) -> dict[str, Any] | None:
        state = self.states.get(model)
        return state.figures() if state is not None else None

    def due(self) -> list[str]:
        now = self.clock.wall()
        return sorted(m for m, s in self.states.items()
                      if s.pending is not None and s.pending["due"] <= now and m not in self.busy)

    def wants(self, model: str) -> bool:
        """A run of ``model`` should start (or go on with) a search: none, or the last one is old."""
        state = self.states.get(model)
        if state is None:
            return True
        if state.completed_at is None:
            return state.pending is None
        return self.clock.wall() - state.completed_at >= REMEASURE_AFTER

    async def begin(self, report: ProbeReport, advertised: Advertised) -> list[ResultRow]:
        """After a run of a model that caches: start a search (or resume one left without a pending step)."""
        model = report.model
        if model in self.busy or not self.wants(model):
            return []
        old = self.states.get(model)
        recipe = asdict(report.recipe)
        recipe["hints"] = list(recipe["hints"])
        gauge = {"per_word": report.gauge.per_word, "overhead": report.gauge.overhead}
        if old is not None and old.completed_at is None:  # a search whose last step failed: go on with it
            state = old
            state.recipe, state.gauge = recipe, gauge
        else:
            low = max(self.config.ttl_range[0], report.recipe.settle)  # shorter gaps would measure the write delay
            search = TtlSearch(low, max(low, self.config.ttl_range[1]), self.config.ttl_resolution,
                               self.config.ttl_max_steps)
            state = TtlState(uuid.uuid4().hex, self.clock.wall(), search, recipe, gauge,
                             bracket=old.bracket if old else None, refresh_on_hit=old.refresh_on_hit if old else None)
        self.states[model] = state
        return await self.advance(model, advertised)

    async def advance(self, model: str, advertised: Advertised) -> list[ResultRow]:
        """Finish the due step of ``model``, then plan and take the next ones (waiting out short gaps), until a
        step is left pending or the search is done; saves the state and the requests."""
        state = self.states.get(model)
        if state is None or model in self.busy:
            return []
        self.busy.add(model)
        rows: list[ResultRow] = []
        try:
            session = self._session(model, state)
            while await self._step(session, state, rows, advertised):
                pass
            await self.store.save_ttl_state(model, state.as_dict(), self.clock.wall())
            if rows:
                await self.store.add_run(rows, None)
        finally:
            self.busy.discard(model)
        return rows

    def _session(self, model: str, state: TtlState) -> ModelSession:
        recipe = Recipe(**{**state.recipe, "hints": tuple(state.recipe["hints"])})
        gauge = TokenGauge(state.gauge["per_word"], state.gauge["overhead"])
        return ModelSession(model, self.client(state.search_id), self.clock, self.config, recipe, gauge)

    async def _ask(self, session: ModelSession, prompt: Prompt, step: str, role: str, rows: list[ResultRow],
                   advertised: Advertised) -> Exchange:
        ex = await session.ask(prompt, test="ttl", step=step, role=role)
        rows.append(result_row(ex, source="ttl", cycle_id=None, advertised=advertised))
        return ex

    async def _prime(self, session: ModelSession, state: TtlState, stage: str, gap: float, rows: list[ResultRow],
                     advertised: Advertised, b: float | None = None) -> bool:
        prompt = session.prompt(session.cheap_size)
        step = f"gap {gap:g}s" if stage == "gap" else f"refresh {gap:g}+{b:g}s"
        prime = await self._ask(session, prompt, step, "prime", rows, advertised)
        if not prime.ok:
            return False
        primed_at = self.clock.wall()
        state.pending = {"nonce": prompt.nonce, "words": prompt.words, "stage": stage, "gap": gap, "b": b,
                         "step": step, "primed_at": primed_at, "due": primed_at + gap}
        return True

    async def _step(self, session: ModelSession, state: TtlState, rows: list[ResultRow],
                    advertised: Advertised) -> bool:
        """One move of the search; ``True`` while there is more to do now."""
        search, pending = state.search, state.pending
        if pending is not None:
            wait = pending["due"] - self.clock.wall()
            if wait > 0:
                if wait > INLINE_GAP:
                    return False
                await self.clock.sleep(wait)
                return True
            cache_control = "cache_control" in session.recipe.hints
            prompt = Prompt(pending["nonce"], pending["words"],
                            messages(pending["nonce"], pending["words"], cache_control=cache_control))
            again = await self._ask(session, prompt, pending["step"], "repeat", rows, advertised)
            state.pending = None
            if not again.ok:
                return False  # an upstream failure says nothing about the TTL: the step is taken again later
            gap = round(again.started_at - pending["primed_at"], 1)
            if pending["stage"] == "gap":
                search.record(gap, again.hit)
            elif pending["stage"] == "refresh" and again.hit:
                b = pending["b"]
                state.pending = {**pending, "stage": "refresh2", "due": self.clock.wall() + b,
                                 "step": f"refresh {pending['gap']:g}+{b:g}s"}
            elif pending["stage"] == "refresh2":
                search.refresh_on_hit, search.refresh_gaps = again.hit, [pending["gap"], pending["b"]]
            return True
        gap = search.next_gap()
        if gap is not None:
            return await self._prime(session, state, "gap", gap, rows, advertised)
        plan = search.refresh_plan()
        if plan is not None and not state.refresh_tried:
            state.refresh_tried = True
            return await self._prime(session, state, "refresh", plan[0], rows, advertised, b=plan[1])
        state.completed_at = self.clock.wall()
        state.bracket, state.refresh_on_hit = search.bracket, search.refresh_on_hit
        return False
