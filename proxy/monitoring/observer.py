"""The :class:`~proxy.contracts.Observer` that feeds metrics, the ledger, the usage history and the log.

On the request path the observer only appends a tuple of the finished :class:`RequestRecord`'s plain
values (or of the lookup) to a list: O(1), no I/O, no locks, nothing left for the garbage collector to
trace. :meth:`MonitoringObserver.fold` turns the batch into numbers (Prometheus values, ledger deltas,
window samples, usage rows, request-log lines); the background loop runs it ten times a second and every
reader (``/metrics``, a scrape, ``/health/detailed``, ``/metrics/usage``) runs it first, so what is read
is always complete. Requests that look alike (same route, status, outcome, model, usage) are derived
once per batch and multiplied. Anything that goes wrong is logged (rate-limited) and swallowed:
monitoring never fails a request.

Conventions other parts rely on:

- ``cache_lookup(tier, outcome, seconds)``: ``tier`` is ``exact`` or ``semantic`` with ``outcome``
  ``hit``/``miss``/``error`` (a shadow-mode match is a ``miss`` there: shadow hits are counted once, from
  ``RequestRecord.shadow_hit``); ``tier="embedding"`` reports an embedding's duration (outcome ``ok`` or
  ``error``) and feeds ``cachegate_embedding_duration_seconds``.
- A hit's ``record.usage`` is the stored answer's usage: the tokens it saved, priced at its model's rate.

Model names come from clients, so what grows with them is bounded: a model gets a Prometheus label of its
own (at most :data:`MAX_MODELS`) and is priced (which lists and warns about unknown names) only once the
upstream answered it with a 2xx; a name the upstream refused counts under ``other`` unless it already has a
label. The ledger bounds its model scopes over its whole life (:meth:`Ledger.model_scope`), and the request
log gets the name escaped (:func:`proxy.core.limits.escape_log_field`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, NamedTuple

from proxy.contracts import RequestRecord
from proxy.core.limits import escape_log_field
from proxy.core.usage import usage_numbers
from proxy.monitoring.ledger import GLOBAL, Ledger
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.registry import NS, CounterVec, Metrics
from proxy.monitoring.request_log import RequestLog, line_tail
from proxy.monitoring.usage import UsageStore
from proxy.monitoring.window import Window

logger = logging.getLogger("cachegate.monitoring")

CHAT_OUTCOMES = {"exact_hit": "exact_hits", "semantic_hit": "semantic_hits", "miss": "misses", "bypass": "bypassed",
                 "stale": "stale_answers"}
#: outcomes answered from the cache: what they save is counted under their tier (a stale answer, given because
#: the upstream failed, saved a call that would have failed anyway: its tokens are counted under "stale")
HITS = {"exact_hit": "exact", "semantic_hit": "semantic", "stale": "stale"}
LOG_LABELS = {"exact_hit": "EXACT_HIT", "semantic_hit": "SEMANTIC_HIT", "miss": "MISS", "bypass": "BYPASS",
              "stale": "STALE"}
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


class RequestEvent(NamedTuple):
    """What the observer keeps of a finished request until the next fold: plain values only, nothing the
    collector must trace. The first :data:`SIGNATURE` fields say what kind of request it was; requests of one
    kind add the same to counters and the ledger, which is derived once per batch."""

    path: str
    method: str
    status: int
    outcome: str
    model: str | None
    stream: bool
    stream_failed: bool
    shadow_hit: bool
    tokens: tuple[int, int, int]  # prompt, completion, provider-cached
    duration: float
    started_at: float
    upstream_seconds: float | None
    ttft: float | None
    request_id: str
    tier: str | None
    api_key_hash: str | None


SIGNATURE = 9


class _Kind:
    """What every request of one signature (route, status, outcome, model, usage...) adds up to."""

    __slots__ = ("cache", "cache_key", "completion", "counters", "durations", "hit", "ledger", "log_tail", "model",
                 "n", "prompt", "provider_cached", "rate_code", "route", "row", "saved", "spent", "stream_code",
                 "window_code")

    def __init__(self, route: str, cache: str, model: str | None) -> None:
        self.route, self.cache, self.model = route, cache, model
        self.cache_key = (cache,)
        self.window_code = self.stream_code = self.rate_code = 0
        self.n = 0
        self.prompt = self.completion = self.provider_cached = 0
        self.spent = self.saved = 0.0
        self.hit = False
        self.log_tail: str | None = None
        self.row = False
        self.counters: list[tuple[CounterVec, tuple[str, ...], float]] = []
        self.ledger: list[tuple[str, str, float]] = []
        self.durations: list[float] = []  # of this batch


class MonitoringObserver:
    FOLD_AT = 4096  # fold inline when this many events are waiting (the loop is late): memory stays bounded

    def __init__(self, *, metrics: Metrics, ledger: Ledger, pricing: Pricing, window_seconds: float,
                 usage: UsageStore | None = None, request_log: RequestLog | None = None) -> None:
        self.metrics = metrics
        self.ledger = ledger
        self.pricing = pricing
        self.usage = usage
        self.request_log = request_log
        #: (end time, duration, route, cache, status, model) of every request, as read by ``samples()``
        self.requests = Window(window_seconds)
        #: (end time, ttft, cache) of every stream, and (end time, completion tokens/s, cache) where known
        self.streams = Window(window_seconds, maxlen=20_000)
        self.stream_rates = Window(window_seconds, maxlen=20_000)
        self.started = time.monotonic()
        self._streaming: set[int] = set()  # ids of the records of streams being sent right now
        metrics.gauges[f"{NS}_active_streams"] = ("Streamed responses being sent right now.",
                                                  lambda: self.active_streams)
        metrics.before_collect = self.fold
        self._records: list[RequestEvent] = []
        self._lookups: list[tuple[str, str, float]] = []
        self._routes: dict[str, str] = {}
        self._route_labels: set[str] = set()
        self._models: dict[str, str] = {}
        self._last_failure_log = 0.0

    # -- Observer: the request path ---------------------------------------------------------------

    def cache_lookup(self, tier: str, outcome: str, seconds: float) -> None:
        self._lookups.append((tier, outcome, seconds))
        if len(self._lookups) >= self.FOLD_AT:
            self.fold()

    def backend_error(self, component: str, error: BaseException) -> None:
        try:
            kind = type(error).__name__
            self.metrics.errors.inc((component, kind))
            self.ledger.add(f"error:{component}", kind)
        except Exception:
            self._swallow()

    def response_started(self, record: RequestRecord) -> None:
        """Called by the request middleware when a response starts: streams become active; a replayed hit's
        first byte follows at once, so that is its time to first byte (a miss measures it upstream)."""
        try:
            if record.stream:
                self._streaming.add(id(record))
                if record.ttft is None and record.outcome in HITS:
                    record.ttft = max(0.0, time.time() - record.started_at)
        except Exception:
            self._swallow()

    @property
    def active_streams(self) -> int:
        return len(self._streaming)

    def request_done(self, record: RequestRecord) -> None:
        # Keep a tuple of plain values, not the record: nothing the collector has to trace stays alive.
        try:
            stream = record.stream
            if stream:
                self._streaming.discard(id(record))
            self._records.append(RequestEvent(
                record.route, record.method, record.status, record.outcome, record.model, stream, record.stream_failed,
                record.shadow_hit, record.tokens if record.tokens is not None else usage_numbers(record.usage),
                record.duration, record.started_at,
                record.upstream_seconds, record.ttft, record.request_id, record.tier, record.api_key_hash))
        except Exception:
            self._swallow()
        if len(self._records) >= self.FOLD_AT:
            self.fold()

    # -- folding ------------------------------------------------------------------------------------

    def fold(self) -> None:
        """Turn the waiting events into numbers. Never raises."""
        if self._lookups:
            lookups, self._lookups = self._lookups, []
            try:
                self._fold_lookups(lookups)
            except Exception:
                self._swallow()
        if self._records:
            records, self._records = self._records, []
            try:
                self._fold_records(records)
            except Exception:
                self._swallow()

    def _fold_lookups(self, lookups: list[tuple[str, str, float]]) -> None:
        m = self.metrics
        counts: dict[tuple[str, str], int] = {}
        for tier, outcome, seconds in lookups:
            if tier == "embedding":
                m.embedding_duration.observe((), seconds)
                if outcome == "error":
                    m.errors.inc(("embedding", "error"))
                continue
            m.lookup_duration.observe((tier,), seconds)
            if outcome != "shadow_hit":  # counted once per request from RequestRecord.shadow_hit
                key = (tier, outcome)
                counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            m.cache_lookups.inc(key, count)

    def _fold_records(self, records: list[RequestEvent]) -> None:
        m = self.metrics
        kinds: dict[tuple[Any, ...], _Kind] = {}
        upstream, ttfts, tps = m.upstream_duration, m.stream_ttft, m.stream_tps
        add_stream, add_rate = self.streams.add_coded, self.stream_rates.add_coded
        # Per-event work is kept to list appends; each batch goes to its destination in one call below.
        ends: list[float] = []
        durations: list[float] = []
        codes: list[int] = []
        rows: list[Any] = []
        lines: list[Any] = []
        add_end, add_duration, add_code, add_row, add_line = (ends.append, durations.append, codes.append,
                                                              rows.extend, lines.extend)
        for event in records:
            try:
                signature = event[:SIGNATURE]
                kind = kinds.get(signature)
                if kind is None:
                    kind = kinds[signature] = self._derive(signature)
                kind.n += 1
                (_, _, status, outcome, _, stream, _, _, _, duration, started_at, upstream_seconds, ttft, request_id,
                 tier, api_key_hash) = event
                end = started_at + duration
                kind.durations.append(duration)
                add_end(end)
                add_duration(duration)
                add_code(kind.window_code)
                if upstream_seconds is not None and kind.model is not None:
                    upstream.observe(("true",) if stream else ("false",), upstream_seconds)
                if stream and ttft is not None and status == 200:
                    if kind.completion and duration > ttft:
                        rate = kind.completion / (duration - ttft)
                        tps.observe(kind.cache_key, rate)
                        add_rate(end, rate, kind.rate_code)
                    ttfts.observe(kind.cache_key, ttft)
                    add_stream(end, ttft, kind.stream_code)
                if kind.row:
                    add_row((end, request_id, kind.route, kind.model, kind.prompt, kind.completion,
                             kind.provider_cached, outcome, tier, status, duration * 1000, int(stream), api_key_hash,
                             kind.spent, kind.saved))
                if kind.log_tail is not None:
                    add_line((end, kind.log_tail))
            except Exception:
                self._swallow()
        self.requests.add_many(ends, durations, codes)
        if self.usage is not None and rows:
            self.usage.append_flat(rows)
        if self.request_log is not None and lines:
            self.request_log.append_flat(lines)
        ledger = self.ledger
        for kind in kinds.values():
            m.request_duration.observe_many(kind.cache_key, kind.durations)
            n = kind.n
            for vec, labels, amount in kind.counters:
                vec.inc(labels, amount * n)
            for scope, name, amount in kind.ledger:
                ledger.add(scope, name, amount * n)

    def _derive(self, signature: tuple[Any, ...]) -> _Kind:
        """Everything one request of this signature adds to counters and the ledger."""
        m = self.metrics
        path, method, status, outcome, raw_model, stream, stream_failed, shadow_hit, numbers = signature
        route = self.route_label(path)
        failed = status >= 500
        answered = 200 <= status < 300
        model = self.model_label(raw_model, claim=answered) if raw_model else None
        kind = _Kind(route, outcome if outcome in CHAT_OUTCOMES else ("error" if failed else "none"), model)
        kind.window_code = self.requests.code((route, kind.cache, status, model))
        kind.stream_code = self.streams.code((kind.cache,))
        kind.rate_code = self.stream_rates.code((kind.cache,))
        prompt, completion, cached = kind.prompt, kind.completion, kind.provider_cached = numbers
        kind.row = model is not None or route.startswith("/v1/")
        counters, ledger = kind.counters, kind.ledger
        rscope = f"route:{route}"
        counters.append((m.http_requests, (route, method, str(status)), 1))
        ledger += [(GLOBAL, "http_requests", 1), (rscope, "requests", 1)]
        if failed:
            component = "upstream" if status in (502, 504) else "proxy"
            counters.append((m.errors, (component, f"http_{status}"), 1))
            ledger += [(GLOBAL, "errors_5xx", 1), (rscope, "errors_5xx", 1),
                       (f"error:{component}", f"http_{status}", 1)]
        elif status >= 400:
            ledger += [(GLOBAL, "errors_4xx", 1), (rscope, "errors_4xx", 1)]

        if model is not None and outcome in CHAT_OUTCOMES:
            mscope = self.ledger.model_scope(model)
            scopes = (GLOBAL, mscope, rscope)
            ledger += [(scope, CHAT_OUTCOMES[outcome], 1) for scope in scopes]
            ledger += [(GLOBAL, "requests", 1), (mscope, "requests", 1)]
            # only an answered model is priced: pricing lists (and warns about) every name it cannot price
            price = self.pricing.price(raw_model) if answered else None
            tier = HITS.get(outcome)
            if outcome == "bypass":
                counters.append((m.cache_lookups, ("all", "bypass"), 1))
            if price is not None and tier is not None:
                kind.hit = True
                tokens = prompt + completion
                kind.saved = saved = price.full(prompt, completion)
                if tokens or saved:
                    counters += [(m.tokens, (model, "saved"), tokens), (m.cost, (model, "saved"), saved)]
                    for scope in scopes:
                        ledger += [(scope, "tokens_saved", tokens), (scope, "cost_saved_usd", saved)]
                    ledger += [(GLOBAL, f"tokens_saved_{tier}", tokens), (GLOBAL, f"cost_saved_{tier}_usd", saved)]
            elif price is not None and (prompt or completion):
                kind.spent = spent = price.spent(prompt, completion, cached)
                counters += [(m.tokens, (model, "prompt"), prompt), (m.tokens, (model, "completion"), completion),
                             (m.cost, (model, "spent"), spent)]
                for scope in scopes:
                    ledger += [(scope, "tokens_used", prompt + completion), (scope, "prompt_tokens", prompt),
                               (scope, "completion_tokens", completion), (scope, "cost_spent_usd", spent)]
                if cached:
                    kind.saved = provider_saved = price.provider_saving(cached)
                    counters += [(m.tokens, (model, "provider_cached"), cached),
                                 (m.cost, (model, "saved"), provider_saved)]
                    for scope in scopes:
                        ledger += [(scope, "provider_cached_tokens", cached), (scope, "cost_saved_usd", provider_saved)]
                    ledger.append((GLOBAL, "cost_saved_provider_usd", provider_saved))
            if shadow_hit:
                counters.append((m.cache_lookups, ("semantic", "shadow_hit"), 1))
                ledger += [(GLOBAL, "shadow_hits", 1), (mscope, "shadow_hits", 1)]
            kind.log_tail = line_tail("ERROR" if failed or stream_failed else LOG_LABELS[outcome],
                                      escape_log_field(model), prompt + completion,
                                      kind.saved if kind.hit else kind.spent)

        if stream:
            if stream_failed:
                counters += [(m.streams, ("failed",), 1), (m.errors, ("stream", "interrupted"), 1)]
                ledger.append((GLOBAL, "streams_failed", 1))
            elif status == 200:
                counters.append((m.streams, ("completed",), 1))
                ledger.append((GLOBAL, "streams_completed", 1))
        return kind

    # -- labels -------------------------------------------------------------------------------------

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

    def model_label(self, model: str, *, claim: bool = True) -> str:
        """``model``'s own label if it has one, or (``claim``: it was answered) while fewer than
        :data:`MAX_MODELS` are given; else ``other``."""
        label = self._models.get(model)
        if label is None:
            label = model if claim and len(self._models) < MAX_MODELS else OTHER
            if label != OTHER:
                self._models[model] = label
        return label

    # -- reading ----------------------------------------------------------------------------------

    def uptime(self) -> float:
        return time.monotonic() - self.started
