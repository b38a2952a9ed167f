"""The answers of ``/probe/api/*``, made from stored records. Pure: the routes read the store, these shape.

**Health** (``stats`` and ``health``), worst first:

- ``unknown``: no run has finished yet;
- ``unhealthy``: no model that was tested caches, or no run has succeeded for three intervals;
- ``degraded``: a model's latest run failed, or a model advertises a cached-input price it does not deliver;
- ``healthy``: otherwise.

The **mean cache rate** is the mean of the models' latest cache rates (the cached share of the prompt on
repeats; a model that does not cache counts 0, one whose upstream reports no cache field is left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from proxy.probe.records import CycleRow, VerdictRow
from proxy.probe.verdict import CACHING

HEALTH_RULE = ("unhealthy: no tested model caches, or no run succeeded for 3 intervals; degraded: a model's "
               "latest run failed, or a model advertises a cached-input price it does not deliver; "
               "healthy: otherwise")
SPARKLINE_RUNS = 10


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def health(latest: Sequence[VerdictRow], last_success: dict[str, float], *, now: float,
           interval: float) -> dict[str, Any]:
    reasons: list[str] = []
    if not latest:
        return {"status": "unknown", "rule": HEALTH_RULE, "reasons": ["no probe run has finished yet"]}
    newest = max(last_success.values(), default=None)
    if not any(row.verdict in CACHING for row in latest):
        reasons.append("no tested model caches")
    if newest is None or now - newest > 3 * interval:
        reasons.append("no run succeeded in the last 3 intervals" if newest is None else
                       f"the last successful run ended {round(now - newest)} s ago (over 3 intervals)")
    if reasons:
        return {"status": "unhealthy", "rule": HEALTH_RULE, "reasons": reasons}
    reasons += [f"{row.model}: its latest run failed ({row.error})" for row in latest if row.error]
    reasons += [f"{row.model}: advertises a cached-input price, but does not cache" for row in latest
                if row.drift == "advertised_not_observed"]
    return {"status": "degraded" if reasons else "healthy", "rule": HEALTH_RULE, "reasons": reasons}


def mean_cache_rate(latest: Sequence[VerdictRow]) -> float | None:
    rates = [row.cache_rate if row.cache_rate is not None else (0.0 if row.verdict == "no_caching" else None)
             for row in latest]
    known = [rate for rate in rates if rate is not None]
    return round(sum(known) / len(known), 4) if known else None


def stats(latest: Sequence[VerdictRow], last_cycle: CycleRow | None, last_success: dict[str, float], *,
          now: float, interval: float) -> dict[str, Any]:
    last_run = max((row.ts for row in latest), default=None)
    return {"now": now, "last_run": last_run, "last_run_iso": iso(last_run),
            "last_cycle": last_cycle.as_dict() if last_cycle else None,
            "models_tested": len(latest), "caching_models": sum(row.verdict in CACHING for row in latest),
            "verdicts": {v: sum(row.verdict == v for row in latest) for v in sorted({r.verdict for r in latest})},
            "mean_cache_rate": mean_cache_rate(latest),
            "health": health(latest, last_success, now=now, interval=interval)}


def _share(part: int | None, whole: int | None) -> float | None:
    return round(part / whole, 4) if part is not None and whole else None


def model(row: VerdictRow, stats: dict[str, Any] | None, since: float | None,
          ttl: dict[str, Any] | None) -> dict[str, Any]:
    report = row.report
    pricing = report.get("pricing") or {}
    figures = dict(stats or {})
    if figures:
        figures["hit_rate"] = _share(figures.get("hits"), figures.get("repeats"))
        figures["cached_share"] = _share(figures.get("cached_tokens"), figures.get("prompt_tokens"))
    ttl_seconds = (ttl or {}).get("ttl_seconds") or row.ttl_seconds
    return {
        "model": row.model, "provider": report.get("provider"), "verdict": row.verdict, "hint": row.hint,
        "since": since, "last_run": row.ts, "cache_rate": row.cache_rate, "hit_ratio": row.hit_ratio,
        "min_prefix_tokens": row.min_prefix_tokens, "step_tokens": row.step_tokens, "ttl_seconds": ttl_seconds,
        "ttl_status": (ttl or {}).get("ttl_status"), "refresh_on_hit": (ttl or {}).get("refresh_on_hit"),
        "ttl_due": (ttl or {}).get("ttl_due"),
        "unit_semantics": report.get("unit_semantics"), "stream_parity": report.get("stream_parity"),
        "speedup": row.speedup, "contaminated": row.contaminated, "advertised_caching": row.advertised_caching,
        "drift": row.drift, "advertised_cache_price": pricing.get("cached_input_per_1m"),
        "input_price": pricing.get("input_per_1m"), "saving_per_1m_cached_usd": pricing.get("saving_per_1m_cached"),
        "rejected_params": report.get("rejected_params") or [], "tokens_spent": row.tokens_spent,
        "tokens_estimated": report.get("tokens_estimated") or 0,
        "cost_usd": row.cost_usd, "error": row.error, "notes": report.get("notes") or [], "stats": figures,
    }


def sparklines(recent: dict[str, list[VerdictRow]]) -> dict[str, Any]:
    return {"runs": SPARKLINE_RUNS, "models": {m: [{"ts": row.ts, "cache_rate": row.cache_rate,
                                                    "verdict": row.verdict} for row in rows]
                                               for m, rows in sorted(recent.items())}}


def history(rows: Sequence[dict[str, Any]], *, bucket: str, since: float, until: float) -> dict[str, Any]:
    """The verdict series: per bucket over all models (runs, caching runs, mean cache rate), and per model."""
    overall: dict[float, dict[str, Any]] = {}
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        point = overall.setdefault(row["bucket"], {"bucket": row["bucket"], "runs": 0, "caching": 0, "_rates": []})
        point["runs"] += row["runs"]
        point["caching"] += row["caching"]
        if row["cache_rate"] is not None:
            point["_rates"].append((row["cache_rate"], row["runs"]))
        by_model.setdefault(row["model"], []).append({k: row[k] for k in ("bucket", "runs", "caching", "cache_rate",
                                                                          "hit_ratio")})
    series = []
    for point in sorted(overall.values(), key=lambda p: p["bucket"]):
        rates = point.pop("_rates")
        weight = sum(n for _, n in rates)
        point["cache_rate"] = round(sum(r * n for r, n in rates) / weight, 4) if weight else None
        point["iso"] = iso(point["bucket"])
        series.append(point)
    return {"bucket": bucket, "from": since, "to": until, "series": series, "models": by_model}


def usage(days: Sequence[dict[str, Any]], *, since: float, until: float) -> dict[str, Any]:
    """Tokens the probe spent and saved per day, the totals and the daily average (over days with requests)."""
    keys = ("requests", "prompt_tokens", "cached_tokens", "completion_tokens", "estimated_tokens", "cost_usd",
            "saved_usd")
    out_days = []
    for day in days:
        out_days.append({**day, "date": (iso(day["day"]) or "")[:10], "tokens": _tokens(day),
                         "savings_percent": _percent(day)})
    totals: dict[str, Any] = {k: sum(d[k] for d in days) for k in keys}
    totals["cost_usd"], totals["saved_usd"] = round(totals["cost_usd"], 8), round(totals["saved_usd"], 8)
    totals["tokens"] = _tokens(totals)
    totals["savings_percent"] = _percent(totals)
    n = len(days)
    average = {k: round(totals[k] / n, 2) if n else 0 for k in ("requests", "prompt_tokens", "cached_tokens",
                                                                 "tokens")}
    return {"from": since, "to": until, "days": out_days, "totals": totals, "daily_average": average}


def _tokens(values: dict[str, Any]) -> int:
    """Tokens spent: the reported counts and the estimates charged for answers without usage."""
    return int(values["prompt_tokens"] + values["completion_tokens"] + values["estimated_tokens"])


def _percent(values: dict[str, Any]) -> float | None:
    return round(100 * values["cached_tokens"] / values["prompt_tokens"], 2) if values["prompt_tokens"] else None
