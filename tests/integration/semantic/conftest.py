"""The semantic tier over HTTP: the real model, the embedding service on a free port, both stores.

The model is loaded once per session (``shared_encoder``) and shared by the embedding service and any
proxy that embeds in-process. The store is parametrised: the embedded qdrant-edge shard under DATA_DIR,
and the Qdrant server backend (qdrant-client) on qdrant-client's local mode, injected into ``create_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient

from proxy.semantic.qdrant import QdrantBackend
from proxy.semantic.tier import SemanticCache
from tests.support.embedding import wait_until
from tests.support.proxy import ProxyServer
from tests.support.servers import ServerThread

StartSemantic = Callable[..., ProxyServer]


@pytest.fixture(params=["edge", "qdrant"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_semantic(start_proxy: Callable[..., ProxyServer], embedding_service: ServerThread,
                   store_kind: str) -> StartSemantic:
    """Start a proxy with the semantic tier on (serve), embedding over HTTP, on the parametrised store; the
    guards alone decide (the verifier's path has tests of its own: test_verifier_tier.py)."""

    def start(**overrides: Any) -> ProxyServer:
        overrides.setdefault("semantic_mode", "serve")
        overrides.setdefault("semantic_threshold", 0.9)
        overrides.setdefault("semantic_verifier", "off")
        overrides.setdefault("embedding_url", embedding_service.url)
        overrides.setdefault("embedding_timeout", 5.0)  # a loaded 2-core CI box; the fail-open test uses its own
        app_kwargs = dict(overrides.pop("app_kwargs", {}))
        if store_kind == "qdrant":
            client = AsyncQdrantClient(location=":memory:")
            app_kwargs.setdefault("semantic_backend", QdrantBackend(client=client, timeout=5.0))
        return start_proxy(**overrides, app_kwargs=app_kwargs)

    return start


def tier_of(proxy: ProxyServer) -> SemanticCache:
    tier = proxy.parts.semantic
    assert isinstance(tier, SemanticCache)
    return tier


def wait_stored(proxy: ProxyServer, count: int) -> None:
    """Answers are stored after the client has them: wait until ``count`` upserts are done."""
    tier = tier_of(proxy)
    wait_until(lambda: tier.stats.get("stored", 0) >= count, f"{count} semantic upserts")
