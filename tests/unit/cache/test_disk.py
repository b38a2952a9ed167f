"""The disk level on real SQLite files: bound and eviction order, wall-clock expiry across a reopen, damaged
files moved aside, several processes on one file, and the key filter that spares a read of a key the file
does not hold (built from the file at start-up, rebuilt after a clear, started afresh with a damaged file)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.cache import keyfilter
from proxy.cache.disk import ENTRY_OVERHEAD, DiskBackend

KEY = "cg:exact:o:-:m:"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def size_of(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


async def test_answers_survive_a_reopen_and_expire_on_the_wall_clock(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "exact.sqlite3"
    store = DiskBackend(path, 10**6, clock=clock)
    await store.set(KEY + "a", b"answer", 60)
    await store.aclose()
    reopened = DiskBackend(path, 10**6, clock=clock)
    assert await reopened.get(KEY + "a") == b"answer"
    assert await reopened.usage() == (1, size_of(KEY + "a", b"answer"))
    clock.now += 60
    assert await reopened.get(KEY + "a") is None
    assert reopened.stats.evictions == {"size": 0, "expiry": 1}
    assert await reopened.usage() == (0, 0)
    await reopened.aclose()


async def test_maintain_purges_expired_rows(tmp_path: Path) -> None:
    clock = Clock()
    store = DiskBackend(tmp_path / "exact.sqlite3", 10**6, clock=clock)
    for i in range(5):
        await store.set(f"{KEY}{i}", b"v", 10 if i < 3 else 100)
    clock.now += 50
    assert await store.purge() == 3
    assert store.stats.evictions["expiry"] == 3
    assert await store.usage() == (2, 2 * size_of(KEY + "0", b"v"))
    await store.aclose()


async def test_lru_evicts_the_least_recently_used_down_to_the_low_water_mark(tmp_path: Path) -> None:
    clock = Clock()
    value = b"x" * 900
    one = size_of(KEY + "0", value)
    store = DiskBackend(tmp_path / "exact.sqlite3", 4 * one, clock=clock)  # room for four
    for i in range(4):
        clock.now += 1
        await store.set(f"{KEY}{i}", value, 600)
    clock.now += 1
    assert await store.get(KEY + "0") == value  # 0 is now the most recently used
    clock.now += 1
    await store.touch({KEY + "1": 1})  # 1 too, through a hit the memory level served
    clock.now += 1
    await store.set(KEY + "4", value, 600)  # over the bound: down to 95 %, i.e. three entries
    assert store.stats.evictions["size"] == 2
    assert {key async for key in store.scan(KEY + "*")} == {KEY + "0", KEY + "1", KEY + "4"}
    await store.aclose()


async def test_lfu_evicts_the_least_often_used(tmp_path: Path) -> None:
    clock = Clock()
    value = b"x" * 900
    one = size_of(KEY + "0", value)
    store = DiskBackend(tmp_path / "exact.sqlite3", 3 * one + one // 2, policy="lfu", clock=clock)
    for i in range(3):
        clock.now += 1
        await store.set(f"{KEY}{i}", value, 600)
    await store.touch({KEY + "0": 5, KEY + "2": 2})
    clock.now += 1
    await store.set(KEY + "3", value, 600)  # 1 has no hits at all; 3 is new
    assert {key async for key in store.scan(KEY + "*")} == {KEY + "0", KEY + "2", KEY + "3"}
    await store.aclose()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_a_damaged_file_is_moved_aside_and_started_fresh(tmp_path: Path, damage: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "exact.sqlite3"
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 500)
    else:
        store = DiskBackend(path, 10**8)
        for i in range(300):
            await store.set(f"{KEY}{i}", os.urandom(2000), 600)
        await store.aclose()
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2)
    with caplog.at_level(logging.WARNING, logger="cachegate.sqlite"):
        store = DiskBackend(path, 10**8)
        assert await store.get(KEY + "1") is None
        await store.set(KEY + "new", b"fresh", 60)
        assert await store.get(KEY + "new") == b"fresh"
        await built(store)
        assert await store.get(KEY + "new") == b"fresh"  # the filter of the fresh file has it
        assert await store.get(KEY + "1") is None and store.stats.skipped_reads == 1
    assert "moved aside" in caplog.text
    assert len(store.database.set_aside) == 1
    aside = store.database.set_aside[0]
    assert aside.exists() and aside.name.startswith("exact.sqlite3.corrupt-")
    assert (await store.report()).extra["set_aside"] == [str(aside)]
    await store.aclose()


async def test_damage_met_while_running_is_moved_aside_too(tmp_path: Path) -> None:
    path = tmp_path / "exact.sqlite3"
    store = DiskBackend(path, 10**8)
    for i in range(300):
        await store.set(f"{KEY}{i}", os.urandom(2000), 600)
    await store.database.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    await store.database.run(lambda conn: conn.execute("PRAGMA cache_size=1"))  # read pages from the file again
    with path.open("r+b") as file:  # overwrite pages under the open connection
        file.seek(4096 * 3)
        file.write(b"\xff" * 4096 * 40)
    errors = 0
    for i in range(300):  # some read meets the damage: a BackendError (fail open), then a fresh file
        try:
            await store.get(f"{KEY}{i}")
        except Exception:
            errors += 1
    await store.set(KEY + "after", b"v", 60)
    assert await store.get(KEY + "after") == b"v"
    assert errors >= 1 and store.database.set_aside
    await built(store)  # the fresh file's own filter: the old file's keys are gone, the new one is there
    assert store.keys.filter is not None and KEY + "after" in store.keys.filter
    assert await store.get(KEY + "after") == b"v"
    await store.aclose()


WRITER = """
import asyncio, sys
from pathlib import Path
from proxy.cache.disk import DiskBackend

async def main():
    store = DiskBackend(Path(sys.argv[1]), 10**8)
    for i in range(200):
        await store.set(f"cg:exact:o:-:m:{sys.argv[2]}{i}", b"v" * 100, 600)
    await store.aclose()

asyncio.run(main())
"""


async def test_several_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "exact.sqlite3"
    store = DiskBackend(path, 10**8)
    await store.set(KEY + "mine", b"v", 600)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], env=env) for name in ("a", "b")]
    for i in range(200):
        await store.set(f"{KEY}c{i}", b"v" * 100, 600)
    await built(store)
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    # another process's write, read here: the file changed since this process last looked, so the key filter
    # (which knows only this process's writes) does not answer for it
    assert await store.get(KEY + "a199") == b"v" * 100
    assert all([await store.get(f"{KEY}b{i}") == b"v" * 100 for i in range(200)])
    assert store.stats.skipped_reads == 0
    assert (await store.report()).extra["key_filter"]["state"].startswith("off")
    await store.maintain()
    await store.maintain()  # the other writers were quiet for one upkeep: rebuilt from the file, on again
    assert (await store.report()).extra["key_filter"]["state"] == "ready"
    assert await store.get(KEY + "a0") == b"v" * 100
    assert await store.get(KEY + "never") is None and store.stats.skipped_reads == 1
    await store.maintain()  # recount from the file: every process's rows
    entries, _ = await store.usage()
    assert entries == 601
    await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def built(store: DiskBackend) -> None:
    """Until the key filter built in the background is in place (it starts with the file's first statement)."""
    for _ in range(2000):
        if store.keys.filter is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the key filter was never built")


async def test_a_read_of_a_key_never_stored_skips_the_file(tmp_path: Path) -> None:
    store = DiskBackend(tmp_path / "exact.sqlite3", 10**6)
    await store.set(KEY + "a", b"answer", 60)
    await built(store)
    assert await store.get(KEY + "b") is None
    assert store.stats.skipped_reads == 1
    assert await store.get(KEY + "a") == b"answer"
    await store.set(KEY + "b", b"later", 60)  # in the filter before its write: found at once
    assert await store.get(KEY + "b") == b"later"
    assert store.stats.skipped_reads == 1
    assert store.stats.snapshot()["skipped_reads"] == 1
    assert (await store.report()).extra["key_filter"]["state"] == "ready"
    await store.aclose()


async def test_after_a_restart_the_filter_is_built_from_the_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyfilter, "BUILD_PAGE", 50)  # several pages, with reads and writes between them
    path = tmp_path / "exact.sqlite3"
    store = DiskBackend(path, 10**8)
    for i in range(500):
        await store.set(f"{KEY}{i}", b"v%d" % i, 600)
    await store.aclose()
    reopened = DiskBackend(path, 10**8)
    assert (await reopened.report()).extra["key_filter"] == {"state": "building"}
    # during the build window every read goes to the file, and a write is kept for the filter being built
    assert await reopened.get(f"{KEY}7") == b"v7"
    await reopened.set(KEY + "new", b"during", 600)
    assert await reopened.get(KEY + "new") == b"during"
    await built(reopened)
    state = (await reopened.report()).extra["key_filter"]
    # 500 rows, "new" read by the last page (written before it ran), and "new" again among the keys set while
    # the build ran (the report above started it, so the set came during it)
    assert state["state"] == "ready" and state["added"] == 502
    assert [await reopened.get(f"{KEY}{i}") for i in range(500)] == [b"v%d" % i for i in range(500)]
    assert await reopened.get(KEY + "new") == b"during"
    assert reopened.stats.skipped_reads == 0
    assert await reopened.get(KEY + "never") is None and reopened.stats.skipped_reads == 1
    await reopened.aclose()


async def test_a_clear_rebuilds_the_filter_at_the_next_upkeep(tmp_path: Path) -> None:
    store = DiskBackend(tmp_path / "exact.sqlite3", 10**6)
    for i in range(10):
        await store.set(f"{KEY}{i}", b"v", 600)
    await built(store)
    assert await store.delete([f"{KEY}{i}" for i in range(10)]) == 10
    assert await store.get(KEY + "3") is None and store.stats.skipped_reads == 0  # still in the filter: read
    await store.maintain()  # more than half the filter's keys were deleted: rebuilt from the (empty) file
    assert (await store.report()).extra["key_filter"]["added"] == 0
    assert await store.get(KEY + "3") is None and store.stats.skipped_reads == 1
    await store.set(KEY + "3", b"again", 600)
    assert await store.get(KEY + "3") == b"again"
    await store.aclose()


async def test_no_write_is_hidden_by_builds_running_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyfilter, "BUILD_PAGE", 7)  # many pages: writes and reads land between them
    path = tmp_path / "exact.sqlite3"
    store = DiskBackend(path, 10**8)
    for i in range(100):
        await store.set(f"{KEY}old{i}", b"old", 600)
    await store.aclose()
    store = DiskBackend(path, 10**8)

    async def writer(name: str) -> None:
        for i in range(150):
            await store.set(f"{KEY}{name}{i}", name.encode(), 600)
            assert await store.get(f"{KEY}{name}{i}") == name.encode()
            if i % 10 == 0:  # and one rewritten: a new row (a new rowid) under a key the filter had
                await store.set(f"{KEY}old{i // 10}", b"new", 600)

    async def rebuilds() -> None:
        for _ in range(6):
            store.keys.wants_build = True
            await store.maintain()

    await asyncio.gather(writer("a"), writer("b"), rebuilds())
    await built(store)
    assert [await store.get(f"{KEY}{name}{i}") for name in "ab" for i in range(150)] == \
        [name.encode() for name in "ab" for _ in range(150)]
    assert [await store.get(f"{KEY}old{i}") for i in range(100)] == [b"new"] * 15 + [b"old"] * 85
    assert store.stats.skipped_reads == 0
    await store.aclose()
