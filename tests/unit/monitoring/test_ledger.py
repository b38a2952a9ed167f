"""The savings ledger: deltas in memory, flushed to SQLite or Redis, totals that survive a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.monitoring.ledger import GLOBAL, MAX_LEDGER_MODELS, Ledger, RedisLedgerStore, SqlLedgerStore
from proxy.monitoring.schema import FILENAME, MIGRATIONS
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from proxy.platform.sqlite import Database
from tests.unit.monitoring.support import MemoryStore


async def test_totals_include_unflushed_deltas_and_survive_a_restart(tmp_path: Path) -> None:
    db = Database(tmp_path / FILENAME, MIGRATIONS)
    await db.open()
    ledger = Ledger(SqlLedgerStore(db))
    await ledger.start()
    ledger.add(GLOBAL, "requests", 3)
    ledger.add(GLOBAL, "cost_saved_usd", 0.25)
    assert ledger.totals() == {(GLOBAL, "requests"): 3, (GLOBAL, "cost_saved_usd"): 0.25}
    assert await ledger.flush()
    ledger.add(GLOBAL, "requests", 2)
    assert ledger.totals()[GLOBAL, "requests"] == 5
    await ledger.flush()
    first = ledger.first_started_at
    await db.close()

    db = Database(tmp_path / FILENAME, MIGRATIONS)
    await db.open()
    again = Ledger(SqlLedgerStore(db))
    await again.start()
    assert again.totals() == {(GLOBAL, "requests"): 5, (GLOBAL, "cost_saved_usd"): 0.25}
    assert again.first_started_at == first
    await db.close()


async def test_a_failing_store_keeps_the_deltas_for_the_next_flush() -> None:
    store = MemoryStore(fail=True)
    errors: list[str] = []
    ledger = Ledger(store, on_error=lambda component, exc: errors.append(component))
    await ledger.start()
    ledger.add(GLOBAL, "requests")
    assert not await ledger.flush()
    ledger.add(GLOBAL, "requests")
    assert ledger.totals() == {(GLOBAL, "requests"): 2}
    assert errors and set(errors) == {"ledger_memory"}
    store.fail = False
    assert await ledger.flush()
    assert store.data == {(GLOBAL, "requests"): 2}
    assert ledger.pending == 0


async def test_redis_replicas_add_up(redis_url: str) -> None:
    homes = [RedisHome(parse_redis_url(redis_url), timeout=5.0) for _ in range(3)]  # one per replica
    stores = [RedisLedgerStore(home, prefix="t:") for home in homes[:2]]
    ledgers = [Ledger(store, refresh_every=0) for store in stores]
    try:
        for ledger in ledgers:
            await ledger.start()
        ledgers[0].add(GLOBAL, "requests", 2)
        ledgers[0].add("model:gpt-4o|x", "cost_saved_usd", 0.5)
        ledgers[1].add(GLOBAL, "requests", 3)
        ledgers[1].add("model:gpt-4o|x", "cost_saved_usd", 0.25)
        await ledgers[1].flush()
        await ledgers[0].refresh(force=True)
        totals = ledgers[0].totals()
        assert totals[GLOBAL, "requests"] == 5
        assert totals["model:gpt-4o|x", "cost_saved_usd"] == 0.75  # scopes may contain the separator
        assert ledgers[0].first_started_at == ledgers[1].first_started_at
        fresh = Ledger(RedisLedgerStore(homes[2], prefix="t:"))
        await fresh.start()
        assert fresh.totals() == totals
    finally:
        for home in homes:
            await home.aclose()


async def test_totals_count_deltas_while_they_are_being_written() -> None:
    import asyncio

    class SlowStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def add(self, deltas: Any) -> None:
            await self.release.wait()
            await super().add(deltas)

    store = SlowStore()
    ledger = Ledger(store)
    await ledger.start()
    ledger.add(GLOBAL, "requests", 4)
    flushing = asyncio.create_task(ledger.flush())
    await asyncio.sleep(0)  # the flush is now waiting on the store
    assert ledger.totals()[GLOBAL, "requests"] == 4
    store.release.set()
    assert await flushing
    assert ledger.totals()[GLOBAL, "requests"] == 4


async def test_model_scopes_are_bounded_across_restarts() -> None:
    # issue 10.17: the store keeps every model scope ever written; a restart must not allow MAX more
    store = MemoryStore()
    store.data = {(f"model:m{i}", "requests"): 1.0 for i in range(MAX_LEDGER_MODELS)}
    ledger = Ledger(store)
    await ledger.start()
    assert ledger.model_scope("m3") == "model:m3"  # known
    assert ledger.model_scope("new-one") == "model:other"
    assert ledger.model_scope("other") == "model:other"
    roomy = Ledger(MemoryStore())
    assert roomy.model_scope("m1") == "model:m1"
    roomy.add("model:m1", "requests")
    assert roomy.model_scope("m1") == "model:m1"
