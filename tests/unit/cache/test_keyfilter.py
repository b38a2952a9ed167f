"""The disk level's key filter on its own: sizing and the false-positive estimate, no false negatives, the
WAL-index header watch, and a build against a real SQLite connection (keys written while it runs)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from proxy.cache import keyfilter
from proxy.cache.keyfilter import MIN_CAPACITY, REBUILD_RATE, DiskKeys, KeyFilter, WalWatch, false_positive_rate

T = TypeVar("T")
KEY = "cg:exact:o:-:m:"


def test_the_estimate_is_the_textbook_formula() -> None:
    assert false_positive_rate(0, 958_512, 7) == 0.0
    assert false_positive_rate(100_000, 958_512, 7) == pytest.approx(0.010039, abs=1e-6)
    assert false_positive_rate(116_000, 958_512, 7) == pytest.approx(0.019879, abs=1e-6)  # just under the bound
    assert false_positive_rate(120_000, 958_512, 7) == pytest.approx(0.023085, abs=1e-6)  # past it


def test_a_filter_is_sized_for_its_capacity_at_one_percent() -> None:
    small = KeyFilter(10)
    assert (small.capacity, small.bits, small.hashes, small.added) == (MIN_CAPACITY, 958_512, 7, 0)
    large = KeyFilter(300_000)
    assert (large.capacity, large.bits, large.hashes) == (300_000, 2_875_520, 7)


def test_no_key_added_is_ever_missing_and_few_others_are_present() -> None:
    keys = KeyFilter(MIN_CAPACITY)
    stored = [f"{KEY}{i}" for i in range(MIN_CAPACITY)]
    keys.update(stored[:50_000])
    for key in stored[50_000:]:
        keys.add(key)
    assert keys.added == MIN_CAPACITY
    assert all(key in keys for key in stored)
    others = sum(f"{KEY}other{i}" in keys for i in range(20_000))
    assert others < 20_000 * 2 * REBUILD_RATE  # ~1% expected; far below 4%, far above none
    assert keys.false_positive_rate == pytest.approx(0.010039, abs=1e-6)


def test_the_watch_sees_every_commit_of_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    ours, theirs = sqlite3.connect(path), sqlite3.connect(path)
    ours.execute("PRAGMA journal_mode=WAL")
    ours.execute("CREATE TABLE t (x)")
    ours.commit()
    watch = WalWatch(path.with_name(path.name + "-shm"))
    assert watch.changed()  # nothing noted yet
    watch.known = watch.read()
    assert not watch.changed()
    for value in range(3):
        theirs.execute("INSERT INTO t VALUES (?)", (value,))
        theirs.commit()
        assert watch.changed()
        watch.known = watch.read()
    watch.close()
    assert watch.changed()  # closed: never "unchanged"
    assert WalWatch(tmp_path / "missing-shm").changed()


def entries(path: Path, count: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE entries (key TEXT PRIMARY KEY)")
    conn.executemany("INSERT INTO entries (key) VALUES (?)", [(f"{KEY}{i}",) for i in range(count)])
    conn.commit()
    return conn


async def test_a_build_reads_every_key_and_keeps_those_written_while_it_runs(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyfilter, "BUILD_PAGE", 10)
    conn = entries(tmp_path / "db.sqlite3", 35)
    keys = DiskKeys(tmp_path / "db.sqlite3")
    pages = 0

    async def run(fn: Callable[[sqlite3.Connection], T]) -> T:
        nonlocal pages
        result = fn(conn)
        keys.noted(conn)
        pages += 1
        if pages == 2:  # a set between two pages, whose row the pages never see
            keys.adding(f"{KEY}during")
        return result

    keys.opened(conn)
    assert keys.filter is None and keys.wants_build
    assert keys.may_hold(f"{KEY}anything")  # until the first build: "maybe" for everything
    await keys.build(run, 35)
    assert pages == 4  # 10 + 10 + 10 + 5 rows
    assert keys.filter is not None and keys.filter.added == 36
    assert all(keys.may_hold(f"{KEY}{i}") for i in range(35)) and keys.may_hold(f"{KEY}during")
    assert keys.state() == {"state": "ready", "capacity": MIN_CAPACITY, "added": 36, "false_positive_rate": 0.0}
    skipped = [i for i in range(1000) if not keys.may_hold(f"{KEY}never{i}")]
    assert len(skipped) > 950

    # another connection writes: the header changed, so nothing is skipped until our next statement notes
    # it, and then the commit it saw turns the filter off until a rebuild
    other = sqlite3.connect(tmp_path / "db.sqlite3")
    other.execute("INSERT INTO entries (key) VALUES (?)", (f"{KEY}theirs",))
    other.commit()
    assert keys.may_hold(f"{KEY}never{skipped[0]}")
    keys.noted(conn)
    assert keys.may_hold(f"{KEY}never{skipped[0]}") and keys.state()["state"].startswith("off")
    assert not keys.needs_rebuild()  # it wrote since the last upkeep: not yet
    assert keys.needs_rebuild()  # quiet for one upkeep
    await keys.build(run, 37)
    assert keys.state()["state"] == "ready" and keys.may_hold(f"{KEY}theirs")
    assert not keys.may_hold(f"{KEY}never{skipped[0]}")
    keys.close()
    conn.close()
    other.close()


async def test_upkeep_rebuilds_past_the_rate_or_after_deletes(tmp_path: Path) -> None:
    conn = entries(tmp_path / "db.sqlite3", 0)
    keys = DiskKeys(tmp_path / "db.sqlite3")

    async def run(fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(conn)

    keys.opened(conn)
    await keys.build(run, 0)
    assert not keys.needs_rebuild()
    for i in range(116_000):
        keys.adding(f"{KEY}{i}")
    assert not keys.needs_rebuild()  # estimate 0.0199
    for i in range(116_000, 120_000):
        keys.adding(f"{KEY}{i}")
    assert keys.needs_rebuild()  # 0.0231: past REBUILD_RATE
    await keys.build(run, 120_000)
    assert keys.filter is not None and keys.filter.capacity == 240_000  # grown with the entries held

    await keys.build(run, 0)
    for i in range(10):
        keys.adding(f"{KEY}{i}")
    keys.deleted += 5
    assert not keys.needs_rebuild()
    keys.deleted += 1  # more than half of what it holds was deleted (an admin clear)
    assert keys.needs_rebuild()
    keys.close()
    conn.close()


async def test_a_build_for_a_file_that_was_replaced_meanwhile_is_dropped(tmp_path: Path) -> None:
    conn = entries(tmp_path / "db.sqlite3", 3)
    keys = DiskKeys(tmp_path / "db.sqlite3")

    async def run(fn: Callable[[sqlite3.Connection], T]) -> T:
        result = fn(conn)
        keys.opened(conn)  # as when a damaged file is set aside and a fresh one opened under the build
        return result

    keys.opened(conn)
    await keys.build(run, 3)
    assert keys.filter is None and keys.wants_build
    keys.close()
    conn.close()
