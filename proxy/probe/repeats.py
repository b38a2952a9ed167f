"""The tests that repeat one prompt: ``basic``, ``hints`` and ``persistence``.

- basic: a ~2k-token prompt and at least three repeats; which repeat first hit, the cached share per
  repeat, latency first vs repeats. Its first hit teaches the settle time the later tests wait.
- hints: which hint the model needs (none, ``prompt_cache_key``, ``x-grok-conv-id``, ``cache_control``,
  ``prompt_cache_retention``); a hint the model rejects with a 400 is recorded and dropped.
- persistence: N repeats without and with a routing hint. Near 1/servers without and near 1 with it is
  routing-limited, not broken.
"""

from __future__ import annotations

from proxy.probe.exchange import CheckResult, Exchange
from proxy.probe.request import HINTS, ROUTING_HINTS
from proxy.probe.session import ModelSession, median, ratio

FULL = 0.9  # a hit ratio at least this high counts as "hits reliably"


async def basic(session: ModelSession) -> CheckResult:
    cfg = session.config
    trial = await session.trial(cfg.basic_tokens, test="basic", step="repeats", repeats=max(3, cfg.repeats),
                                settle=cfg.repeat_pause, hints=cfg.basic_hints)
    first, repeats = trial[0], trial[1:]
    first_hit = next((i for i, ex in enumerate(repeats, 1) if ex.hit), None)
    if first_hit is not None:
        session.recipe.settle = cfg.repeat_pause * first_hit
    hit_latencies = [ex.latency for ex in repeats if ex.hit and ex.latency is not None]
    figures = {
        "prompt_tokens": first.usage.prompt_tokens,
        "cache_reported": any(ex.usage.cache_reported for ex in trial),
        "contaminated": first.hit,
        "first_cached_tokens": first.cached,
        "first_hit_repeat": first_hit,
        "cached_ratios": [ex.usage.cached_ratio if ex.ok else None for ex in repeats],
        "hit_ratio": ratio(repeats),
        "latency_first": first.latency,
        "latency_repeats_median": median([ex.latency for ex in repeats if ex.latency is not None]),
        "latency_hits_median": median(hit_latencies),
    }
    return CheckResult("basic", figures, trial)


async def _hint_trial(session: ModelSession, hints: tuple[str, ...], step: str) -> tuple[float | None, list[Exchange]]:
    trial = await session.trial(session.recipe.size, test="hints", step=step,
                                repeats=max(1, session.config.hint_repeats), hints=hints)
    return ratio(trial[1:]), trial


async def hints(session: ModelSession) -> CheckResult:
    """Try no hint, then each hint on its own until one makes every repeat hit."""
    evidence: list[Exchange] = []
    earlier = session.results.get("basic")
    baseline = earlier.figures.get("hit_ratio") if earlier is not None else None
    if baseline is None or baseline < FULL:  # basic's repeats ran without a hint: reuse them when they all hit
        baseline, trial = await _hint_trial(session, (), "none")
        evidence += trial
    tried: dict[str, float | None] = {"none": baseline}
    rejected: list[str] = []
    best, best_ratio = None, baseline or 0.0
    if (baseline or 0.0) < FULL:
        for hint in HINTS:
            hit_ratio, trial = await _hint_trial(session, (hint,), hint)
            evidence += trial
            if any(hint in ex.retried_without for ex in trial):
                rejected.append(hint)
                tried[hint] = None
                continue
            tried[hint] = hit_ratio
            if (hit_ratio or 0.0) > best_ratio:
                best, best_ratio = hint, hit_ratio or 0.0
            if best_ratio >= FULL and not session.config.all_hints:
                break
    if best is not None:
        session.recipe.hints = (best,)
    ignored = [h for h, r in tried.items() if h not in ("none", best) and r is not None and r <= (baseline or 0.0)]
    figures = {"needed": best, "hit_ratio_by_hint": tried, "rejected": rejected, "ignored": ignored,
               "hit_ratio": best_ratio if best is not None else baseline}
    return CheckResult("hints", figures, evidence)


async def persistence(session: ModelSession) -> CheckResult:
    cfg = session.config
    content_hints = tuple(h for h in session.recipe.hints if h not in ROUTING_HINTS)
    routing = session.recipe.routing_hint or "prompt_cache_key"
    without = await session.trial(session.cheap_size, test="persistence", step="without_hint",
                                  repeats=cfg.persistence_repeats, hints=content_hints)
    r0 = ratio(without[1:])
    with_hint: list[Exchange] = []
    if r0 is not None and r0 < FULL:  # only a shortfall needs the second arm
        with_hint = await session.trial(session.cheap_size, test="persistence", step=f"with_{routing}",
                                        repeats=cfg.persistence_repeats, hints=(*content_hints, routing))
    r1 = ratio(with_hint[1:])
    limited = r0 is not None and r1 is not None and 0 < r0 < FULL <= r1
    # every server that missed has stored the prompt since, so the misses count the servers reached: all of them
    # behind a rotating balancer, a lower bound behind a random one (tests/integration/probe/test_run_probe.py)
    misses = sum(1 for ex in without[1:] if ex.ok and not ex.hit)
    hosts = {ex.host for ex in without if ex.host}
    figures = {"repeats": cfg.persistence_repeats, "hit_ratio_without_hint": r0,
               "routing_hint": routing if with_hint else None, "hit_ratio_with_hint": r1, "routing_limited": limited,
               "servers_estimate": 1 + misses if limited else None, "hosts_seen": len(hosts) or None}
    if r1 is not None and r0 is not None and r1 >= FULL > r0 and routing not in session.recipe.hints:
        session.recipe.hints = (*session.recipe.hints, routing)
    return CheckResult("persistence", figures, without + with_hint)
