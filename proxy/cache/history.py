"""What was asked, kept beside the exact tier for warming (``CACHE_KEEP_REQUESTS=true``): the request of
each stored entry, how often the entry was hit, and when it expires, in ``DATA_DIR/cache-history.sqlite3``.

``POST /admin/cache/warm`` with ``{"from": "popular", "top": N}`` asks :meth:`RequestHistory.popular` for the
N most-hit entries that expired within :data:`RECENT` seconds and re-asks them (:mod:`proxy.admin.warm`).

The privacy cost, which is why it is off by default: with it on, the prompt of every stored answer (the
request body as the client sent it, and its ``x-cache-namespace`` and routing headers) is written to disk in
plain text and kept until a day after its answer expired, beside the tenant hash it belongs to. API keys and
credential headers are never stored, so warming can re-ask a tenant's request only with that tenant's key
(``X-Warm-Api-Key``) or with ``UPSTREAM_API_KEY``. Per process: replicas each keep their own.

Nothing here is on the request path: :meth:`stored` queues a row, :meth:`hit` bumps a counter in memory;
the ``cache-history`` job writes both every :data:`FLUSH_EVERY` seconds and drops rows past retention.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from proxy.component import Contribution, Job
from proxy.core.request import ChatRequest
from proxy.platform.sqlite import Database, Migration

logger = logging.getLogger("cachegate.history")

FILENAME = "cache-history.sqlite3"
RECENT = 86_400.0  # how long after its answer expired a request is kept, and may be warmed again
FLUSH_EVERY = 5.0
MAX_PENDING = 10_000  # rows waiting for the next flush at most (past it, the oldest are not kept)

MIGRATIONS = (
    Migration(1, "requests of stored exact-tier entries, and their hits", (
        "CREATE TABLE history (key TEXT PRIMARY KEY, owner TEXT NOT NULL, model TEXT NOT NULL, "
        "body BLOB NOT NULL, headers TEXT NOT NULL, query TEXT NOT NULL, stored_at REAL NOT NULL, "
        "expires_at REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0)",
        "CREATE INDEX history_expiry ON history (expires_at)",
    )),
)


@dataclass(frozen=True)
class Asked:
    """One stored entry's request, as it can be asked again."""

    key: str
    owner: str  # the tenant hash the entry belongs to (never the key itself)
    model: str
    body: bytes
    headers: tuple[tuple[str, str], ...]  # the non-credential headers that shaped the key
    query: str
    expires_at: float
    hits: int = 0


class RequestHistory:
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.database = Database(path, MIGRATIONS, disposable=True)
        self._clock = clock
        self._stored: dict[str, Asked] = {}
        self._hits: dict[str, int] = {}

    # -- recording (on the event loop, no I/O) ----------------------------------------------------------

    def stored(self, asked: Asked) -> None:
        if len(self._stored) >= MAX_PENDING:
            self._stored.pop(next(iter(self._stored)))
        self._stored[asked.key] = asked

    def hit(self, key: str) -> None:
        if key in self._hits:
            self._hits[key] += 1
        elif len(self._hits) < MAX_PENDING:
            self._hits[key] = 1

    # -- writing and reading (on the database thread) ---------------------------------------------------

    async def flush(self) -> None:
        stored, self._stored = list(self._stored.values()), {}
        hits, self._hits = list(self._hits.items()), {}
        if not stored and not hits:
            return
        now = self._clock()

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO history (key, owner, model, body, headers, query, stored_at, expires_at, hits) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, "
                "model = excluded.model, body = excluded.body, headers = excluded.headers, query = excluded.query, "
                "stored_at = excluded.stored_at, expires_at = excluded.expires_at",
                [(a.key, a.owner, a.model, a.body, orjson.dumps(a.headers).decode(), a.query, now, a.expires_at)
                 for a in stored])
            conn.executemany("UPDATE history SET hits = hits + ? WHERE key = ?", [(n, k) for k, n in hits])
            conn.commit()

        await self.database.run(write)

    async def popular(self, top: int, *, within: float = RECENT) -> list[Asked]:
        """The ``top`` most-hit entries that expired within ``within`` seconds (most hits first)."""
        await self.flush()
        now = self._clock()

        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT key, owner, model, body, headers, query, expires_at, hits FROM history "
                "WHERE expires_at <= ? AND expires_at > ? ORDER BY hits DESC, expires_at DESC LIMIT ?",
                (now, now - within, top)).fetchall()

        return [Asked(key, owner, model, bytes(body), tuple((str(n), str(v)) for n, v in orjson.loads(headers)), query,
                      expires_at, hits)
                for key, owner, model, body, headers, query, expires_at, hits in await self.database.run(read)]

    async def purge(self) -> int:
        cutoff = self._clock() - RECENT

        def delete(conn: sqlite3.Connection) -> int:
            count = conn.execute("DELETE FROM history WHERE expires_at <= ?", (cutoff,)).rowcount
            conn.commit()
            return int(count)

        return await self.database.run(delete)

    async def _upkeep(self) -> None:
        await self.flush()

    # -- the component ----------------------------------------------------------------------------------

    def contribution(self) -> Contribution:
        return Contribution(jobs=[Job("cache-history", FLUSH_EVERY, self._upkeep),
                                  Job("cache-history-retention", 3600.0, self.purge, at_start=True)])

    async def start(self) -> None:
        try:
            await self.database.open()
        except Exception as exc:  # warming from history is a convenience: never a reason not to start
            logger.error("request history %s unavailable: %s", self.database.path, exc)

    async def stop(self) -> None:
        try:
            await self.flush()
        except Exception as exc:
            logger.warning("request history not flushed: %s", exc)
        await self.database.close()



def asked_of(request: ChatRequest, expires_at: float) -> Asked:
    """What to keep of a :class:`~proxy.core.request.ChatRequest` to ask it again: its body, query, routing
    headers and namespace (never its credentials; the TTL of a warmed entry is the warm call's)."""
    headers = [*request.routing]
    if request.tenant.namespace:
        headers.append(("x-cache-namespace", request.tenant.namespace))
    return Asked(request.key, request.tenant.owner, request.model, request.raw, tuple(headers), request.query,
                 expires_at)
