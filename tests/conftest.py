"""Shared fixtures: one real Redis and one upstream simulator per test session.

Session scope keeps startup cost out of every test; the function-scoped ``sim`` and ``redis_url`` wipe
state first so tests stay independent. The proxy's own fixtures are added separately.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import RedisServer, SimulatorServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


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
