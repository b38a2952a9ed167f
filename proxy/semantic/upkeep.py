"""Opening the semantic tier's parts and keeping its store in shape.

:meth:`Upkeep.open` loads the in-process model (when that is the embedder) and opens the store; if either
fails the tier stays off (the proxy serves without it) and the next :meth:`Upkeep.maintain` tries again.
``maintain`` runs as a job every :data:`INTERVAL` seconds: it drops expired entries, lets the store index
what was written, and picks up feedback blocks other proxies added.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable

from proxy.contracts import Embedder, SemanticBackend
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen

logger = logging.getLogger("cachegate.semantic")

EMBEDDING = "embedding"
STORE = "qdrant"
INTERVAL = 60.0


class Upkeep:
    def __init__(self, backend: SemanticBackend, embedder: Embedder, *, blocks: set[str], failopen: FailOpen,
                 stats: Counter[str], clock: Callable[[], float]) -> None:
        self.backend = backend
        self.embedder = embedder
        self.blocks = blocks
        self._failopen = failopen
        self._stats = stats
        self._clock = clock
        self.ready = False
        self._embedder_started = False

    async def open(self) -> bool:
        if not self._embedder_started:
            try:
                await self.embedder.start()  # the in-process model loads (seconds, on a worker thread)
            except Exception as exc:
                self._failopen.failed(EMBEDDING, BackendError(EMBEDDING, f"the model failed to load: {exc!r}"))
                return False
            with contextlib.suppress(Exception):
                await self.embedder.embed(["warm up"])  # the first call pays one-off allocations
            self._embedder_started = True
        try:
            await self.backend.ensure_ready(self.embedder.dim)
            self.blocks |= await self.backend.load_blocks()
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            return False
        self.ready = True
        self._failopen.succeeded(STORE)
        return True

    async def remove_expired(self) -> int:
        removed = await self.backend.delete_where(expired_before=self._clock())
        self._stats["expired_removed"] += removed
        return removed

    async def maintain(self) -> None:
        """Drop expired entries, let the store index new ones, pick up blocks other proxies added."""
        if not self.ready and not await self.open():
            return
        try:
            await self.remove_expired()
            await self.backend.maintain()
            self.blocks |= await self.backend.load_blocks()
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
        except Exception:  # upkeep must never die: it runs again next interval
            logger.exception("semantic tier upkeep failed")

    async def close(self) -> None:
        for close in (self.embedder.aclose, self.backend.aclose):
            with contextlib.suppress(Exception):
                await close()
        self.ready = False
