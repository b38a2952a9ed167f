"""The disk level of the embedded exact tier: SQLite in WAL mode under ``DATA_DIR``, bounded by bytes.

Why SQLite through :mod:`proxy.platform.sqlite` rather than ``diskcache`` (``bench/disk_bench.py``
measured both; the figures are in the commit and the README): the reads that matter cost the same (one
indexed row; diskcache is SQLite too), and this way the level keeps what cachegate needs and diskcache does
not give as one statement: expiry on the wall clock (so it survives a restart), entries kept past it, hit
counts for LFU and for the operator, eviction down to a low-water mark in one ``DELETE``, a damaged file
moved aside (the layer's *disposable* databases) and no second way of running SQLite in the project.

- ``set`` replaces the row, then evicts least recently used (``lru``) or least often used (``lfu``, ties by
  age) rows until the level is under :data:`LOW_WATER` of its bound, when it went over.
- ``get`` of an expired row deletes it (an ``expiry`` eviction) and answers ``None``; a hit bumps the row's
  ``used_at`` and ``hits`` (only memory misses reach the disk, so that write is rare).
- :meth:`touch` adds the hits the memory level served, in one batch, so the disk's order sees them too.
- :meth:`maintain` (a periodic job) deletes expired rows and recounts entries and bytes from the file, which
  is what keeps the totals right when several processes share one ``DATA_DIR`` (each writes through SQLite's
  own locking, WAL readers never block the writer; between recounts a process knows only its own writes),
  and rebuilds the key filter when it is due.
- A read of a key the file surely does not hold (:class:`~proxy.cache.keyfilter.DiskKeys`, a Bloom filter of
  its keys) is answered ``None`` on the event loop without the hop, counted as the level's ``skipped_reads``.

Every statement runs on the database's one thread, never on the event loop; every SQLite failure is a
:class:`~proxy.errors.BackendError`, so the tier fails open.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from proxy.cache.keyfilter import DiskKeys
from proxy.cache.stats import LevelReport, LevelStats
from proxy.errors import BackendError
from proxy.platform.sqlite import Database, Migration

T = TypeVar("T")

FILENAME = "exact-cache.sqlite3"
COMPONENT = "disk"
POLICIES = ("lru", "lfu")
#: Row, index and page bookkeeping counted against the bound with each entry (measured: ~90 bytes a row
#: for keys of cachegate's length in the file beyond key and value).
ENTRY_OVERHEAD = 100
#: Having gone over its bound, the level evicts down to this share of it, so one write does not evict on
#: every write that follows.
LOW_WATER = 0.95
SCAN_PAGE = 1000

MIGRATIONS = (
    Migration(1, "exact-tier entries on disk", (
        "CREATE TABLE entries (key TEXT PRIMARY KEY, value BLOB NOT NULL, size INTEGER NOT NULL, "
        "expires_at REAL NOT NULL, used_at REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX entries_expiry ON entries (expires_at)",
        "CREATE INDEX entries_lru ON entries (used_at)",
        "CREATE INDEX entries_lfu ON entries (hits, used_at)",
    )),
)

_ORDER = {"lru": "used_at", "lfu": "hits, used_at"}


class DiskBackend:
    name = COMPONENT
    remote = False

    def __init__(self, path: Path, max_bytes: int, *, policy: str = "lru",
                 clock: Callable[[], float] = time.time) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}")
        self.path = path
        self.max_bytes = max_bytes
        self.policy = policy
        self.database = Database(path, MIGRATIONS, disposable=True)
        self.stats = LevelStats()
        self._clock = clock  # wall clock: expiry must mean the same after a restart
        self._open_lock = asyncio.Lock()
        self._opened = False
        self._counted_for: int | None = None
        self._entries = 0  # tallies, kept by the database thread; recounted from the file by maintain()
        self._bytes = 0
        self.keys = DiskKeys(path)

    # -- running statements -------------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, adding: str | None = None) -> T:
        if not self._opened:
            async with self._open_lock:
                if not self._opened:
                    self._opened = True
                    with contextlib.suppress(Exception):  # a failure to open shows in the statement below
                        await self.database.open()

        def call(conn: sqlite3.Connection) -> T:
            if self._counted_for != len(self.database.set_aside):  # first use, or a fresh file after damage
                self._recount(conn)
                self.keys.opened(conn)
                self._counted_for = len(self.database.set_aside)
            result = fn(conn)
            self.keys.noted(conn)
            return result

        if adding is not None:
            # In the key filter before the write can be seen, in the step that queues the write (a build's
            # pages then come after it, or the build finds the key among those added while it ran).
            self.keys.adding(adding)
        try:
            result = await self.database.run(call)
        except sqlite3.Error as exc:
            raise BackendError(COMPONENT, f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise BackendError(COMPONENT, f"{self.path}: {exc}") from exc
        self.keys.build_soon(self._run, self._entries)  # a new file: its keys, read in the background
        return result

    def _recount(self, conn: sqlite3.Connection) -> None:
        self._entries, self._bytes = conn.execute("SELECT count(*), total(size) FROM entries").fetchone()
        self._bytes = int(self._bytes)

    # -- the contract ---------------------------------------------------------------------------------

    def peek(self, key: str) -> bytes | None:
        return None  # nothing is held in the process: every read is I/O

    async def get(self, key: str) -> bytes | None:
        if not self.keys.may_hold(key):
            self.stats.skipped_reads += 1
            return None
        now = self._clock()

        def read(conn: sqlite3.Connection) -> tuple[bytes | None, bool]:
            row = conn.execute("SELECT value, expires_at FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None, False
            if row[1] <= now:
                self._delete(conn, [key])
                conn.commit()
                return None, True
            conn.execute("UPDATE entries SET used_at = ?, hits = hits + 1 WHERE key = ?", (now, key))
            conn.commit()
            return bytes(row[0]), False

        value, expired = await self._run(read)
        if expired:
            self.stats.evicted("expiry")
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        now = self._clock()
        size = len(key) + len(value) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            await self.delete([key])  # larger than the whole level: keep no older value under its key either
            return False

        def write(conn: sqlite3.Connection) -> int:
            self._delete(conn, [key])
            conn.execute("INSERT INTO entries (key, value, size, expires_at, used_at, hits) VALUES (?, ?, ?, ?, ?, 0)",
                         (key, value, size, now + ttl_seconds, now))
            self._entries += 1
            self._bytes += size
            evicted = self._evict(conn) if self._bytes > self.max_bytes else 0
            conn.commit()
            return evicted

        evicted = await self._run(write, adding=key)
        if evicted:
            self.stats.evicted("size", evicted)
        return True

    def _delete(self, conn: sqlite3.Connection, keys: Sequence[str]) -> int:
        removed = 0
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters is far above 500
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            sizes = conn.execute(f"DELETE FROM entries WHERE key IN ({marks}) RETURNING size", chunk).fetchall()
            removed += len(sizes)
            self._entries -= len(sizes)
            self._bytes -= sum(size for (size,) in sizes)
        return removed

    def _evict(self, conn: sqlite3.Connection) -> int:
        """Drop rows by the policy's order until the level is under its low-water mark."""
        target = int(self.max_bytes * LOW_WATER)
        evicted = 0
        while self._bytes > target and self._entries > 0:
            victims = conn.execute(f"SELECT key, size FROM entries ORDER BY {_ORDER[self.policy]} LIMIT 100").fetchall()
            if not victims:
                break
            chosen, freed = [], 0
            for key, size in victims:
                if self._bytes - freed <= target:
                    break
                chosen.append(key)
                freed += size
            evicted += self._delete(conn, chosen)
        return evicted

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0

        def remove(conn: sqlite3.Connection) -> int:
            removed = self._delete(conn, keys)
            conn.commit()
            return removed

        removed = await self._run(remove)
        self.keys.deleted += removed
        return removed

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        """Keys matching ``pattern`` (SQLite's ``GLOB``: ``*``, ``?`` and ``[...]`` as in a shell), a page at a
        time, so a large level is never read whole into memory."""
        after = ""
        while True:
            now = self._clock()

            def read(conn: sqlite3.Connection, after: str = after, now: float = now) -> list[str]:
                return [row[0] for row in conn.execute(
                    "SELECT key FROM entries WHERE key > ? AND key GLOB ? AND expires_at > ? ORDER BY key LIMIT ?",
                    (after, pattern, now, SCAN_PAGE))]

            page = await self._run(read)
            for key in page:
                yield key
            if len(page) < SCAN_PAGE:
                return
            after = page[-1]

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def usage(self) -> tuple[int, int]:
        await self._run(lambda conn: None)  # opened (and counted) at least once
        return self._entries, self._bytes

    async def report(self) -> LevelReport:
        entries, size = await self.usage()
        return LevelReport(entries=entries, bytes=size, bound=self.max_bytes,
                           extra={"policy": self.policy, "file_bytes": _file_bytes(self.path),
                                  "set_aside": [str(path) for path in self.database.set_aside],
                                  "key_filter": self.keys.state()})

    async def touch(self, hits: Mapping[str, int]) -> None:
        if not hits:
            return
        now = self._clock()
        rows = [(now, count, key) for key, count in hits.items()]

        def bump(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE entries SET used_at = ?, hits = hits + ? WHERE key = ?", rows)
            conn.commit()

        await self._run(bump)

    async def maintain(self) -> None:
        await self.purge()
        await self.keys.upkeep(self._run, self._entries)

    async def purge(self) -> int:
        """Delete expired rows, recount from the file (other processes write it too), evict if over."""
        now = self._clock()

        def upkeep(conn: sqlite3.Connection) -> tuple[int, int]:
            expired = len(conn.execute("DELETE FROM entries WHERE expires_at <= ? RETURNING key", (now,)).fetchall())
            self._recount(conn)
            evicted = self._evict(conn) if self._bytes > self.max_bytes else 0
            conn.commit()
            return expired, evicted

        expired, evicted = await self._run(upkeep)
        self.stats.evicted("expiry", expired)
        self.stats.evicted("size", evicted)
        return expired

    async def aclose(self) -> None:
        await self.keys.stop()
        await self.database.close()
        self._opened = False
        self._counted_for = None


def _file_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += path.with_name(path.name + suffix).stat().st_size
    return total
