"""Both semantic stores behind one fixture: the embedded qdrant-edge shard and the Qdrant server backend
(qdrant-client) on qdrant-client's local mode, which speaks the server's API without a server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from proxy.contracts import SemanticBackend
from proxy.semantic.edge import EdgeBackend
from proxy.semantic.qdrant import QdrantBackend

DIM = 4


def make_store(kind: str, tmp_path: Path) -> SemanticBackend:
    if kind == "edge":
        return EdgeBackend(tmp_path / "semantic" / "cachegate", timeout=5.0)
    return QdrantBackend(client=AsyncQdrantClient(location=":memory:"), collection="cachegate", timeout=5.0)


@pytest.fixture(params=["edge", "qdrant"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(store_kind: str, tmp_path: Path) -> AsyncIterator[SemanticBackend]:
    backend = make_store(store_kind, tmp_path)
    await backend.ensure_ready(DIM)
    yield backend
    await backend.aclose()
