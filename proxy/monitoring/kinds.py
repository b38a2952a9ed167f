"""What one finished request adds to counters, the ledger, windows and logs, worked out once per kind.

The observer (:mod:`proxy.monitoring.observer`) keeps a :class:`RequestEvent` of plain values per request;
when it folds a batch, requests of one *signature* (route, method, status, outcome, model, stream, usage:
the first :data:`SIGNATURE` fields) add the same amounts, so :meth:`Kinds.derive` works them out once per
batch as a :class:`Kind` and the fold multiplies. :class:`Labels` keeps what grows with clients bounded: a
route or a model gets a label of its own up to :data:`MAX_ROUTES` / :data:`MAX_MODELS`, then ``other``.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from proxy.core.limits import escape_log_field
from proxy.monitoring.ledger import GLOBAL, Ledger
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.registry import CounterVec, Metrics
from proxy.monitoring.request_log import line_tail
from proxy.monitoring.window import Window

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


class Kind:
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


class Labels:
    """Bounded Prometheus labels for request paths and model names."""

    def __init__(self) -> None:
        self._routes: dict[str, str] = {}
        self._route_labels: set[str] = set()
        self._models: dict[str, str] = {}

    def route(self, path: str) -> str:
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

    def model(self, model: str, *, claim: bool = True) -> str:
        """``model``'s own label if it has one, or (``claim``: it was answered) while fewer than
        :data:`MAX_MODELS` are given; else ``other``."""
        label = self._models.get(model)
        if label is None:
            label = model if claim and len(self._models) < MAX_MODELS else OTHER
            if label != OTHER:
                self._models[model] = label
        return label


class Kinds:
    """Derives the :class:`Kind` of a signature: counters and ledger amounts, window codes, the log line."""

    def __init__(self, *, metrics: Metrics, ledger: Ledger, pricing: Pricing, requests: Window, streams: Window,
                 stream_rates: Window, labels: Labels) -> None:
        self.metrics = metrics
        self.ledger = ledger
        self.pricing = pricing
        self.requests, self.streams, self.stream_rates = requests, streams, stream_rates
        self.labels = labels

    def derive(self, signature: tuple[Any, ...]) -> Kind:
        """Everything one request of this signature adds to counters and the ledger."""
        m = self.metrics
        path, method, status, outcome, raw_model, stream, stream_failed, shadow_hit, numbers = signature
        route = self.labels.route(path)
        failed = status >= 500
        answered = 200 <= status < 300
        model = self.labels.model(raw_model, claim=answered) if raw_model else None
        kind = Kind(route, outcome if outcome in CHAT_OUTCOMES else ("error" if failed else "none"), model)
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
