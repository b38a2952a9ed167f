"""Active warnings: every ``ALERT_CHECK_SECONDS`` (:data:`CHECK_EVERY`) the ``alerts`` job samples this
process's counters, evaluates the rules (:mod:`proxy.monitoring.warnings`, the same as
``deploy/prometheus/alerts.yml``) and keeps the warnings that hold, each with the time it started.
``/health/detailed`` lists them (:meth:`Alerts.active`); when one starts or ends, the webhook
(``ALERT_WEBHOOK_URL``, optional) is told, naming the process it comes from (:class:`Origin`).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.component import Contribution, Job, Panel
from proxy.monitoring.registry import LabelledCollector, Metrics
from proxy.monitoring.warnings import FALSE_HIT_SPAN, Sample, Thresholds, Warning, evaluate
from proxy.monitoring.webhook import Webhook
from proxy.platform.failopen import FailOpen

logger = logging.getLogger("cachegate.alerts")

CHECK_EVERY = 15.0
#: the dashboard's banner: first of all panels
PANEL = Panel("warnings", "Warnings", "warnings", "/health/detailed", order=5)
HIT_OUTCOMES = (("exact_hit",), ("semantic_hit",))


@dataclass(frozen=True)
class Origin:
    """The process a webhook message comes from. Alone it is ``HOST:PORT`` (``address``). Under ``cachegate serve
    --workers N`` every worker judges its own counters, so each names itself, as Prometheus gives each target an
    ``instance`` of its own: ``HOST:PORT/worker-2``, with its number as the ``worker`` field and label, so that a
    receiver can tell N messages apart, and group or deduplicate them on the other labels."""

    address: str
    worker: int | None = None  # from 0, as the supervisor numbers its workers; None for a process on its own

    @property
    def instance(self) -> str:
        return self.address if self.worker is None else f"{self.address}/worker-{self.worker}"

    @property
    def labels(self) -> dict[str, str]:
        """What it adds to a warning's labels (strings, as Prometheus labels are): nothing when alone."""
        return {} if self.worker is None else {"worker": str(self.worker)}


UNNAMED = Origin("")
#: addresses that name no one machine: a process listening on all of them is named by its host's name
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def address_of(host: str, port: int, hostname: str) -> str:
    """``HOST:PORT`` as a webhook receiver can tell replicas apart by it: a wildcard ``HOST`` (the usual
    ``0.0.0.0``) would give every replica the same name, so it stands for ``hostname`` (in a container, the
    pod's or container's name), as Prometheus names a target by where it is reached."""
    host = hostname if host in WILDCARDS else host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Sampler:
    """Reads the counters a :class:`Sample` holds from the app's metrics, levels and fail-open book."""

    def __init__(self, metrics: Metrics, failopen: FailOpen, *, fold: Callable[[], None],
                 false_hits: Callable[[], int]) -> None:
        self.metrics = metrics
        self.failopen = failopen
        self.fold = fold  # the observer's waiting events become numbers first
        self.false_hits = false_hits

    def __call__(self, now: float) -> Sample:
        self.fold()
        metrics = self.metrics
        durations = metrics.request_duration
        requests = errors = 0
        for (route, _method, status), count in metrics.http_requests.values.items():
            if route.startswith("/v1/"):
                requests += int(count)
                if status.startswith("5"):
                    errors += int(count)
        levels = metrics.levels
        return Sample(
            at=now, hits=sum(durations.count(labels) for labels in HIT_OUTCOMES), misses=durations.count(("miss",)),
            requests=requests, errors=errors,
            evictions={level.name: level.stats.evictions.get("size", 0) for level in levels},
            failopen={name: state.failures for name, state in self.failopen.components.items()},
            false_hits=self.false_hits(),
            fill={level.name: fill for level in levels if (fill := level.report.fill) is not None},
            down=frozenset(name for name, state in self.failopen.components.items() if state.degraded))


class Alerts:
    def __init__(self, thresholds: Thresholds, *, sample: Callable[[float], Sample], webhook: Webhook | None = None,
                 origin: Origin = UNNAMED, every: float = CHECK_EVERY, clock: Callable[[], float] = time.time) -> None:
        self.thresholds = thresholds
        self.every = every
        self.sample = sample
        self.webhook = webhook
        self.origin = origin
        self._clock = clock
        keep = int(max(thresholds.window_seconds, FALSE_HIT_SPAN) / every) + 2
        self.samples: collections.deque[Sample] = collections.deque(maxlen=keep)
        self.current: dict[Any, tuple[Warning, float]] = {}  # key → (warning, started at)

    async def check(self) -> list[Warning]:
        now = self._clock()
        self.samples.append(self.sample(now))
        found = {warning.key: warning for warning in evaluate(self.samples, self.thresholds)}
        for key in [key for key in self.current if key not in found]:
            warning, started = self.current.pop(key)
            logger.info("warning ended%s: %s", self._where, warning.message)
            self._tell("resolved", warning, started, now)
        for key, warning in found.items():
            if key in self.current:
                self.current[key] = (warning, self.current[key][1])  # the latest value, the first start
                continue
            self.current[key] = (warning, now)
            logger.warning("warning%s: %s (threshold %g)", self._where, warning.message, warning.threshold)
            self._tell("firing", warning, now, None)
        return list(found.values())

    def _tell(self, status: str, warning: Warning, started: float, ended: float | None) -> None:
        if self.webhook is None:
            return
        origin = self.origin
        self.webhook.notify({"source": "cachegate", "status": status, **warning.as_dict(),
                             "labels": {**warning.labels, **origin.labels}, "started_at": started, "ended_at": ended,
                             "instance": origin.instance, "worker": origin.worker})

    @property
    def _where(self) -> str:
        # Workers of one `serve --workers N` share a log (and answer /health behind one port): name which.
        return "" if self.origin.worker is None else f" ({self.origin.instance})"

    def active(self) -> list[dict[str, Any]]:
        """The warnings that hold, oldest first (``/health/detailed``), each naming the process that judged
        it, as the webhook does: behind one port, the worker that answered."""
        origin = self.origin
        return [{**warning.as_dict(), "since": started, "instance": origin.instance, "worker": origin.worker}
                for warning, started in sorted(self.current.values(), key=lambda item: item[1])]

    def contribution(self) -> Contribution:
        return Contribution(jobs=[Job("alerts", self.every, self.check)], panels=[PANEL])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def export_states(metrics: Metrics, failopen: FailOpen, *, feedback: Mapping[str, int] | None,
                  refreshes: Mapping[str, int]) -> None:
    """What alerts.yml watches beside the metrics the observer keeps, as Prometheus families read at scrape
    time: fail-open states, semantic feedback verdicts (when the tier is on), background refreshes."""
    registry = metrics.registry
    registry.register(LabelledCollector(
        "dependency_up", "1 while a dependency answers, 0 once it failed and until it answers again.", "component",
        lambda: {name: 0.0 if state.degraded else 1.0 for name, state in failopen.components.items()}))
    registry.register(LabelledCollector(
        "failopen_events", "Calls to a dependency that failed and were served without it.", "component",
        lambda: {name: state.failures for name, state in failopen.components.items()}, counter=True))
    registry.register(LabelledCollector(
        "cache_refreshes", "Background refreshes (refresh-ahead, stale-while-revalidate) by result: started, "
        "refreshed, failed, capped (CACHE_REFRESH_MAX_PER_MINUTE), busy (one per key at a time).", "result",
        lambda: dict(refreshes), counter=True))
    if feedback is not None:
        registry.register(LabelledCollector(
            "semantic_feedback", "Semantic hits clients judged (POST /admin/cache/feedback), by verdict.", "verdict",
            lambda: {"right": feedback.get("feedback_right", 0), "wrong": feedback.get("feedback_wrong", 0)},
            counter=True))
