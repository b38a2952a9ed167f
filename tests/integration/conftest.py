"""Proxy fixtures: a real proxy over HTTP in front of the simulator, on each exact-tier backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.semantic import shared_encoder
from tests.support.embedding import start_embedding_service
from tests.support.proxy import ProxyServer, proxy_settings
from tests.support.redis_cluster import LocalCluster
from tests.support.servers import RedisServer, ServerThread, SimulatorServer

StartProxy = Callable[..., ProxyServer]


@pytest.fixture
def start_proxy(sim: SimulatorServer, tmp_path: Path) -> Iterator[StartProxy]:
    """Start proxies with setting overrides; each is stopped after the test."""
    started: list[ProxyServer] = []

    def start(**overrides: Any) -> ProxyServer:
        app_kwargs = overrides.pop("app_kwargs", {})
        early = overrides.pop("early", True)
        upstream = overrides.pop("upstream_base_url", sim.base_url)
        server = ProxyServer(proxy_settings(upstream, tmp_path, **overrides), early=early, **app_kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    """The exact-tier backend (a store_kind); tests using ``proxy`` run once on each."""
    return str(request.param)


@pytest.fixture
def redis_store(backend: str, request: pytest.FixtureRequest) -> RedisServer | LocalCluster | None:
    """The Redis (server or cluster) behind ``backend``, emptied; ``None`` for the in-process store."""
    if backend == "memory":
        return None
    store: RedisServer | LocalCluster = request.getfixturevalue(
        "redis_cluster" if backend == "redis-cluster" else "redis_server")
    if isinstance(store, LocalCluster):
        store.flushall()
    else:
        with store.client() as client:
            client.flushall()
    return store


@pytest.fixture
def proxy(redis_store: RedisServer | LocalCluster | None, start_proxy: StartProxy) -> ProxyServer:
    if redis_store is not None:
        return start_proxy(redis_url=redis_store.url)
    return start_proxy()


@pytest.fixture(scope="session")
def loaded_encoder() -> Any:
    encoder = shared_encoder()
    encoder.load()
    return encoder


@pytest.fixture(scope="session")
def embedding_service(loaded_encoder: Any) -> Iterator[ServerThread]:
    server = start_embedding_service()
    yield server
    server.stop()
