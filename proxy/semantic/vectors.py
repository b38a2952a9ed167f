"""Embedding the prompts the tier looks up: bounded by EMBEDDING_TIMEOUT, remembered, failing open.

A prompt asked again (a repeated question that missed the exact tier, or a lookup followed by the store of
its answer) is embedded once: the last :data:`CACHE_SIZE` vectors are kept by text, each as an
``array('f')`` (4 bytes a dimension: 4096 x 384 take about 7 MB, where lists of Python floats took about
64 MB, outside any budget; measured by ``bench/memory_bench.py``). The model computes in float32, so
nothing is lost. Any failure of the embedder, or no answer in time, is reported to
:class:`~proxy.platform.failopen.FailOpen` and answered with ``None``: the request goes on without the tier.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter, OrderedDict

from embedding_service.errors import EmbeddingError
from proxy.contracts import Embedder, Observer
from proxy.errors import BackendError
from proxy.platform.failopen import FailOpen

COMPONENT = "embedding"
CACHE_SIZE = 4096


class Vectors:
    def __init__(self, embedder: Embedder, *, timeout: float, observer: Observer, failopen: FailOpen,
                 stats: Counter[str], cache_size: int = CACHE_SIZE) -> None:
        self.embedder = embedder
        self.timeout = timeout
        self._observer = observer
        self._failopen = failopen
        self._stats = stats
        self._cache: OrderedDict[str, array[float]] = OrderedDict()
        self._cache_size = cache_size

    async def of(self, text: str) -> list[float] | None:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached.tolist()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                vectors = await self.embedder.embed([text])
        except Exception as exc:  # whatever the embedder raised: the request goes on without the tier
            if isinstance(exc, TimeoutError):
                error = BackendError(COMPONENT, f"embedding took longer than {self.timeout}s (EMBEDDING_TIMEOUT)")
            elif isinstance(exc, EmbeddingError):
                error = BackendError(COMPONENT, exc.message.removeprefix(f"{COMPONENT}: "))
            else:
                error = BackendError(COMPONENT, f"{type(exc).__name__}: {exc}")
            self._failopen.failed(COMPONENT, error)
            self._stats["errors"] += 1
            self._observer.cache_lookup("embedding", "error", time.perf_counter() - started)
            return None
        self._failopen.succeeded(COMPONENT)
        self._observer.cache_lookup("embedding", "ok", time.perf_counter() - started)
        vector = vectors[0]
        self._cache[text] = array("f", vector)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vector
