"""The savings ledger: all-time counters (requests, hits, tokens, dollars) that survive restarts.

Requests only add to an in-memory dict of deltas (O(1), no I/O). A background task flushes the deltas
every second, and on shutdown, to a :class:`LedgerStore`:

- :class:`RedisLedgerStore` (with ``REDIS_URL``): one hash, incremented atomically (``MULTI`` of
  ``HINCRBY``/``HINCRBYFLOAT`` over that one key, so one slot in a cluster), so every replica adds to the
  same totals;
- :class:`SqlLedgerStore` (without): a table of the monitoring database, in PostgreSQL with ``DATABASE_URL``
  (shared by the replicas: each adds in one ``INSERT ... ON CONFLICT`` transaction), else in the monitoring
  SQLite file under ``DATA_DIR``.

The totals a reader sees are the store's totals (re-read at most once a second when replicas share
them) plus this process's deltas that are not flushed yet. A failing flush keeps its deltas for the
next attempt, is logged and counted, and never reaches a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from proxy.platform.redis import RedisHome
from proxy.platform.sql import SqlDatabase, Statement

logger = logging.getLogger("cachegate.ledger")

Key = tuple[str, str]  # (scope, name): ("global", "requests"), ("model:gpt-4o", "tokens_saved"), ...
GLOBAL = "global"
LOG_EVERY = 30.0
#: model scopes the ledger keeps, over its whole life (the store keeps every scope ever written, so a bound per
#: process would grow with each restart); later models share ``model:other``
MAX_LEDGER_MODELS = 1000
MODEL_PREFIX = "model:"
OTHER_MODEL = MODEL_PREFIX + "other"


def is_integral(name: str) -> bool:
    """Token and request counts are whole numbers; dollar amounts end in ``_usd``."""
    return not name.endswith("_usd")


class LedgerStore(Protocol):
    name: str
    #: True when other processes add to the same totals, so they must be re-read to be current
    shared: bool

    async def load(self) -> dict[Key, float]: ...

    async def add(self, deltas: Mapping[Key, float]) -> None:
        """Add ``deltas`` atomically: all of them or none."""
        ...

    async def first_started(self, now: float) -> float:
        """When the ledger was first used (set to ``now`` if it never was)."""
        ...

    async def aclose(self) -> None: ...


class RedisLedgerStore:
    name = "redis"
    shared = True

    def __init__(self, home: RedisHome, *, prefix: str) -> None:
        self.home = home
        self.key = f"{prefix}stats:totals"
        self.meta_key = f"{prefix}stats:meta"

    @staticmethod
    def field(key: Key) -> str:
        return f"{key[0]}|{key[1]}"  # names never contain "|", so the last one splits it back

    async def load(self) -> dict[Key, float]:
        raw = await self.home.call(lambda client: client.hgetall(self.key), key=self.key)
        out: dict[Key, float] = {}
        for field, value in raw.items():
            scope, _, name = (field.decode() if isinstance(field, bytes) else field).rpartition("|")
            out[scope, name] = float(value)
        return out

    async def add(self, deltas: Mapping[Key, float]) -> None:
        async def write(client: Any) -> None:
            async with client.pipeline(transaction=True) as pipe:
                for key, amount in deltas.items():
                    if is_integral(key[1]):
                        pipe.hincrby(self.key, self.field(key), int(amount))
                    else:
                        pipe.hincrbyfloat(self.key, self.field(key), amount)
                await pipe.execute()

        await self.home.call(write, key=self.key)

    async def first_started(self, now: float) -> float:
        await self.home.call(lambda client: client.hsetnx(self.meta_key, "first_started_at", repr(now)),
                             key=self.meta_key)
        value = await self.home.call(lambda client: client.hget(self.meta_key, "first_started_at"), key=self.meta_key)
        return float(value) if value is not None else now

    async def aclose(self) -> None:
        return None  # the home is closed by the composition root


class SqlLedgerStore:
    """The ledger in the monitoring database: SQLite (this process) or PostgreSQL (shared by replicas)."""

    def __init__(self, db: SqlDatabase) -> None:
        self.db = db
        self.name = db.dialect.name
        self.shared = db.dialect.name != "sqlite"

    async def load(self) -> dict[Key, float]:
        rows = await self.db.fetch("SELECT scope, name, value FROM ledger")
        return {(scope, name): value for scope, name, value in rows}

    async def add(self, deltas: Mapping[Key, float]) -> None:
        # sorted: replicas adding to the same rows lock them in the same order, so they never deadlock
        rows = sorted((scope, name, float(amount)) for (scope, name), amount in deltas.items())
        await self.db.write([Statement("INSERT INTO ledger (scope, name, value) VALUES (?, ?, ?) "
                                       "ON CONFLICT (scope, name) DO UPDATE SET value = ledger.value + excluded.value",
                                       rows, many=True)])

    async def first_started(self, now: float) -> float:
        await self.db.write([Statement("INSERT INTO meta (key, value) VALUES ('first_started_at', ?) "
                                       "ON CONFLICT (key) DO NOTHING", (repr(now),))])
        rows = await self.db.fetch("SELECT value FROM meta WHERE key = 'first_started_at'")
        return float(rows[0][0])

    async def aclose(self) -> None:
        return None  # the database is closed by its owner


class Ledger:
    def __init__(self, store: LedgerStore, *, refresh_every: float = 1.0,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self.store = store
        self.refresh_every = refresh_every
        self.first_started_at: float | None = None
        self._on_error = on_error
        self._pending: dict[Key, float] = {}
        # deltas being written: still counted by totals() until the write lands in the snapshot
        self._inflight: dict[Key, float] = {}
        self._snapshot: dict[Key, float] = {}
        self._loaded = False
        self._read_at = 0.0
        self._lock = asyncio.Lock()
        self._last_logged = 0.0
        self.stale = False
        self._models: set[str] = set()  # model scopes in the store or written since

    # -- the hot path ---------------------------------------------------------------------------

    def add(self, scope: str, name: str, amount: float = 1) -> None:
        key = (scope, name)
        self._pending[key] = self._pending.get(key, 0) + amount
        if scope.startswith(MODEL_PREFIX):
            self._models.add(scope)

    def model_scope(self, model: str) -> str:
        """``model:<model>``, or ``model:other`` once :data:`MAX_LEDGER_MODELS` others are kept."""
        scope = MODEL_PREFIX + model
        if scope in self._models or len(self._models) < MAX_LEDGER_MODELS:
            return scope
        return OTHER_MODEL

    # -- background -----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self.first_started_at = await self.store.first_started(time.time())
        except Exception as exc:
            self._failed("read", exc)
        await self.refresh(force=True)

    async def flush(self) -> bool:
        """Write the pending deltas; on failure they stay pending. True when nothing is left to write."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> bool:
        if not self._pending:
            return True
        deltas, self._pending = self._pending, {}
        self._inflight = deltas
        try:
            await self.store.add(deltas)
        except Exception as exc:
            for key, amount in deltas.items():  # keep them for the next attempt
                self._pending[key] = self._pending.get(key, 0) + amount
            self._failed("write", exc)
            return False
        finally:
            self._inflight = {}
        for key, amount in deltas.items():
            self._snapshot[key] = self._snapshot.get(key, 0) + amount
        return True

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the store's totals if another process may have changed them (at most once a second)."""
        if self._loaded and not self.store.shared:
            return
        if not force and self._loaded and time.monotonic() - self._read_at < self.refresh_every:
            return
        async with self._lock:
            if self.first_started_at is None:
                try:
                    self.first_started_at = await self.store.first_started(time.time())
                except Exception as exc:
                    self._failed("read", exc)
            await self._flush()  # so what is re-read includes ours and is not counted twice
            try:
                self._snapshot = await self.store.load()
            except Exception as exc:
                self.stale = True
                self._failed("read", exc)
                return
            self._loaded, self.stale, self._read_at = True, False, time.monotonic()
            self._models.update(scope for scope, _ in self._snapshot if scope.startswith(MODEL_PREFIX))

    def _failed(self, what: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(f"ledger_{self.store.name}", exc)
        now = time.monotonic()
        if now - self._last_logged >= LOG_EVERY:
            self._last_logged = now
            logger.warning("savings ledger: %s on %s failed, will retry: %s: %s", what, self.store.name,
                           type(exc).__name__, exc)

    # -- reading --------------------------------------------------------------------------------

    def totals(self) -> dict[Key, float]:
        """Store totals plus this process's unflushed deltas."""
        out = dict(self._snapshot)
        for deltas in (self._inflight, self._pending):
            for key, amount in deltas.items():
                out[key] = out.get(key, 0) + amount
        return out

    @property
    def pending(self) -> int:
        return len(self._pending)
