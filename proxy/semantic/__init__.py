"""The semantic tier: embeddings of the last user turn, matched in Qdrant within one scope.

:func:`build_semantic_tier` is the one place that chooses the parts: the embedder (the embedding service
when EMBEDDING_URL is set, else the same model in-process) and the store (a Qdrant server when QDRANT_URL
is set, else the embedded qdrant-edge shard under DATA_DIR). Nothing here does I/O; the tier's
``start()`` loads the model and opens the store.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from proxy.contracts import Embedder, Observer, SemanticBackend, SemanticTier
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import BackgroundTasks
from proxy.settings import Settings

if TYPE_CHECKING:
    from proxy.semantic.tier import SemanticCache

#: Milliseconds the in-process embedder gathers concurrent prompts into one model call. The proxy embeds
#: one prompt per request on its hot path, so it does not wait: under load, batches form by themselves
#: while the previous one encodes.
LOCAL_BATCH_WINDOW_MS = 0.0

_encoder_lock = threading.Lock()
_encoders: dict[str, Any] = {}


def shared_encoder(model_path: str | None = None) -> Any:
    """One :class:`SentenceEncoder` per model directory per process: every app (and every test proxy)
    shares the loaded weights instead of loading 90 MB again."""
    from embedding_service.model import SentenceEncoder

    key = model_path or ""
    with _encoder_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            from pathlib import Path

            encoder = _encoders[key] = SentenceEncoder(Path(model_path) if model_path else None)
        return encoder


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedding_url:
        from embedding_service.client import HttpEmbedder

        return HttpEmbedder(settings.embedding_url, timeout=settings.embedding_timeout)
    from embedding_service.local import LocalEmbedder

    return LocalEmbedder(shared_encoder(), window_ms=LOCAL_BATCH_WINDOW_MS)


def make_semantic_backend(settings: Settings) -> SemanticBackend:
    if settings.qdrant_url:
        from proxy.semantic.qdrant import QdrantBackend

        return QdrantBackend(settings.qdrant_url, api_key=settings.qdrant_api_key,
                             collection=settings.qdrant_collection, timeout=settings.qdrant_timeout)
    from proxy.semantic.edge import EdgeBackend

    return EdgeBackend(settings.data_path / "semantic" / settings.qdrant_collection, timeout=settings.qdrant_timeout)


def build_semantic_tier(settings: Settings, *, observer: Observer, failopen: FailOpen, tasks: BackgroundTasks,
                        backend: SemanticBackend | None = None,
                        embedder: Embedder | None = None) -> SemanticTier | None:
    """The configured semantic tier, or ``None`` when SEMANTIC_MODE is off. ``backend`` and ``embedder``
    replace the configured ones (tests inject a qdrant-client local-mode store)."""
    if settings.semantic_mode == "off":
        return None
    from embedding_service.model_files import ModelFiles
    from proxy.semantic.tier import SemanticCache

    tier: SemanticCache = SemanticCache(
        backend=backend if backend is not None else make_semantic_backend(settings),
        embedder=embedder if embedder is not None else make_embedder(settings),
        observer=observer, failopen=failopen, tasks=tasks, mode=settings.semantic_mode,
        threshold=settings.semantic_threshold, embedding_timeout=settings.embedding_timeout,
        max_tokens=ModelFiles.read().max_tokens)
    return tier
