"""History that replicas share (issue 17): proxies with one DATABASE_URL, on a real PostgreSQL server.

Two proxies started at the same moment migrate once and each shows the other's rows; a database stopped under
load fails no request, keeps the rows in the bounded buffer (drops only beyond it, shown in ``/health`` and
``/metrics``) and writes them once it is back; retention runs at start (on one replica at a time:
tests/unit/monitoring/test_usage.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import proxy.monitoring.usage as usage_module
from proxy.platform.postgres import PostgresDatabase
from tests.integration.monitoring.helpers import chat, prometheus, sample, wait_for
from tests.support.postgres import PostgresServer, require_postgres
from tests.support.proxy import ProxyServer

WAIT = 60.0  # the machine is shared: generous, and nothing here measures speed


def usage(proxy: ProxyServer, **params: str) -> dict[str, Any]:
    response = httpx.get(proxy.url + "/metrics/usage", params={"from": "0", **params}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def history(proxy: ProxyServer) -> dict[str, Any]:
    entry: dict[str, Any] = httpx.get(proxy.url + "/health", timeout=30).json()["services"]["history"]
    return entry


def rows_in(server: PostgresServer, url: str) -> int:
    return int(server.psql("SELECT COUNT(*) FROM cachegate_monitoring.usage", database=url.rsplit("/", 1)[1]))


def test_two_proxies_started_together_migrate_once_and_share_their_rows(start_proxy: Any, database_url: str,
                                                                        postgres_server: PostgresServer) -> None:
    proxies: list[ProxyServer] = []
    starting = [threading.Thread(target=lambda: proxies.append(start_proxy(database_url=database_url)))
                for _ in range(2)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    first, second = proxies
    databases = [p.parts.telemetry.database for p in proxies]
    assert all(isinstance(db, PostgresDatabase) for db in databases)
    applied = sorted(v for db in databases for v in db.applied)  # type: ignore[attr-defined]
    assert applied == [1, 2, 3, 4]  # every version, each by one of them
    versions = postgres_server.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                                    "cachegate_monitoring.schema_migrations", database=database_url.rsplit("/", 1)[1])
    assert versions.strip() == "1,2,3,4"

    chat(first, "asked of the first")
    chat(second, "asked of the second", model="gpt-4o")
    chat(second, "asked of the second", model="gpt-4o")  # a hit on the second
    for proxy in (first, second):  # each one's rows are flushed by its own reader; wait for the other's
        body = wait_for(lambda p=proxy: usage(p), lambda b: b["totals"]["requests"] == 3, WAIT)
        assert (body["totals"]["requests"], body["totals"]["exact_hits"]) == (3, 1)
        assert [(m["model"], m["requests"]) for m in body["by_model"]] == [("gpt-4o", 2), ("gpt-4o-mini", 1)]
    # the savings ledger, without Redis, is shared through the same database
    totals = wait_for(lambda: httpx.get(first.url + "/metrics", timeout=30).json()["cache_performance"],
                      lambda t: t["total_requests"] == 3, WAIT)
    assert totals["total_requests"] == 3
    assert first.parts.telemetry.ledger.store.shared


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own, to stop and start under load without disturbing the session's."""
    with PostgresServer(require_postgres()) as server:
        yield server


def test_a_database_stopped_under_load_fails_no_request_and_gets_every_row_back(
        start_proxy: Any, own_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_module, "MAX_BUFFER", 50)  # a small bound, to see it hold and then overflow
    url = own_postgres.create_database()
    proxy = start_proxy(database_url=url, database_timeout=2.0)
    statuses: list[int] = []
    sent_ten = threading.Event()

    def load(count: int, start: int) -> None:
        for i in range(start, start + count):
            statuses.append(chat(proxy, f"question {i % 7}").http_response.status_code)
            if len(statuses) == 10:
                sent_ten.set()

    sender = threading.Thread(target=load, args=(30, 0))
    sender.start()
    sent_ten.wait(WAIT)
    own_postgres.stop_server()  # mid-load: the requests go on
    sender.join()
    assert statuses == [200] * 30  # not one request failed
    down = wait_for(lambda: history(proxy), lambda h: h["status"] == "degraded", WAIT)
    assert down["status"] == "degraded" and down["dropped"] == 0  # 20 rows at most wait: within the bound
    health = httpx.get(proxy.url + "/health", timeout=30)
    assert health.status_code == 200  # requests are served all the same: no load balancer should drop it

    own_postgres.start_server()
    state = wait_for(lambda: history(proxy), lambda h: h["status"] == "up" and h["pending"] == 0, WAIT)
    assert (state["status"], state["pending"], state["dropped"]) == ("up", 0, 0)
    assert rows_in(own_postgres, url) == 30  # every row, once

    own_postgres.stop_server()
    load(60, 100)  # 60 rows while it is down: 50 fit in the buffer, 10 do not
    assert statuses == [200] * 90
    proxy.parts.telemetry.observer.fold()
    state = wait_for(lambda: history(proxy), lambda h: h["dropped"] == 10, WAIT)
    assert (state["pending"], state["dropped"], state["buffer_rows"]) == (50, 10, 50)
    metrics = httpx.get(proxy.url + "/metrics", timeout=30)
    assert metrics.json()["history"]["dropped"] == 10
    assert sample(prometheus(proxy), "cachegate_monitoring_dropped_total", sink="usage") == 10

    own_postgres.start_server()
    wait_for(lambda: history(proxy), lambda h: h["status"] == "up" and h["pending"] == 0, WAIT)
    assert rows_in(own_postgres, url) == 80
    assert usage(proxy)["totals"]["requests"] == 80


#: longer than the test keeps the server hung: a request that waited for the database could not end before it resumes
HUNG_TIMEOUT = 300.0


@pytest.mark.parametrize("database_timeout", [2.0, HUNG_TIMEOUT], ids=["timing-out", "waiting"])
def test_a_database_that_hangs_under_load_neither_fails_nor_slows_a_request(
        start_proxy: Any, own_postgres: PostgresServer, database_timeout: float) -> None:
    """SIGSTOP, not a stop: connections stay open and nothing answers. Every request is answered while the server
    is still hung, so none of them waited for it (``waiting``: a write would wait the whole time; ``timing-out``: a
    write times out, and its cancel cannot reach the server either); the rows are written once it resumes."""
    url = own_postgres.create_database()
    proxy = start_proxy(database_url=url, database_timeout=database_timeout)
    client = proxy.client(timeout=60.0)
    for i in range(5):
        assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])
    state = wait_for(lambda: history(proxy), lambda h: h["written"] == 5, WAIT)
    assert (state["status"], state["written"]) == ("up", 5)

    own_postgres.pause_server()
    try:
        statuses, longest = [], 0.0
        for i in range(30):
            started = time.monotonic()
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i % 7}"}])
            longest = max(longest, time.monotonic() - started)
            statuses.append(raw.http_response.status_code)
        assert statuses == [200] * 30  # not one request failed
        assert longest < WAIT  # generous; a request that awaited the database would take HUNG_TIMEOUT (waiting)
        proxy.parts.telemetry.observer.fold()
        hung = wait_for(lambda: history(proxy), lambda h: h["status"] == "degraded" and h["pending"] == 30, WAIT)
        assert (hung["status"], hung["written"], hung["pending"], hung["dropped"]) == ("degraded", 5, 30, 0)
        health = httpx.get(proxy.url + "/health", timeout=30)
        assert health.status_code == 200  # requests are served all the same
        assert health.json()["services"]["history"]["status"] == "degraded"
        if database_timeout < WAIT:  # reading gives up at DATABASE_TIMEOUT, however long the server hangs
            answer = httpx.get(proxy.url + "/metrics/usage", timeout=WAIT)
            assert answer.status_code == 503 and "usage history cannot be read" in answer.text, answer.text
    finally:
        own_postgres.resume_server()
    state = wait_for(lambda: history(proxy), lambda h: h["status"] == "up" and h["pending"] == 0, WAIT)
    assert (state["status"], state["pending"], state["written"], state["dropped"]) == ("up", 0, 35, 0)
    assert rows_in(own_postgres, url) == 35  # every row, once


def test_retention_runs_at_start(start_proxy: Any, database_url: str) -> None:
    import asyncio
    import time

    from proxy.monitoring.schema import SCHEMA
    from proxy.monitoring.usage import UsageStore

    async def old_rows() -> None:
        db = PostgresDatabase(database_url, owner=SCHEMA.name, migrations=SCHEMA.migrations)
        store = UsageStore(db, retention_days=30)
        now = time.time()
        for age_days in (45, 31, 29):
            store.append((now - age_days * 86400, "old", "/v1/chat/completions", "gpt-4o-mini", 1, 1, 0, "miss", None,
                          200, 1.0, 0, None, 0.0, 0.0))
        await store.flush()
        await db.close()

    asyncio.run(old_rows())
    proxy = start_proxy(database_url=database_url, usage_retention_days=30)
    assert usage(proxy)["totals"]["requests"] == 1  # the 29-day-old row; the others went at start
