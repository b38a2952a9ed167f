"""The microscope: one live ``basic`` test of a model now, with everything a person needs to believe it.

It answers the raw requests (the key redacted) and the raw answers, each request's timings and cache
figures, the speed-up of the cached repeats, and a ``curl`` command that sends the same request again. The
key in that command is ``$PROBE_API_KEY`` (a shell variable the reader sets), never the key itself; the
body is the exact one sent, so the command reproduces the request, and, while the prefix lives, the hit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.contracts import Upstream
from proxy.errors import ClientError, NotFoundError
from proxy.probe.budget import Limits, day_start
from proxy.probe.catalog import Advertised, advertised
from proxy.probe.clock import Clock
from proxy.probe.exchange import Exchange
from proxy.probe.metrics import ProbeMetrics
from proxy.probe.provider import provider_of
from proxy.probe.records import result_row
from proxy.probe.report import ProbeReport
from proxy.probe.request import encode
from proxy.probe.runner import run_probe
from proxy.probe.session import ProbeConfig, median
from proxy.probe.store import ProbeStore

logger = logging.getLogger("cachegate.probe")
KEY_VARIABLE = "PROBE_API_KEY"
LIVE_AT_ONCE = 2  # live tests running at once on one replica (compare runs two)


def curl_command(request: dict[str, Any], *, key_variable: str = KEY_VARIABLE) -> str:
    """A shell command that sends ``request`` (as an exchange captured it) again."""
    parts = ["curl -sS -X " + request["method"], shlex.quote(request["url"])]
    for name, value in request["headers"]:
        if name.lower() == "authorization":
            parts.append(f'-H "authorization: Bearer ${key_variable}"')  # the reader's own key, from the shell
        else:
            parts.append("-H " + shlex.quote(f"{name}: {value}"))
    parts.append("--data-raw " + shlex.quote(encode(request["body"]).decode()))
    return " \\\n  ".join(parts)


def _timing(ex: Exchange) -> dict[str, Any]:
    return {"role": ex.role, "status": ex.status, "latency": ex.latency, "ttft": ex.ttft,
            "prompt_tokens": ex.usage.prompt_tokens, "cached_tokens": ex.cached, "hit": ex.hit, "error": ex.error}


def reading(report: ProbeReport) -> dict[str, Any]:
    """What the microscope answers for one report of a captured ``basic`` run."""
    exchanges = report.exchanges
    first = exchanges[0] if exchanges else None
    hits = [ex.latency for ex in exchanges[1:] if ex.hit and ex.latency is not None]
    cached = median(hits)
    speedup = round(first.latency / cached, 3) if first is not None and first.latency and cached else None
    figures = report.figure("basic", "hit_ratio")
    sent = first.request if first is not None and first.request is not None else None
    return {
        "model": report.model, "correlation_id": report.correlation_id, "started_at": report.started_at,
        "finished_at": report.finished_at, "verdict": report.verdict.verdict, "hit_ratio": figures,
        "first_hit_repeat": report.figure("basic", "first_hit_repeat"),
        "contaminated": report.verdict.contaminated, "latency_first": first.latency if first else None,
        "latency_cached_median": cached, "speedup": speedup, "timings": [_timing(ex) for ex in exchanges],
        "tokens_spent": report.tokens_spent, "tokens_estimated": report.tokens_estimated,
        "rejected_params": report.rejected_params, "error": report.error,
        "notes": list(report.verdict.notes), "curl": curl_command(sent) if sent is not None else None,
        "evidence": [ex.as_dict() for ex in exchanges],
    }


async def look(model: str, upstream: Upstream, *, api_key: str | None, venice: bool, clock: Clock,
               config: ProbeConfig, advertised: Advertised, hints: tuple[str, ...] = ()) -> ProbeReport:
    """Run the live ``basic`` test of ``model`` (with ``hints``) with every request and answer captured."""
    return await run_probe(model, ["basic"], upstream, api_key=api_key, clock=clock,
                           config=dataclasses.replace(config, basic_hints=hints), advertised=advertised,
                           venice=venice, capture=True)


class ProbeRefusedError(ClientError):
    """A live test that must not run now (a budget is used up, the balance is below the floor, or too many
    live tests run already)."""

    status_code = 409
    code = "probe_refused"


class Microscope:
    """Live tests on demand (``/probe/api/test/{model}``, ``/probe/api/compare/...``): checked against the
    budgets and the floor, at most :data:`LIVE_AT_ONCE` at a time, their requests stored like any other."""

    def __init__(self, *, upstream: Upstream, api_key: str | None, venice: bool, clock: Clock,
                 config: ProbeConfig, store: ProbeStore, limits: Limits, metrics: ProbeMetrics,
                 prices: Callable[[str], dict[str, Any] | None], known: Callable[[], Awaitable[set[str]]]) -> None:
        self.upstream = upstream
        self.api_key = api_key
        self.venice = venice
        self.clock = clock
        self.config = config
        self.store = store
        self.limits = limits
        self.metrics = metrics
        self.prices = prices  # a model's GET /models entry, if known
        self.known = known
        self.running = 0

    async def run(self, models: list[str]) -> list[dict[str, Any]]:
        """Live tests of ``models``, side by side; refused (404, 409) before any request when they must not run."""
        known = await self.known()
        unknown = [m for m in models if m not in known]
        if unknown:
            raise NotFoundError(f"Unknown model {', '.join(map(repr, unknown))}: the probe knows "
                                f"{', '.join(sorted(known)) or 'no model yet'}.", code="model_not_found")
        if self.running + len(models) > LIVE_AT_ONCE:
            raise ProbeRefusedError(f"{self.running} live test(s) are running; at most {LIVE_AT_ONCE} at a time.")
        self.running += len(models)
        try:
            spent = await self.store.spend(day_start(self.clock.wall()))
            reason = self.limits.stop(spent, await self.store.latest_balance())
            if reason is not None:
                raise ProbeRefusedError(f"No live test now: {reason}.")
            hints = {row.model: (row.hint,) for row in await self.store.latest_verdicts()
                     if row.hint and row.verdict in ("needs_hint", "routing_limited")}
            return list(await asyncio.gather(*(self._test(model, hints.get(model, ())) for model in models)))
        finally:
            self.running -= len(models)

    async def _test(self, model: str, hints: tuple[str, ...]) -> dict[str, Any]:
        entry = self.prices(model)
        prices = advertised(entry)
        report = await look(model, self.upstream, api_key=self.api_key, venice=self.venice, clock=self.clock,
                            config=self.config, advertised=prices, hints=hints)
        rows = [result_row(ex, source="microscope", cycle_id=None, advertised=prices) for ex in report.exchanges]
        self.metrics.count(rows)
        try:
            await self.store.add_run(rows, None)
        except Exception as exc:  # the answer is still worth giving
            logger.warning("probe: the live test of %s was not stored: %s", model, exc)
        return {**reading(report), "hints": list(hints), "provider": provider_of(model, entry),
                "pricing": prices.as_dict()}
