"""What the probe monitor keeps, as plain records, and how a run's report becomes them. Pure.

- :class:`ResultRow`: one probe request (from an :class:`~proxy.probe.exchange.Exchange`), with what it cost
  and saved at the model's advertised prices and its raw usage, redacted to numbers; an answer without usage
  keeps its token columns unknown and is charged an estimate, ``estimated_tokens`` (:mod:`proxy.probe.charge`),
  which its ``cost_usd`` includes;
- :class:`VerdictRow`: one model's verdict of one run, with the headline figures and the report itself;
- :class:`CycleRow`: one scheduler cycle.

The **cache rate** of a run is the mean cached share of the prompt over its answered repeats (not its
first requests, which are fresh by construction); ``None`` when no answer reported a cache field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.probe.catalog import Advertised
from proxy.probe.exchange import Exchange
from proxy.probe.report import ProbeReport

REDACTED = "<redacted>"


def redact_usage(raw: Any, depth: int = 0) -> Any:
    """The raw usage with numbers, booleans and nulls kept and every string replaced (nothing else in a
    usage object is needed to check a figure, and strings are where anything private would be)."""
    if depth > 4:
        return REDACTED
    if isinstance(raw, dict):
        return {str(k): redact_usage(v, depth + 1) for k, v in list(raw.items())[:50]}
    if isinstance(raw, list):
        return [redact_usage(v, depth + 1) for v in raw[:50]]
    if raw is None or isinstance(raw, bool | int | float):
        return raw
    return REDACTED


@dataclass
class ResultRow:
    ts: float
    cycle_id: str | None
    run_id: str
    source: str  # cycle | ttl | microscope
    model: str
    test: str
    step: str
    role: str
    stream: bool
    hints: str
    status: int
    prompt_tokens: int | None
    cached_tokens: int | None
    write_tokens: int | None
    completion_tokens: int | None
    estimated_tokens: int  # charged to the budget where the upstream reported no count (0: it reported all)
    latency: float | None
    ttft: float | None
    error: str | None
    request_hash: str
    upstream_request_id: str | None
    host: str | None
    balance_usd: float | None
    balance_diem: float | None
    cost_usd: float | None
    saved_usd: float | None
    raw_usage: Any

    @property
    def tokens(self) -> int:
        """What the request is charged to the budget: the reported counts plus the estimate."""
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0) + self.estimated_tokens

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRow))


def result_row(ex: Exchange, *, source: str, cycle_id: str | None, advertised: Advertised) -> ResultRow:
    usage, spent = ex.usage, ex.charge
    cached = usage.cached_tokens if ex.ok else None
    cost = saved = None
    if ex.billed and (usage.prompt_tokens is not None or spent.estimated_tokens):
        # an estimated prompt is priced as uncached: what the cache saved is not known, so err high
        cost = advertised.cost(spent.prompt_tokens, cached or 0, spent.completion_tokens)
    if ex.ok and usage.prompt_tokens is not None:
        per_million = advertised.saving_per_million
        saved = (cached or 0) * per_million / 1e6 if per_million is not None else None
    return ResultRow(
        ts=ex.started_at, cycle_id=cycle_id, run_id=ex.correlation_id, source=source, model=ex.model, test=ex.test,
        step=ex.step, role=ex.role, stream=ex.stream, hints=",".join(ex.hints), status=ex.status,
        prompt_tokens=usage.prompt_tokens, cached_tokens=cached, write_tokens=usage.cache_write_tokens,
        completion_tokens=usage.completion_tokens, estimated_tokens=spent.estimated_tokens, latency=ex.latency,
        ttft=ex.ttft, error=ex.error,
        request_hash=ex.request_hash, upstream_request_id=ex.upstream_request_id, host=ex.host,
        balance_usd=ex.balance_usd, balance_diem=ex.balance_diem, cost_usd=cost, saved_usd=saved,
        raw_usage=redact_usage(ex.raw_usage))


def cache_rate(exchanges: list[Exchange]) -> float | None:
    shares = [ex.usage.cached_ratio for ex in exchanges if ex.ok and ex.role == "repeat"]
    known = [share for share in shares if share is not None]
    return round(sum(known) / len(known), 4) if known else None


@dataclass
class VerdictRow:
    ts: float
    started_at: float
    cycle_id: str | None
    run_id: str
    model: str
    verdict: str
    hint: str | None
    hit_ratio: float | None
    cache_rate: float | None
    min_prefix_tokens: int | None
    step_tokens: int | None
    ttl_lower: float | None
    ttl_upper: float | None
    speedup: float | None
    contaminated: bool
    advertised_caching: bool | None
    drift: str | None
    tokens_spent: int
    cost_usd: float | None
    error: str | None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ttl_seconds(self) -> list[float | None] | None:
        if self.ttl_lower is None and self.ttl_upper is None:
            return None
        return [self.ttl_lower, self.ttl_upper]

    def as_dict(self, *, report: bool = False) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ttl_seconds"] = self.ttl_seconds
        if not report:
            del out["report"]
        return out


def verdict_row(report: ProbeReport, rows: list[ResultRow], *, cycle_id: str | None,
                ttl: dict[str, Any] | None) -> VerdictRow:
    """The verdict of one run; ``ttl`` is the model's TTL figures (measured across cycles), if any."""
    data = report.as_dict(evidence=False)
    if ttl is not None:
        data.update(ttl)
    bracket = data.get("ttl_seconds") or [None, None]
    costs = [row.cost_usd for row in rows if row.cost_usd is not None]
    return VerdictRow(
        ts=report.finished_at, started_at=report.started_at, cycle_id=cycle_id, run_id=report.correlation_id,
        model=report.model, verdict=data["verdict"], hint=data["hint"], hit_ratio=data["hit_ratio"],
        cache_rate=cache_rate(report.exchanges), min_prefix_tokens=data["min_prefix_tokens"],
        step_tokens=data["step_tokens"], ttl_lower=bracket[0], ttl_upper=bracket[1], speedup=data["speedup"],
        contaminated=bool(data["contaminated"]), advertised_caching=data["advertised_caching"], drift=data["drift"],
        tokens_spent=report.tokens_spent, cost_usd=round(sum(costs), 8) if costs else None, error=report.error,
        report=data)


@dataclass
class CycleRow:
    id: str
    replica: str
    trigger: str  # scheduled | manual
    started_at: float
    finished_at: float | None = None
    status: str = "running"  # running | completed | stopped | skipped | failed | interrupted
    reason: str | None = None
    planned: list[str] = field(default_factory=list)
    probed: list[str] = field(default_factory=list)
    requests: int = 0
    tokens: int = 0  # estimates included
    estimated_tokens: int = 0  # of ``tokens``, those charged for answers without usage
    cost_usd: float = 0.0

    @property
    def duration(self) -> float | None:
        return None if self.finished_at is None else round(self.finished_at - self.started_at, 3)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "duration_seconds": self.duration}


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)
