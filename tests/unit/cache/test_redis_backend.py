"""The Redis level on a real server and a real cluster: hits answered in front of it still count for its
eviction (the exact tier hands the first level's hits down: TOUCH)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from proxy.cache.redis_backend import RedisBackend
from tests.support.redis_homes import KINDS, home_for

KEYS = [f"cg:exact:t:-:m:{{{index:064x}}}" for index in range(3)]


def node_clients(kind: str, request: pytest.FixtureRequest) -> list[redis.Redis]:
    if kind == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        return [cluster.node_client(node) for node in cluster.primaries()]
    return [request.getfixturevalue("redis_server").client()]


@pytest.fixture
def lfu(request: pytest.FixtureRequest, kind: str) -> Iterator[None]:
    """Every node counts each access once (LFU, log factor 0), as it was afterwards."""
    clients = node_clients(kind, request)
    for client in clients:
        client.config_set("maxmemory-policy", "allkeys-lfu")
        client.config_set("lfu-log-factor", 0)
    try:
        yield
    finally:
        for client in clients:
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("lfu-log-factor", 10)


@pytest.mark.parametrize("kind", KINDS)
async def test_hits_handed_down_reach_the_servers_eviction_counters(kind: str, request: pytest.FixtureRequest,
                                                                     lfu: None) -> None:
    home = home_for(kind, request)
    backend = RedisBackend(home)
    try:
        for key in KEYS:
            await backend.set(key, b"entry", 60)
        before = [await home.command("OBJECT", "FREQ", key, key=key) for key in KEYS]
        await backend.touch({KEYS[0]: 4, KEYS[2]: 1})
        after = [await home.command("OBJECT", "FREQ", key, key=key) for key in KEYS]
        assert after[0] > before[0] and after[2] > before[2]
        assert after[1] == before[1]  # not handed down: not touched
        await backend.touch({})  # nothing to hand down: no command
    finally:
        await home.aclose()
