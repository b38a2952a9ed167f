"""The semantic tier: one wrapper around any :class:`SemanticBackend` and any :class:`Embedder`.

After an exact miss the chat pipeline calls :meth:`SemanticCache.lookup`: the last user turn is embedded
(once: the vector rides on the probe and is reused to store the answer, :mod:`proxy.semantic.vectors`), the
store is searched within the request's scope (same model, parameters, system prompt, earlier turns and
tenant — see :func:`proxy.core.canonical.semantic_scope`) for entries that have not expired, and the
candidate the selector accepts (:mod:`proxy.semantic.selection`) is served. In shadow mode it is only
counted and logged. After a miss the answer is stored by :meth:`remember` in the background
(:mod:`proxy.semantic.writer`): the client never waits for an upsert. Feedback
(:mod:`proxy.semantic.feedback`), upkeep (:mod:`proxy.semantic.upkeep`) and the counters at
``/metrics/semantic`` (:mod:`proxy.semantic.stats`, the dashboard's *semantic* panel) are parts of their own.

Every dependency failure (embedding slow or down, store down) is reported to :class:`FailOpen` and the
request goes on to the upstream as if the tier were not there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from proxy.cache.entry import CachedResponse
from proxy.cache.stats import Level, LevelReport, LevelStats
from proxy.component import Contribution, Guard, HealthCheck, Job, route
from proxy.contracts import Embedder, Observer, SemanticBackend, SemanticProbe
from proxy.core.canonical import namespace_id
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import JobRunner
from proxy.semantic import guards
from proxy.semantic.feedback import REMEMBER, FeedbackBook, FeedbackStore, Served, TenantOf
from proxy.semantic.labels import FeedbackLabels
from proxy.semantic.prompts import clip, fits_window, semantic_text, text_hash
from proxy.semantic.selection import Selector
from proxy.semantic.stats import PANEL as STATS_PANEL
from proxy.semantic.stats import SemanticStats
from proxy.semantic.upkeep import EMBEDDING, INTERVAL, STORE, Upkeep
from proxy.semantic.vectors import Vectors
from proxy.semantic.verification import Verification
from proxy.semantic.verifier import Verifier
from proxy.semantic.writer import SemanticWriter

logger = logging.getLogger("cachegate.semantic")

MODES = ("serve", "shadow")
#: The guards that stay in front of the verifier, and the verifier threshold when the model says none.
VERIFIED_CHECKS = ("numbers", "names", "negation")
DEFAULT_VERIFIER_THRESHOLD = 0.99
#: The cosine a candidate needs to be considered: lower with the verifier (the search casts a wider net and
#: the verifier decides), higher without it (the guards alone decide). Chosen on bench/verifier's dev split.
VERIFIED_THRESHOLD = 0.85
GUARDED_THRESHOLD = 0.9

__all__ = ["SemanticCache", "semantic_text"]


class SemanticCache:
    """The semantic tier, as the chat pipeline, the operator surface and the composition root see it."""

    def __init__(self, *, backend: SemanticBackend, embedder: Embedder, observer: Observer, failopen: FailOpen,
                 jobs: JobRunner, mode: str = "serve", threshold: float = 0.9, embedding_timeout: float = 0.5,
                 max_tokens: int = 256, candidates: int = 5, maintenance_interval: float = INTERVAL,
                 feedback: FeedbackStore | None = None, feedback_ttl: float = REMEMBER, vector_cache: int = 4096,
                 substitution_similarity: float = guards.SUBSTITUTION_SIMILARITY,
                 clock: Callable[[], float] = time.time, tenant_of: TenantOf | None = None,
                 verifier: Verifier | None = None, verifier_threshold: float | None = None,
                 verifier_timeout: float = 0.25, checks: tuple[str, ...] | None = None,
                 labels: FeedbackLabels | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.backend = backend
        self.embedder = embedder
        self.mode = mode
        self.max_tokens = max_tokens
        self.candidates = candidates
        self.maintenance_interval = maintenance_interval
        self._observer = observer
        self._failopen = failopen
        self._clock = clock
        #: Counters for tests, the evaluation and the operator: lookups, hits, shadow_hits, misses,
        #: skipped, errors, stored, store_errors, expired_removed and refused_<guard>.
        self.stats: Counter[str] = Counter()
        self.level_stats = LevelStats()  # the same counters in every level's shape (/metrics, Prometheus)
        blocks: set[str] = set()
        self.vectors = Vectors(embedder, timeout=embedding_timeout, observer=observer, failopen=failopen,
                               stats=self.stats, cache_size=vector_cache)
        # With the verifier, the search casts a wider net and only the cheap guards it is weakest at stay in
        # front of it (numbers, names, negation: bench/verifier's tuning); without it, every guard.
        if checks is None:
            checks = VERIFIED_CHECKS if verifier is not None else guards.GUARDS
        self.selector = Selector(threshold=threshold, substitution_similarity=substitution_similarity, blocks=blocks,
                                 stats=self.stats, checks=checks)
        self._verifier_threshold = verifier_threshold  # None: the one the model was tuned to (read at start)
        self.verification = (Verification(verifier, threshold=verifier_threshold if verifier_threshold is not None
                                          else DEFAULT_VERIFIER_THRESHOLD, timeout=verifier_timeout, stats=self.stats)
                             if verifier is not None else None)
        self.book = FeedbackBook(backend, blocks=blocks, failopen=failopen, stats=self.stats, store=feedback,
                                 spawn=jobs.spawn, remember=feedback_ttl, tenant_of=tenant_of, labels=labels)
        self.writer = SemanticWriter(backend, failopen=failopen, jobs=jobs, stats=self.stats)
        self.upkeep = Upkeep(backend, embedder, blocks=blocks, failopen=failopen, stats=self.stats, clock=clock)
        self.report = SemanticStats(self.stats, count=self.count, mode=mode, threshold=threshold,
                                    ready=lambda: self.ready, verifier=self._verifier_report)

    @property
    def ready(self) -> bool:
        return self.upkeep.ready

    # -- the component --------------------------------------------------------------------------------

    def contribution(self) -> Contribution:
        checks = [_check(EMBEDDING, self.embedder.remote, self.embedder.ping, self.embedder.location),
                  _check(STORE, self.backend.remote, self.backend.ping,
                         f"{self.backend.name} at {self.backend.location}")]
        return Contribution(routes=[route("/admin/cache/feedback", self.book.endpoint, "POST", guard=Guard.ADMIN),
                                    self.report.route()],
                            checks=checks, jobs=[Job("semantic-upkeep", self.maintenance_interval, self.maintain)],
                            panels=[STATS_PANEL])

    async def start(self) -> None:
        await self.upkeep.open()
        if self.book.labels is not None:
            try:
                await self.book.labels.open()
            except Exception:  # verdicts still work; their rows for retraining are not kept
                logger.exception("the semantic feedback file cannot be opened")
                self.book.labels = None
        verification = self.verification
        if verification is not None:
            try:  # loaded now, not on the first candidate; a verifier that cannot load refuses every candidate
                await asyncio.to_thread(verification.verifier.load)
                if self._verifier_threshold is None:
                    verification.threshold = verification.verifier.threshold
            except Exception as exc:
                self._failopen.failed("verifier", exc)

    def _verifier_report(self) -> dict[str, Any] | None:
        verification = self.verification
        if verification is None:
            return None
        return {"name": verification.verifier.name, "threshold": verification.threshold,
                "timeout": verification.timeout, "checks_in_front": list(self.selector.checks),
                "days": verification.days.report()}

    async def stop(self) -> None:
        await self.flush(timeout=5.0)
        if self.book.labels is not None:
            await self.book.labels.close()
        await self.upkeep.close()

    async def maintain(self) -> None:
        await self.upkeep.maintain()

    # -- lookup -------------------------------------------------------------------------------------

    async def lookup(self, body: Mapping[str, Any], *, scope: str, namespace: str, request_id: str,
                     tenant: str | None = None) -> SemanticProbe | None:
        """A hit (or a probe to store the answer with). ``tenant``: the owner of the request's credentials,
        kept with a hit so that feedback on ``request_id`` is taken only for that tenant."""
        if not self.ready:
            return None
        text = semantic_text(body)
        if text is None or not self._fits_window(text):
            self.stats["skipped"] += 1
            return None
        started = time.perf_counter()
        self.stats["lookups"] += 1
        vector = await self.vectors.of(text)
        if vector is None:
            self._observer.cache_lookup("semantic", "error", time.perf_counter() - started)
            return None
        probe = SemanticProbe(vector=vector, scope=scope, text=text)
        now = self._clock()
        try:
            matches = await self.backend.search(vector, scope, limit=self.candidates, now=now)
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            self.stats["errors"] += 1
            self._observer.cache_lookup("semantic", "error", time.perf_counter() - started)
            return probe
        self._failopen.succeeded(STORE)
        chosen = self.selector.choose(matches, text, now)
        if chosen is None:
            self.stats["misses"] += 1
            self._observer.cache_lookup("semantic", "miss", time.perf_counter() - started)
            return probe
        match, entry = chosen
        stored_text = str(match.payload.get("text", ""))
        verified: float | None = None
        if self.verification is not None:
            accepted, verified = await self.verification.check(stored_text, text)
            if not accepted:  # refused, or the verifier failed: a miss (fail closed)
                self.stats["misses"] += 1
                self._observer.cache_lookup("semantic", "miss", time.perf_counter() - started)
                return probe
        probe.similarity, probe.point_id = match.score, match.id
        if self.mode == "shadow":
            probe.shadow_hit = True
            self.stats["shadow_hits"] += 1
            logger.info("shadow hit (similarity %.4f, verifier %s, request %s): %r would be answered with the "
                        "answer to %r", match.score, "off" if verified is None else f"{verified:.3f}", request_id,
                        clip(text), clip(stored_text))
            self._observer.cache_lookup("semantic", "shadow_hit", time.perf_counter() - started)
            return probe
        probe.entry = entry
        self.stats["hits"] += 1
        keep = self.book.keeps_text
        await self.book.served(request_id, Served(match.id, scope, text_hash(text),
                                                  str(match.payload.get("text_hash", "")), tenant,
                                                  asked_text=text if keep else None,
                                                  stored_text=stored_text if keep else None))
        self._observer.cache_lookup("semantic", "hit", time.perf_counter() - started)
        return probe

    def _fits_window(self, text: str) -> bool:
        try:
            return fits_window(text, self.max_tokens, self.embedder.count_tokens)
        except Exception as exc:  # a missing tokenizer must not fail the request
            logger.warning("cannot count tokens, skipping the semantic tier: %r", exc)
            return False

    # -- storing (proxy.semantic.writer) ---------------------------------------------------------------

    def remember(self, probe: SemanticProbe, entry: CachedResponse, *, namespace: str) -> None:
        """Store ``entry`` for the probed prompt, in the background, once the tier is ready."""
        if self.ready:
            self.writer.remember(probe, entry, namespace=namespace)

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait for the background upserts started so far (tests, the evaluation and shutdown use it)."""
        await self.writer.flush(timeout=timeout)

    # -- feedback and the operator's view ---------------------------------------------------------------

    async def feedback(self, request_id: str, verdict: str, *, tenant: str | None = None) -> dict[str, Any]:
        return await self.book.feedback(request_id, verdict, tenant=tenant)

    async def clear(self, model: str | None = None, namespace: str | None = None) -> int:
        """Remove entries (all, or those of ``model`` and/or ``namespace``); returns how many."""
        removed = await self.backend.delete_where(model=model, namespace=namespace_id(namespace)
                                                  if namespace is not None else None)
        await self.book.forget()
        self.stats["deleted"] += removed
        return removed

    async def delete(self, point_id: str) -> int:
        """Remove one entry (named by a semantic hit's ``x-cache-key``); returns 1 if it was there."""
        removed = await self.backend.delete([point_id])
        self.stats["deleted"] += removed
        return removed

    async def count(self) -> int:
        return await self.backend.count()

    async def usage(self) -> tuple[int, int]:
        """(entries, bytes) for the cache gauges; the store does not say how many bytes it holds."""
        return await self.count(), 0

    async def levels(self) -> list[Level]:
        """The tier as one cache level: its store's count, and the counters its parts keep."""
        stats, level = self.stats, self.level_stats
        level.hits, level.misses, level.sets = stats["hits"], stats["misses"], stats["stored"]
        level.deletes = stats["deleted"]
        level.evictions["expiry"] = stats["expired_removed"]
        try:
            entries: int | None = await self.count()
            note = None
        except Exception as exc:  # the store's own errors: the gauges say unknown
            entries, note = None, f"unavailable: {exc}"
        return [Level("semantic", LevelReport(entries=entries, bytes=None, bound=None, note=note), level)]

    async def remove_expired(self) -> int:
        return await self.upkeep.remove_expired()


def _check(name: str, remote: bool, ping: Callable[[], Any], location: str) -> HealthCheck:
    return HealthCheck(name, ping=ping) if remote else HealthCheck(name, embedded=location)
