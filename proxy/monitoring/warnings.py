"""The proxy's own warnings: the rules of ``deploy/prometheus/alerts.yml``, over samples of this process's
counters. Pure: no I/O, no clock (every sample says when it was taken).

:func:`evaluate` looks at the samples of the last hour (one every few seconds, :mod:`proxy.monitoring.alerts`
takes them) and answers the warnings that hold now, each with its value and threshold:

===================  =========================================================  ======================
warning              holds when                                                 over
===================  =========================================================  ======================
``hit_rate_low``     hits / (hits + misses) < ALERT_HIT_RATE_BELOW, with at     ALERT_WINDOW_SECONDS
                     least ALERT_MIN_REQUESTS lookups
``evictions_high``   a level's size evictions a minute > ALERT_EVICTIONS_...    5 minutes
``store_full``       a level's bytes / bound > ALERT_STORE_FILL                 now
``upstream_errors``  share of /v1 answers that are 5xx > ALERT_UPSTREAM_...     5 minutes
``dependency_down``  a dependency failed and has not answered since             now
``failopen_rising``  a dependency's fail-open events a minute > ALERT_FAIL...   5 minutes
``false_hits``       semantic hits reported wrong > ALERT_FALSE_HITS_PER_HOUR   1 hour
===================  =========================================================  ======================

A rate needs a minute of samples at least (a process younger than that warns of nothing but what holds
now). A threshold of 0 turns its warning off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RATE_SPAN = 300.0
FALSE_HIT_SPAN = 3600.0
MIN_SPAN = 60.0


@dataclass(frozen=True)
class Thresholds:
    hit_rate_below: float = 0.2
    min_requests: int = 20
    evictions_per_minute: float = 100.0
    store_fill: float = 0.9
    upstream_error_rate: float = 0.05
    failopen_per_minute: float = 10.0
    false_hits_per_hour: float = 5.0
    window_seconds: float = 600.0


@dataclass(frozen=True)
class Sample:
    """This process's counters at ``at`` (Unix seconds); gauges as they were then."""

    at: float
    hits: int = 0  # chat requests answered from either tier
    misses: int = 0
    requests: int = 0  # /v1 answers
    errors: int = 0  # /v1 answers with a 5xx
    evictions: Mapping[str, int] = field(default_factory=dict)  # level → size evictions
    failopen: Mapping[str, int] = field(default_factory=dict)  # dependency → fail-open events
    false_hits: int = 0  # semantic hits reported wrong
    fill: Mapping[str, float] = field(default_factory=dict)  # level → bytes / bound
    down: frozenset[str] = frozenset()  # dependencies that failed and have not answered since


@dataclass(frozen=True)
class Warning:
    name: str
    message: str
    value: float
    threshold: float
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What makes a warning the same one from one evaluation to the next."""
        return self.name, tuple(sorted(self.labels.items()))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "value": self.value, "threshold": self.threshold,
                "labels": dict(self.labels)}


def _since(samples: Sequence[Sample], span: float) -> tuple[Sample, Sample] | None:
    """The oldest sample within ``span`` of the newest, and the newest; ``None`` under a minute apart."""
    newest = samples[-1]
    oldest = next(s for s in samples if s.at >= newest.at - span)
    if newest.at - oldest.at < MIN_SPAN:
        return None
    return oldest, newest


def _per_minute(before: Mapping[str, int], after: Mapping[str, int], seconds: float) -> dict[str, float]:
    return {name: (count - before.get(name, 0)) * 60.0 / seconds for name, count in after.items()}


def evaluate(samples: Sequence[Sample], t: Thresholds) -> list[Warning]:
    if not samples:
        return []
    now = samples[-1]
    out: list[Warning] = []
    window = _since(samples, t.window_seconds)
    if t.hit_rate_below > 0 and window is not None:
        old, new = window
        hits, lookups = new.hits - old.hits, (new.hits + new.misses) - (old.hits + old.misses)
        if lookups >= max(1, t.min_requests) and hits / lookups < t.hit_rate_below:
            out.append(Warning("hit_rate_low", f"hit rate {hits / lookups:.1%} over the last "
                               f"{(new.at - old.at) / 60:.0f} min ({lookups} requests)", round(hits / lookups, 4),
                               t.hit_rate_below))
    rates = _since(samples, RATE_SPAN)
    if rates is not None:
        old, new = rates
        seconds = new.at - old.at
        if t.evictions_per_minute > 0:
            for level, rate in sorted(_per_minute(old.evictions, new.evictions, seconds).items()):
                if rate > t.evictions_per_minute:
                    out.append(Warning("evictions_high", f"the {level} level evicts {rate:.0f} entries a minute for "
                                       "room", round(rate, 2), t.evictions_per_minute, {"tier": level}))
        answers, errors = new.requests - old.requests, new.errors - old.errors
        if t.upstream_error_rate > 0 and answers > 0 and errors / answers > t.upstream_error_rate:
            out.append(Warning("upstream_errors", f"{errors / answers:.1%} of proxied requests failed with 5xx",
                               round(errors / answers, 4), t.upstream_error_rate))
        if t.failopen_per_minute > 0:
            for name, rate in sorted(_per_minute(old.failopen, new.failopen, seconds).items()):
                if rate > t.failopen_per_minute:
                    out.append(Warning("failopen_rising", f"{name} fails {rate:.0f} times a minute; served without it",
                                       round(rate, 2), t.failopen_per_minute, {"component": name}))
    if t.store_fill > 0:
        for level, fill in sorted(now.fill.items()):
            if fill > t.store_fill:
                out.append(Warning("store_full", f"the {level} level is {fill:.1%} full", round(fill, 4),
                                   t.store_fill, {"tier": level}))
    for name in sorted(now.down):
        out.append(Warning("dependency_down", f"serving without {name}", 1.0, 0.0, {"component": name}))
    hour = _since(samples, FALSE_HIT_SPAN)
    if t.false_hits_per_hour > 0 and hour is not None:
        old, new = hour
        wrong = new.false_hits - old.false_hits
        if wrong > t.false_hits_per_hour:
            out.append(Warning("false_hits", f"{wrong} semantic hits were reported wrong in the last "
                               f"{(new.at - old.at) / 60:.0f} min", float(wrong), t.false_hits_per_hour))
    return out
