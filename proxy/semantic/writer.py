"""The semantic tier's storing side: an answer written to the store in the background, and the indexing it
sets off.

:class:`~proxy.semantic.tier.SemanticCache` hands a miss's answer to :meth:`SemanticWriter.remember` with the
probe its lookup made (the vector is reused, not embedded again), once the tier is ready. The upsert runs on
the job runner, so the client never waits for it; a store that wants upkeep after writes (the embedded store
builds its index) gets one indexing run at a time. A failing store is reported to :class:`FailOpen` and
counted, never raised: the answer has already gone to the client.
"""

from __future__ import annotations

import logging
from collections import Counter

from proxy.cache.entry import CachedResponse
from proxy.contracts import SemanticBackend, SemanticProbe, SemanticRecord
from proxy.core.canonical import namespace_id
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import JobRunner
from proxy.semantic.prompts import point_id, text_hash
from proxy.semantic.selection import calls_tools, encode_entry
from proxy.semantic.upkeep import STORE

logger = logging.getLogger("cachegate.semantic")

GROUP = "semantic"  # the job runner's group of this tier's background upserts


class SemanticWriter:
    """Background upserts of answers into the semantic store; ``stats`` is the tier's shared counter."""

    def __init__(self, backend: SemanticBackend, *, failopen: FailOpen, jobs: JobRunner,
                 stats: Counter[str]) -> None:
        self.backend = backend
        self.stats = stats
        self._failopen = failopen
        self._jobs = jobs
        self._indexing = False

    def remember(self, probe: SemanticProbe, entry: CachedResponse, *, namespace: str) -> None:
        """Store ``entry`` for the probed prompt, in the background (not an answer that calls a tool: it was
        built for this wording)."""
        if probe.vector is None or probe.scope is None or probe.text is None:
            return
        if calls_tools(entry):
            self.stats["skipped_tool_answers"] += 1
            return
        record = SemanticRecord(
            id=point_id(probe.scope, probe.text),
            vector=list(probe.vector),
            scope=probe.scope,
            expires_at=entry.stored_at + entry.ttl,
            payload={"text": probe.text, "text_hash": text_hash(probe.text), "model": entry.model,
                     "namespace": namespace_id(namespace), "stored_at": entry.stored_at,
                     "entry": encode_entry(entry)},
        )
        self._jobs.spawn(self._upsert(record), group=GROUP)

    async def _upsert(self, record: SemanticRecord) -> None:
        try:
            await self.backend.upsert(record)
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            self.stats["store_errors"] += 1
            return
        self._failopen.succeeded(STORE)
        self.stats["stored"] += 1
        if self.backend.needs_upkeep and not self._indexing:
            self._indexing = True
            self._jobs.spawn(self._index_now(), group=GROUP)

    async def _index_now(self) -> None:
        try:
            await self.backend.maintain()
        except BackendError as exc:
            logger.warning("indexing the semantic store failed: %s", exc)
        finally:
            self._indexing = False

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait for the background upserts started so far (tests, the evaluation and shutdown use it)."""
        await self._jobs.flush(GROUP, timeout=timeout)
