"""The :class:`~proxy.contracts.Observer` that feeds metrics, the ledger, the usage history and the log.

On the request path the observer only appends a tuple of the finished :class:`RequestRecord`'s plain
values (or of the lookup) to a list: O(1), no I/O, no locks, nothing left for the garbage collector to
trace. :meth:`MonitoringObserver.fold` turns the batch into numbers (Prometheus values, ledger deltas,
window samples, usage rows, request-log lines); the background loop runs it ten times a second and every
reader (``/metrics``, a scrape, ``/health/detailed``, ``/metrics/usage``) runs it first, so what is read
is always complete. Requests that look alike (same route, status, outcome, model, usage) are derived
once per batch and multiplied (:mod:`proxy.monitoring.kinds`). Anything that goes wrong is logged
(rate-limited) and swallowed: monitoring never fails a request.

Conventions other parts rely on:

- ``cache_lookup(tier, outcome, seconds)``: ``tier`` is ``exact`` or ``semantic`` with ``outcome``
  ``hit``/``miss``/``error`` (a shadow-mode match is a ``miss`` there: shadow hits are counted once, from
  ``RequestRecord.shadow_hit``); ``tier="embedding"`` reports an embedding's duration (outcome ``ok`` or
  ``error``) and feeds ``cachegate_embedding_duration_seconds``.
- A hit's ``record.usage`` is the stored answer's usage: the tokens it saved, priced at its model's rate.

Model names come from clients, so what grows with them is bounded: a model gets a Prometheus label of its
own (at most :data:`~proxy.monitoring.kinds.MAX_MODELS`) and is priced (which lists and warns about unknown
names) only once the upstream answered it with a 2xx; a name the upstream refused counts under ``other``
unless it already has a label. The ledger bounds its model scopes over its whole life
(:meth:`Ledger.model_scope`), and the request log gets the name escaped
(:func:`proxy.core.limits.escape_log_field`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from proxy.contracts import RequestRecord
from proxy.core.usage import usage_numbers
from proxy.monitoring.kinds import HITS, SIGNATURE, Kind, Kinds, Labels, RequestEvent
from proxy.monitoring.ledger import Ledger
from proxy.monitoring.pricing import Pricing
from proxy.monitoring.registry import NS, Metrics
from proxy.monitoring.request_log import RequestLog
from proxy.monitoring.usage import UsageStore
from proxy.monitoring.window import Window

logger = logging.getLogger("cachegate.monitoring")

class MonitoringObserver:
    #: Fold inline, once this many events wait, rather than at the next fold job. Under load the job's
    #: batches grew with the request rate (~1,100 events a tenth of a second at 11k hits/s, 3 ms of folding
    #: in one go, which every request in flight then waited for); 256 events fold in about 0.7 ms, and
    #: the memory waiting events take stays bounded whatever the loop's lateness.
    FOLD_AT = 256

    def __init__(self, *, metrics: Metrics, ledger: Ledger, pricing: Pricing, window_seconds: float,
                 usage: UsageStore | None = None, request_log: RequestLog | None = None) -> None:
        self.metrics = metrics
        self.ledger = ledger
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
        self.labels = Labels()
        self._kinds = Kinds(metrics=metrics, ledger=ledger, pricing=pricing, requests=self.requests,
                            streams=self.streams, stream_rates=self.stream_rates, labels=self.labels)
        self._last_failure_log = 0.0

    @property
    def pricing(self) -> Pricing:
        return self._kinds.pricing

    @pricing.setter
    def pricing(self, pricing: Pricing) -> None:
        """A price list loaded at start-up (PRICING_FILE) replaces the one built with: the kinds price by it."""
        self._kinds.pricing = pricing

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
        kinds: dict[tuple[Any, ...], Kind] = {}
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
                    kind = kinds[signature] = self._kinds.derive(signature)
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

    # -- labels -------------------------------------------------------------------------------------

    def _swallow(self) -> None:
        now = time.monotonic()
        if now - self._last_failure_log > 60:
            self._last_failure_log = now
            logger.exception("monitoring failed to record an event (the request was not affected)")

    def route_label(self, path: str) -> str:
        return self.labels.route(path)

    def model_label(self, model: str, *, claim: bool = True) -> str:
        return self.labels.model(model, claim=claim)

    # -- reading ----------------------------------------------------------------------------------

    def uptime(self) -> float:
        return time.monotonic() - self.started
