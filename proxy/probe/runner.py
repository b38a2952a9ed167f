"""``run_probe``: every requested test of one model, in the order their lessons are needed, then the verdict.

``basic`` learns the settle time, ``hints`` the hint, ``sizes`` the smallest prompt that caches (which
the later tests use, to spend less), ``persistence`` whether routing limits the hit ratio; ``partial``,
``stream``, ``latency`` and ``ttl`` use what was learnt. Tests that only make sense for a model that
caches are skipped once it is clear that it does not (or does not say), so such a model costs fewer
requests than a full run.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from proxy.contracts import Upstream
from proxy.probe.catalog import Advertised
from proxy.probe.clock import Clock, SystemClock
from proxy.probe.exchange import CheckResult, ProbeClient
from proxy.probe.repeats import basic, hints, persistence
from proxy.probe.report import ProbeReport
from proxy.probe.session import ModelSession, ProbeConfig, Recipe
from proxy.probe.shared import latency, partial, stream_parity
from proxy.probe.sizes import sizes
from proxy.probe.ttl import ttl
from proxy.probe.verdict import decide

TESTS = ("basic", "hints", "sizes", "persistence", "partial", "stream", "latency", "ttl")
QUICK_TESTS = ("basic", "hints", "sizes", "stream", "latency")
_RUNNERS: dict[str, Callable[[ModelSession], Awaitable[CheckResult]]] = {
    "basic": basic, "hints": hints, "persistence": persistence, "sizes": sizes, "partial": partial,
    "stream": stream_parity, "latency": latency, "ttl": ttl}
_NEED_CACHING = ("persistence", "partial", "ttl", "latency")  # latency also runs where no cache field says
_NEED_FIELD = ("hints", "persistence", "sizes", "partial", "ttl")


def check_tests(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [name for name in names if name not in TESTS]
    if unknown:
        raise ValueError(f"unknown probe tests: {', '.join(unknown)} (known: {', '.join(TESTS)})")
    return tuple(name for name in TESTS if name in names)  # run in the order lessons are needed


def _skip_reason(name: str, session: ModelSession) -> str | None:
    answered = [ex for ex in session.exchanges if ex.ok]
    if not answered:
        return None
    if name in _NEED_FIELD and not any(ex.usage.cache_reported for ex in answered):
        return "the upstream reports no cache field"
    reported = any(ex.usage.cache_reported for ex in answered)
    if name in _NEED_CACHING and reported and not any(ex.hit and ex.role != "prime" for ex in answered):
        return "no caching observed"
    return None


async def run_probe(model: str, tests: Sequence[str], upstream: Upstream, *, api_key: str | None = None,
                    clock: Clock | None = None, config: ProbeConfig | None = None,
                    advertised: Advertised | None = None, venice: bool = False,
                    correlation_id: str | None = None, capture: bool = False) -> ProbeReport:
    """Probe ``model`` on ``upstream`` with ``tests`` (names from :data:`TESTS`); never raises for upstream
    failures: they are evidence (a report whose ``error`` says what went wrong). With ``capture`` every
    exchange keeps its raw request and answer (the microscope)."""
    clock = clock or SystemClock()
    config = config or ProbeConfig()
    correlation_id = correlation_id or uuid.uuid4().hex
    client = ProbeClient(upstream, clock, api_key=api_key, venice=venice, correlation_id=correlation_id,
                         max_tokens=config.max_tokens, capture=capture)
    session = ModelSession(model, client, clock, config, Recipe(settle=config.repeat_pause, size=config.basic_tokens))
    started = clock.wall()
    results: dict[str, CheckResult] = {}
    error = None
    for name in check_tests(tests):
        reason = _skip_reason(name, session)
        if reason is not None:
            results[name] = CheckResult(name, {}, skipped=reason)
            continue
        before = len(session.exchanges)
        results[name] = session.results[name] = await _RUNNERS[name](session)
        failed = [ex for ex in session.exchanges[before:] if not ex.ok]
        if failed and len(failed) == len(session.exchanges[before:]):
            error = f"{name}: every request failed: {failed[0].error or failed[0].status}"
            break
    verdict = decide(results, session.exchanges, advertised or Advertised())
    return ProbeReport(model, correlation_id, started, clock.wall(), verdict, results, session.exchanges,
                       sorted(client.rejected.get(model, set())), advertised or Advertised(), error,
                       recipe=session.recipe, gauge=session.gauge)


def summary(reports: Sequence[ProbeReport], *, evidence: bool = True) -> list[dict[str, Any]]:
    return [report.as_dict(evidence=evidence) for report in reports]
