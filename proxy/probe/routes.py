"""``/probe/api/*``: the probe monitor's API (GETs ``Guard.MONITOR``, POSTs ``Guard.ADMIN``).

Every answer is read from the store, so each replica answers the same (the leader only runs the
scheduler); ``test/{model}`` and ``compare/{m1}/{m2}`` run live tests. Bad query values, and unknown
parameters, are a 400 naming them (:mod:`proxy.probe.query`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from proxy.component import Guard, RouteSpec, route
from proxy.errors import ClientError, NotFoundError
from proxy.probe import views
from proxy.probe.clock import Clock
from proxy.probe.leader import Leadership
from proxy.probe.microscope import Microscope
from proxy.probe.query import Query
from proxy.probe.runner import TESTS
from proxy.probe.scheduler import ProbeScheduler
from proxy.probe.stepper import ttl_figures
from proxy.probe.store import ProbeStore, ResultFilter

BUCKETS = {"hour": 3600, "day": 86400}
DAY = 86400.0
SOURCES = ("cycle", "ttl", "microscope")  # a scheduled run, a TTL step, a live test


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


class ConflictError(ClientError):
    status_code = 409
    code = "conflict"


class ProbeRoutes:
    def __init__(self, *, store: ProbeStore, scheduler: ProbeScheduler, leadership: Leadership, clock: Clock,
                 microscope: Microscope, known: Callable[[], Awaitable[set[str]]], retention_days: int) -> None:
        self.store = store
        self.scheduler = scheduler
        self.leadership = leadership
        self.clock = clock
        self.microscope = microscope
        self.known = known
        self.retention = retention_days * DAY

    def routes(self) -> list[RouteSpec]:
        api = "/probe/api"
        return [
            route(f"{api}/stats", self.stats, guard=Guard.MONITOR),
            route(f"{api}/models", self.models, guard=Guard.MONITOR),
            route(f"{api}/sparklines", self.sparklines, guard=Guard.MONITOR),
            route(f"{api}/results", self.results, guard=Guard.MONITOR),
            route(f"{api}/history", self.history, guard=Guard.MONITOR),
            route(f"{api}/usage", self.usage, guard=Guard.MONITOR),
            route(f"{api}/scheduler", self.scheduler_state, guard=Guard.MONITOR),
            route(f"{api}/health", self.health, guard=Guard.MONITOR),
            route(f"{api}/run", self.run, "POST", guard=Guard.ADMIN),
            route(f"{api}/test/{{model:path}}", self.test, guard=Guard.MONITOR),
            route(f"{api}/compare/{{pair:path}}", self.compare, guard=Guard.MONITOR),
            route(f"{api}/model/{{model:path}}/history", self.model_history, guard=Guard.MONITOR),
        ]

    async def _overview(self) -> tuple[list[Any], dict[str, float]]:
        return await self.store.latest_verdicts(), await self.store.last_successes()

    async def stats(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        latest, successes = await self._overview()
        cycles = await self.store.cycles(1)
        return json(views.stats(latest, cycles[0] if cycles else None, successes, now=self.clock.wall(),
                                interval=self.scheduler.plan.interval))

    async def models(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        now = self.clock.wall()
        latest = await self.store.latest_verdicts()
        stats = await self.store.model_stats(now - DAY)
        streaks = await self.store.streaks()
        ttl = {model: ttl_figures(state) for model, state in (await self.store.ttl_states()).items()}
        models = [views.model(row, stats.get(row.model), streaks.get(row.model), ttl.get(row.model))
                  for row in latest]
        return json({"now": now, "stats_window_seconds": DAY, "models": models})

    async def sparklines(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        return json(views.sparklines(await self.store.recent_verdicts(views.SPARKLINE_RUNS)))

    async def results(self, request: Request) -> Response:
        query = Query(request.query_params, ("model", "test", "source", "from", "to", "limit", "format"))
        where = ResultFilter(model=query.text("model"), test=query.choice("test", TESTS),
                             source=query.choice("source", SOURCES), since=query.time("from"),
                             until=query.time("to"))
        limit = query.integer("limit", 1, 1000, 100)
        fmt = query.choice("format", ("json", "jsonl"), "json")
        if where.since is not None and where.until is not None and where.since > where.until:
            query.problems["from"] = "'from' must not be later than 'to'"
        query.check()
        if fmt == "jsonl":
            return StreamingResponse(self._lines(where), media_type="application/x-ndjson",
                                     headers={"content-disposition": 'attachment; filename="probe-results.jsonl"',
                                              "cache-control": "no-store"})
        rows = await self.store.results(where, limit=limit)
        return json({"count": len(rows), "limit": limit, "results": [row.as_dict() for row in rows]})

    async def _lines(self, where: ResultFilter) -> AsyncIterator[bytes]:
        async for row in self.store.export(where):
            yield orjson.dumps(row.as_dict()) + b"\n"

    async def history(self, request: Request) -> Response:
        query = Query(request.query_params, ("model", "from", "to", "bucket"))
        model = query.text("model")
        since, until = query.window(self.clock.wall(), 7 * DAY)
        bucket = query.choice("bucket", tuple(BUCKETS), "hour") or "hour"
        query.check()
        end = self.clock.wall() if until is None else until
        rows = await self.store.verdict_series(since=since, until=until, width=BUCKETS[bucket], model=model)
        return json(views.history(rows, bucket=bucket, since=since, until=end))

    async def usage(self, request: Request) -> Response:
        query = Query(request.query_params, ("from", "to"))
        since, until = query.window(self.clock.wall(), self.retention)
        query.check()
        days = await self.store.usage_by_day(since=since, until=until)
        return json(views.usage(days, since=since, until=self.clock.wall() if until is None else until))

    async def scheduler_state(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        return json(await self.scheduler.state())

    async def health(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        latest, successes = await self._overview()
        cycles = await self.store.cycles(1)
        body = views.health(latest, successes, now=self.clock.wall(), interval=self.scheduler.plan.interval)
        body["leader"] = self.scheduler.leads
        body["running"] = self.scheduler.running is not None
        body["last_cycle"] = cycles[0].as_dict() if cycles else None
        return json(body)

    async def run(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        if not self.leadership.leader:
            if await self.leadership.request_run():
                return json({"started": False, "requested": True, "leader": False,
                             "detail": "this replica does not lead: the leader starts the cycle on its next tick"},
                            202)
            raise ConflictError("This replica does not lead the probe scheduler and cannot reach the leader.")
        if self.scheduler.running is not None:
            raise ConflictError(f"A cycle is running already ({self.scheduler.running.id}).")
        cycle = await self.scheduler.start("manual")
        started = cycle.status == "running"
        return json({"started": started, "requested": True, "leader": True, "cycle": cycle.as_dict()},
                    202 if started else 200)

    async def test(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        [result] = await self.microscope.run([request.path_params["model"]])
        return json(result)

    async def compare(self, request: Request) -> Response:
        Query(request.query_params, ()).check()
        first, second = await self._pair(request.path_params["pair"])
        a, b = await self.microscope.run([first, second])
        return json({"models": [a, b], "comparison": _compare(a, b)})

    async def _pair(self, pair: str) -> tuple[str, str]:
        """``m1/m2``; where model ids have slashes themselves, the split whose both sides are known models."""
        known = await self.known()
        splits = [(pair[:i], pair[i + 1:]) for i, ch in enumerate(pair) if ch == "/"]
        for a, b in splits:
            if a in known and b in known:
                return a, b
        if len(splits) == 1 and all(splits[0]):
            return splits[0]
        raise NotFoundError(f"compare needs two known models as /probe/api/compare/{{m1}}/{{m2}}; got {pair!r}",
                            code="model_not_found")

    async def model_history(self, request: Request) -> Response:
        query = Query(request.query_params, ("from", "to", "limit"))
        model = request.path_params["model"]
        since, until = query.window(self.clock.wall(), self.retention)
        limit = query.integer("limit", 1, 1000, 100)
        query.check()
        rows = await self.store.verdicts(model=model, since=since, until=until, limit=limit)
        if not rows and model not in await self.known():
            raise NotFoundError(f"The probe has no history of model {model!r}.", code="model_not_found")
        return json({"model": model, "from": since, "to": self.clock.wall() if until is None else until,
                     "count": len(rows),
                     "verdicts": [row.as_dict() for row in rows]})


def _compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    def better(key: str) -> str | None:
        x, y = a.get(key), b.get(key)
        if x is None or y is None or x == y:
            return None
        return a["model"] if x > y else b["model"]

    return {"higher_hit_ratio": better("hit_ratio"), "higher_speedup": better("speedup"),
            "both_cache": (a["verdict"], b["verdict"]) == ("caches", "caches")}
