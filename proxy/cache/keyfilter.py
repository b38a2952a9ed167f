"""What the disk level knows of its own keys without reading the file: a Bloom filter, and a watch on the file.

Every miss for a new prompt used to read the disk level (a hop to the database thread and an indexed SQLite
read, up to ~0.4 ms) to learn the key is not there. :class:`DiskKeys` answers "surely not there" for most of
them on the event loop. It is never wrong the other way (a key the file holds is always "maybe"):

- every key :meth:`~DiskKeys.adding` is in the filter before its write is sent to the database thread;
- the filter is built from the file's keys in the background (:meth:`~DiskKeys.build`), a page of rows at a
  time; until the first build is done (at start-up, and after a damaged file was set aside) it answers
  "maybe" for everything; keys written during a build are added to the new filter when it takes over;
- deleted keys stay in the filter (a stale "maybe" costs the read we made anyway); the level rebuilds it in
  its upkeep when the estimated false-positive rate of what was added since the build passes
  :data:`REBUILD_RATE`, or when more than half the keys it holds were deleted on request (an admin clear),
  sized for :data:`GROWTH` times the entries then held;
- other processes writing the same file (several ``cachegate`` on one ``DATA_DIR``): their keys are not in
  this filter, so "surely not" is only answered while the file is as this process last saw it. That is read
  from the WAL-index header, the first bytes of the ``-shm`` file every writer updates on each commit
  (https://www.sqlite.org/walformat.html), with one ``pread`` (~0.5 µs); after each statement of our own the
  database thread notes the header, and ``PRAGMA data_version`` (which only other connections' commits
  change) tells whether someone else wrote, which turns the filter off until a rebuild (once the other
  writer has been quiet for an upkeep).

Why ``rbloom`` (Rust, a set-like ``Bloom``) rather than a pure-Python bytearray filter with positions sliced
from the key's own SHA-256 (both measured with 1M cachegate keys, 1% rate, on this 2-core machine): a check
costs 0.11 µs against 0.7-1.8 µs (neither matters beside the 400 µs it saves), but building the filter for
1M keys takes 0.10 s against 3.0 s of held GIL, which a start-up or rebuild would take from the event loop.
It hashes with Python's own ``hash`` (cached on each ``str``; randomised per process, which is fine for a
filter that lives in memory only). Passing our own digest-slicing hash to it cost 0.8 µs a check.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from rbloom import Bloom

from proxy.errors import BackendError
from proxy.platform.tasks import cancel_and_wait

T = TypeVar("T")
logger = logging.getLogger("cachegate.exact")
Run = Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]

#: The false-positive rate a filter is sized for, and the estimated rate past which upkeep rebuilds it.
ERROR_RATE = 0.01
REBUILD_RATE = 0.02
#: A rebuilt filter holds this many times the entries the file had (room to grow before the next rebuild),
#: and never fewer than MIN_CAPACITY (~120 KB).
GROWTH = 2
MIN_CAPACITY = 100_000
#: Rows read per statement while building, so the level's reads and writes run between the pages.
BUILD_PAGE = 5_000
#: The two copies of the WAL-index header (48 bytes each) at the start of the ``-shm`` file.
HEADER_BYTES = 96


def false_positive_rate(added: int, bits: int, hashes: int) -> float:
    """The textbook estimate for a Bloom filter of ``bits`` bits and ``hashes`` hashes after ``added`` keys."""
    if added <= 0:
        return 0.0
    return float((1.0 - math.exp(-hashes * added / bits)) ** hashes)


class KeyFilter:
    """A Bloom filter of keys sized for ``capacity`` at :data:`ERROR_RATE`, counting what was added to it."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, MIN_CAPACITY)
        self._bloom = Bloom(self.capacity, ERROR_RATE)
        self.bits = self._bloom.size_in_bits
        self.hashes = max(1, round(self.bits / self.capacity * math.log(2)))  # the optimum for these bits
        self.added = 0

    def add(self, key: str) -> None:
        self._bloom.add(key)
        self.added += 1

    def update(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._bloom.update(keys)
        self.added += len(keys)

    def __contains__(self, key: str) -> bool:
        return key in self._bloom

    @property
    def false_positive_rate(self) -> float:
        return false_positive_rate(self.added, self.bits, self.hashes)


class WalWatch:
    """The WAL-index header of one database file: whether anyone committed since it was last noted."""

    def __init__(self, shm: Path) -> None:
        try:
            self._fd: int | None = os.open(shm, os.O_RDONLY)
        except OSError:
            self._fd = None  # no shared-memory file (not WAL): always "changed", so the filter never answers
        self.known: bytes | None = None

    def read(self) -> bytes | None:
        if self._fd is None:
            return None
        try:
            return os.pread(self._fd, HEADER_BYTES, 0)
        except OSError:
            return None

    def changed(self) -> bool:
        now = self.read()
        return now is None or now != self.known or len(now) < HEADER_BYTES

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class DiskKeys:
    """The disk level's key filter and its state (see the module docstring). The filter itself is touched on
    the event loop only; the database thread builds a new one aside and notes the file's header."""

    def __init__(self, path: Path) -> None:
        self._shm = path.with_name(path.name + "-shm")
        self.filter: KeyFilter | None = None  # None: not built for this file yet, so "maybe" for everything
        self.wants_build = False
        self.deleted = 0  # keys deleted on request since the build (they stay in the filter)
        self._watch: WalWatch | None = None
        self._pending: list[str] | None = None  # keys set while a build runs
        self._generation = 0  # a new file (first use, or a damaged one set aside) starts a new generation
        self._version: int | None = None  # PRAGMA data_version when last noted
        self._foreign = 0  # commits of other connections seen (only grows)
        self._clean = 0  # the value of _foreign the filter is complete for
        self._foreign_at_upkeep = 0
        self._swap = threading.Lock()  # a build putting its filter in place vs. a new file being opened
        self._task: asyncio.Task[Any] | None = None  # the build under way

    # -- the event loop -------------------------------------------------------------------------------

    def may_hold(self, key: str) -> bool:
        """False only when the file surely does not hold ``key``."""
        keys = self.filter
        if keys is None or self._foreign != self._clean or key in keys:
            return True
        watch = self._watch
        return watch is None or watch.changed()

    def adding(self, key: str) -> None:
        """Called before ``key`` is written. (Each read once: a new file's opening, on the database thread,
        may set them to None meanwhile.)"""
        keys, pending = self.filter, self._pending
        if keys is not None:
            keys.add(key)
        if pending is not None:
            pending.append(key)

    def needs_rebuild(self) -> bool:
        """Asked by the level's upkeep."""
        keys = self.filter
        if keys is None or self.wants_build:
            return True
        if self._foreign != self._clean:
            quiet = self._foreign == self._foreign_at_upkeep  # rebuild once the other writer has been quiet
            self._foreign_at_upkeep = self._foreign
            return quiet
        return keys.false_positive_rate > REBUILD_RATE or self.deleted * 2 > keys.added

    def state(self) -> dict[str, Any]:
        keys = self.filter
        if keys is None:
            return {"state": "building"}
        return {"state": "ready" if self._foreign == self._clean else "off: another process writes the file",
                "capacity": keys.capacity, "added": keys.added,
                "false_positive_rate": round(keys.false_positive_rate, 6)}

    def build_soon(self, run: Run[Any], entries: int) -> None:
        """After each statement: a new file was opened, so build its filter off the request path."""
        if self.wants_build and self._task is None:
            self._task = asyncio.create_task(self._build_logged(run, entries), name="disk-key-filter")

    async def upkeep(self, run: Run[Any], entries: int) -> None:
        """The level's upkeep: rebuild now when it is due (and no build runs)."""
        if self._task is None and self.needs_rebuild():
            self._task = asyncio.current_task()
            await self._build_logged(run, entries)

    async def _build_logged(self, run: Run[Any], entries: int) -> None:
        try:
            await self.build(run, entries)
        except BackendError as exc:  # tried again at the next upkeep; until then reads go to the file
            logger.warning("building the disk level's key filter failed: %s", exc.message)
        finally:
            self._task = None

    async def stop(self) -> None:
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await cancel_and_wait(task)
        self.close()

    async def build(self, run: Run[Any], entries: int) -> None:
        """Read every key of the file into a new filter, a page at a time, and put it in place."""
        generation, foreign = self._generation, self._foreign
        self.wants_build = False
        pending: list[str] = []
        self._pending = pending
        fresh = KeyFilter(GROWTH * entries)
        after = -(2**63)
        try:
            while True:
                def page(conn: sqlite3.Connection, after: int = after) -> tuple[int, int]:
                    rows = conn.execute("SELECT rowid, key FROM entries WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                        (after, BUILD_PAGE)).fetchall()
                    fresh.update(key for _, key in rows)
                    return (rows[-1][0] if rows else after), len(rows)

                after, count = await run(page)
                if generation != self._generation:
                    return  # the file was replaced under the build: its opening asked for another
                if count < BUILD_PAGE:
                    break
            with self._swap:
                if generation != self._generation:
                    return
                fresh.update(pending)
                self.filter, self._clean, self.deleted = fresh, foreign, 0
        except BaseException:
            if generation == self._generation:
                self.wants_build = True
            raise
        finally:
            if generation == self._generation:
                self._pending = None

    # -- the database thread --------------------------------------------------------------------------

    def opened(self, conn: sqlite3.Connection) -> None:
        """A file was opened (first use, or a fresh one after damage): nothing is known of its keys."""
        with self._swap:
            self.close()
            self._watch = WalWatch(self._shm)
            self.wants_build = True
            self.noted(conn)

    def noted(self, conn: sqlite3.Connection) -> None:
        """After each statement of ours: note the header (first: a commit after this read changes it), then
        whether another connection committed since the last note."""
        header = self._watch.read() if self._watch is not None else None
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._version is not None and version != self._version:
            self._foreign += 1
        self._version = version
        if self._watch is not None:
            self._watch.known = header

    def close(self) -> None:
        self.filter = None
        self._pending = None
        self._version = None
        self._generation += 1
        if self._watch is not None:
            self._watch.close()
            self._watch = None
