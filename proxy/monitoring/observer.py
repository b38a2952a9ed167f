"""The :class:`~proxy.contracts.Observer` that feeds metrics, the ledger, the usage history and the log.

Every method is O(1) and does no I/O: it increments Prometheus children (cached per label set), adds
deltas to the ledger, appends one sample to the sliding windows and one tuple to each writer's buffer.
Anything that goes wrong in here is logged (rate-limited) and swallowed: monitoring never fails a request.

Conventions other parts rely on:

- ``cache_lookup(tier, outcome, seconds)``: ``tier`` is ``exact`` or ``semantic`` with ``outcome``
  ``hit``/``miss``/``error`` (a shadow-mode match is a ``miss`` there: shadow hits are counted once, from
  ``RequestRecord.shadow_hit``); ``tier="embedding"`` reports an embedding's duration (outcome ``ok`` or
  ``error``) and feeds ``cachegate_embedding_duration_seconds``.
- A hit's ``record.usage`` is the stored answer's usage: the tokens it saved, priced at its model's rate.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from ..contracts import RequestRecord
from .ledger import GLOBAL, Ledger
from .pricing import Pricing
from .registry import Metrics
from .request_log import RequestLog
from .usage import UsageStore
from .window import Window

logger = logging.getLogger("cachegate.monitoring")

CHAT_OUTCOMES = {"exact_hit": "exact_hits", "semantic_hit": "semantic_hits", "miss": "misses", "bypass": "bypassed"}
HITS = {"exact_hit": "exact", "semantic_hit": "semantic"}
LOG_LABELS = {"exact_hit": "EXACT_HIT", "semantic_hit": "SEMANTIC_HIT", "miss": "MISS", "bypass": "BYPASS"}
MAX_ROUTES = 200
MAX_MODELS = 500
OTHER = "other"
_ID_LIKE = re.compile(r"[^a-z_]")


def normalize_route(path: str) -> str:
    """A bounded label for a request path: segments that look like ids become ``{id}``."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        return "/"
    out = [part if part == "v1" or not (_ID_LIKE.search(part) or len(part) > 40) else "{id}" for part in parts[:4]]
    return "/" + "/".join(out) + ("/…" if len(parts) > 4 else "")


def usage_numbers(usage: Any) -> tuple[int, int, int]:
    """(prompt, completion, provider-cached) tokens of an OpenAI ``usage`` object; zeros when absent."""
    if not isinstance(usage, dict):
        return 0, 0, 0
    try:
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    except (TypeError, ValueError):
        return 0, 0, 0
    return prompt, completion, cached


class MonitoringObserver:
    def __init__(self, *, metrics: Metrics, ledger: Ledger, pricing: Pricing, window_seconds: float,
                 usage: UsageStore | None = None, request_log: RequestLog | None = None) -> None:
        self.metrics = metrics
        self.ledger = ledger
        self.pricing = pricing
        self.usage = usage
        self.request_log = request_log
        #: (duration, route, cache, status, model) of every request
        self.requests = Window(window_seconds)
        #: (ttft, cache, tokens/s or None) of every stream
        self.streams = Window(window_seconds)
        self.started = time.monotonic()
        #: streamed responses being sent right now (kept by :class:`~proxy.monitoring.streams.StreamWatch`)
        self.active_streams = 0
        metrics.active_streams.set_function(lambda: self.active_streams)
        self._routes: dict[str, str] = {}
        self._route_labels: set[str] = set()
        self._models: dict[str, str] = {}
        self._last_failure_log = 0.0

    # -- Observer ---------------------------------------------------------------------------------

    def cache_lookup(self, tier: str, outcome: str, seconds: float) -> None:
        try:
            m = self.metrics
            if tier == "embedding":
                m.embedding_duration.observe(seconds)
                if outcome == "error":
                    m.child(m.errors, "embedding", "error").inc()
                return
            m.child(m.lookup_duration, tier).observe(seconds)
            if outcome != "shadow_hit":  # counted once per request from RequestRecord.shadow_hit
                m.child(m.cache_lookups, tier, outcome).inc()
        except Exception:
            self._swallow()

    def backend_error(self, component: str, error: BaseException) -> None:
        try:
            kind = type(error).__name__
            self.metrics.child(self.metrics.errors, component, kind).inc()
            self.ledger.add(f"error:{component}", kind)
        except Exception:
            self._swallow()

    def request_done(self, record: RequestRecord) -> None:
        try:
            self._request_done(record)
        except Exception:
            self._swallow()

    # -- internals --------------------------------------------------------------------------------

    def _swallow(self) -> None:
        now = time.monotonic()
        if now - self._last_failure_log > 60:
            self._last_failure_log = now
            logger.exception("monitoring failed to record an event (the request was not affected)")

    def route_label(self, path: str) -> str:
        label = self._routes.get(path)
        if label is None:
            label = normalize_route(path)
            if label not in self._route_labels:
                if len(self._route_labels) >= MAX_ROUTES:
                    label = OTHER
                else:
                    self._route_labels.add(label)
            if len(self._routes) < 10_000:
                self._routes[path] = label
        return label

    def model_label(self, model: str) -> str:
        label = self._models.get(model)
        if label is None:
            label = model if len(self._models) < MAX_MODELS else OTHER
            if label != OTHER:
                self._models[model] = label
        return label

    def _request_done(self, record: RequestRecord) -> None:
        m, ledger = self.metrics, self.ledger
        now = time.time()
        route = self.route_label(record.route)
        status = record.status
        outcome = record.outcome
        failed = status >= 500
        cache = outcome if outcome in CHAT_OUTCOMES else ("error" if failed else "none")
        rscope = f"route:{route}"

        m.child(m.http_requests, route, record.method, str(status)).inc()
        m.child(m.request_duration, cache).observe(record.duration)
        ledger.add(GLOBAL, "http_requests")
        ledger.add(rscope, "requests")
        if failed:
            component = "upstream" if status in (502, 504) else "proxy"
            m.child(m.errors, component, f"http_{status}").inc()
            ledger.add(GLOBAL, "errors_5xx")
            ledger.add(rscope, "errors_5xx")
            ledger.add(f"error:{component}", f"http_{status}")
        elif status >= 400:
            ledger.add(GLOBAL, "errors_4xx")
            ledger.add(rscope, "errors_4xx")

        model = self.model_label(record.model) if record.model else None
        self.requests.add(record.duration, route, cache, status, model)
        prompt, completion, cached = usage_numbers(record.usage)
        spent = saved = 0.0

        if model is not None and outcome in CHAT_OUTCOMES:
            mscope = f"model:{model}"
            counter = CHAT_OUTCOMES[outcome]
            for scope in (GLOBAL, mscope, rscope):
                ledger.add(scope, counter)
            ledger.add(GLOBAL, "requests")
            ledger.add(mscope, "requests")
            price = self.pricing.price(record.model or model)
            tier = HITS.get(outcome)
            if outcome == "bypass":
                m.child(m.cache_lookups, "all", "bypass").inc()
            if tier is not None:
                tokens = prompt + completion
                saved = price.full(prompt, completion)
                if tokens or saved:
                    m.child(m.tokens, model, "saved").inc(tokens)
                    m.child(m.cost, model, "saved").inc(saved)
                    for scope in (GLOBAL, mscope, rscope):
                        ledger.add(scope, "tokens_saved", tokens)
                        ledger.add(scope, "cost_saved_usd", saved)
                    ledger.add(GLOBAL, f"tokens_saved_{tier}", tokens)
                    ledger.add(GLOBAL, f"cost_saved_{tier}_usd", saved)
            elif prompt or completion:
                spent = price.spent(prompt, completion, cached)
                provider_saved = price.provider_saving(cached)
                m.child(m.tokens, model, "prompt").inc(prompt)
                m.child(m.tokens, model, "completion").inc(completion)
                m.child(m.cost, model, "spent").inc(spent)
                for scope in (GLOBAL, mscope, rscope):
                    ledger.add(scope, "tokens_used", prompt + completion)
                    ledger.add(scope, "prompt_tokens", prompt)
                    ledger.add(scope, "completion_tokens", completion)
                    ledger.add(scope, "cost_spent_usd", spent)
                if cached:
                    saved = provider_saved
                    m.child(m.tokens, model, "provider_cached").inc(cached)
                    m.child(m.cost, model, "saved").inc(provider_saved)
                    for scope in (GLOBAL, mscope, rscope):
                        ledger.add(scope, "provider_cached_tokens", cached)
                        ledger.add(scope, "cost_saved_usd", provider_saved)
                    ledger.add(GLOBAL, "cost_saved_provider_usd", provider_saved)
            if record.shadow_hit:
                m.child(m.cache_lookups, "semantic", "shadow_hit").inc()
                ledger.add(GLOBAL, "shadow_hits")
                ledger.add(mscope, "shadow_hits")
            if record.upstream_seconds is not None:
                m.child(m.upstream_duration, "true" if record.stream else "false").observe(record.upstream_seconds)
            if self.request_log is not None:
                label = "ERROR" if failed or record.stream_failed else LOG_LABELS[outcome]
                self.request_log.append((now, label, model, prompt + completion, saved if tier else spent))

        if record.stream:
            self._stream_done(record, cache, completion)
        if self.usage is not None and (model is not None or route.startswith("/v1/")):
            self.usage.append((now, record.request_id, route, model, prompt, completion, cached, outcome,
                               record.tier, status, round(record.duration * 1000, 3), int(record.stream),
                               record.api_key_hash, spent, saved))

    def _stream_done(self, record: RequestRecord, cache: str, completion: int) -> None:
        m = self.metrics
        if record.stream_failed:
            m.child(m.streams, "failed").inc()
            m.child(m.errors, "stream", "interrupted").inc()
            self.ledger.add(GLOBAL, "streams_failed")
        elif record.status == 200:
            m.child(m.streams, "completed").inc()
            self.ledger.add(GLOBAL, "streams_completed")
        ttft = record.ttft
        if ttft is None or record.status != 200:
            return
        tps = None
        generating = record.duration - ttft
        if completion and generating > 0:
            tps = completion / generating
            m.child(m.stream_tps, cache).observe(tps)
        m.child(m.stream_ttft, cache).observe(ttft)
        self.streams.add(ttft, cache, tps)

    # -- reading ----------------------------------------------------------------------------------

    def uptime(self) -> float:
        return time.monotonic() - self.started
