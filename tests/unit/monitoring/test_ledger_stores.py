"""One behaviour suite for every savings-ledger store (SQLite, and Redis: a real server and a real cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.monitoring.ledger import GLOBAL, LedgerStore, RedisLedgerStore, SqlLedgerStore
from proxy.monitoring.schema import FILENAME, MIGRATIONS
from proxy.platform.sqlite import Database
from tests.support.redis_homes import KINDS, home_for


@pytest.fixture(params=["sqlite", *KINDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LedgerStore]:
    if request.param == "sqlite":
        db = Database(tmp_path / FILENAME, MIGRATIONS)
        await db.open()
        yield SqlLedgerStore(db)
        await db.close()
        return
    home = home_for(request.param, request)
    yield RedisLedgerStore(home, prefix="t:")
    await home.aclose()


async def test_deltas_add_up(store: LedgerStore) -> None:
    assert await store.load() == {}
    await store.add({(GLOBAL, "requests"): 2, (GLOBAL, "cost_saved_usd"): 0.25, ("model:m|x", "requests"): 1})
    await store.add({(GLOBAL, "requests"): 3, (GLOBAL, "cost_saved_usd"): 0.5})
    assert await store.load() == {(GLOBAL, "requests"): 5, (GLOBAL, "cost_saved_usd"): 0.75,
                                  ("model:m|x", "requests"): 1}


async def test_first_started_is_set_once(store: LedgerStore) -> None:
    first = await store.first_started(100.0)
    assert first == 100.0
    assert await store.first_started(200.0) == 100.0


async def test_shared_says_whether_replicas_add_to_the_same_totals(store: LedgerStore) -> None:
    assert store.shared is (store.name == "redis")
