"""The in-process :class:`proxy.contracts.Embedder`: the model runs inside the proxy (EMBEDDING_URL unset).

The embedding service itself is built on the same class, so both paths batch and fail identically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from .batcher import MicroBatcher
from .errors import EmbeddingError
from .model import SentenceEncoder

COMPONENT = "embedding"


class LocalEmbedder:
    """Embeds with a :class:`SentenceEncoder` behind a :class:`MicroBatcher`.

    Nothing heavy happens in the constructor; :meth:`start` loads the model on a worker thread.
    Failures surface as :class:`EmbeddingError` so the proxy fails open.
    """

    name = "embedded"
    remote = False

    def __init__(self, encoder: SentenceEncoder | None = None, *, model_path: Path | None = None,
                 window_ms: float = 2.0, max_batch: int = 64, torch_threads: int | None = None,
                 precision: str = "auto", backend: str = "auto", cache_dir: Path | str | None = None) -> None:
        if encoder is None:
            encoder = SentenceEncoder(model_path, torch_threads=torch_threads, precision=precision,
                                      backend=backend, cache_dir=cache_dir)
        self.encoder = encoder
        self.dim: int = self.encoder.dim
        self.model: str = self.encoder.name
        self.batcher = MicroBatcher(self.encoder.encode, window_ms=window_ms, max_batch=max_batch)

    @property
    def location(self) -> str:
        return f"in-process {self.model}"

    @property
    def ready(self) -> bool:
        return self.encoder.loaded and self.batcher.running

    async def start(self) -> None:
        """Load the model (unless the encoder given was loaded already) and start batching."""
        if not self.encoder.loaded:
            await asyncio.to_thread(self.encoder.load)
        await self.batcher.start()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self.ready:
            raise EmbeddingError(COMPONENT, "the model is not loaded yet" if not self.encoder.loaded
                                 else "the embedder is not running")
        try:
            return await self.batcher.embed(texts)
        except Exception as exc:
            raise EmbeddingError(COMPONENT, f"encoding failed: {exc!r}") from exc

    def count_tokens(self, text: str) -> int:
        return self.encoder.count_tokens(text)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        return self.encoder.token_counter().count_many(texts)

    async def ping(self) -> None:
        if not self.ready:
            raise EmbeddingError(COMPONENT, "the model is not loaded yet")

    async def aclose(self) -> None:
        await self.batcher.stop(drain=True)
