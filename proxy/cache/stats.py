"""What every cache level counts (memory, disk, Redis, semantic), in one shape.

A level's *counters* (:class:`LevelStats`) are plain integers bumped on the event loop by whoever sees the
event: the exact tier counts hits, misses, sets, deletes, expired reads and the bytes before and after
compression (a *set* is an entry the level kept, written or promoted into it: a write the level declined, as
the tracked copy of Redis declines them all, is none); a backend counts its own evictions (it is the one that
evicts), by reason:

- ``size``: dropped to stay within the level's bound (LRU or LFU);
- ``expiry``: dropped because its life (TTL, plus the time entries are kept past it) ended.

The disk level also counts the reads its key filter spared (``skipped_reads``: misses it answered without
reading the file; they are among the misses the exact tier counts).

A level's *gauges* (:class:`LevelReport`: entries, bytes, bound) are read from the backend when asked. Both
go to ``/admin/stats``, ``/metrics`` and Prometheus (``cachegate_cache_*{tier=<level>}``). Nothing here does
I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REASONS = ("size", "expiry")


class LevelStats:
    """Counters of one level since this process started (Prometheus sums replicas and handles restarts)."""

    __slots__ = ("deletes", "evictions", "expired_reads", "hits", "misses", "raw_bytes", "sets", "skipped_reads",
                 "stored_bytes")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self.deletes = 0
        self.expired_reads = 0  # found, but past its TTL: served as a miss (or as stale, when asked)
        self.skipped_reads = 0  # misses the level answered without reading its store (the disk's key filter)
        self.evictions: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.raw_bytes = 0  # answer bytes written, before compression
        self.stored_bytes = 0  # the same answers' bodies as stored (compressed where that paid; no envelope)

    def stored(self, raw: int, stored: int) -> None:
        self.sets += 1
        self.raw_bytes += raw
        self.stored_bytes += stored

    def evicted(self, reason: str, count: int = 1) -> None:
        self.evictions[reason] = self.evictions.get(reason, 0) + count

    @property
    def compression_ratio(self) -> float | None:
        """Bytes before compression per byte stored, over what this process wrote (``None``: nothing yet)."""
        return round(self.raw_bytes / self.stored_bytes, 3) if self.stored_bytes else None

    def snapshot(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses,
                "hit_rate": round(self.hits / lookups, 4) if lookups else None,
                "sets": self.sets, "deletes": self.deletes, "expired_reads": self.expired_reads,
                "skipped_reads": self.skipped_reads,
                "evictions": dict(self.evictions), "compression_ratio": self.compression_ratio}


@dataclass
class LevelReport:
    """A level's gauges as its backend sees them now. ``None``: the backend cannot say (cheaply)."""

    entries: int | None
    bytes: int | None
    bound: int | None  # the level's bound in bytes (``None``: unbounded or unknown)
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fill(self) -> float | None:
        """``bytes / bound``: what the store-above-90% alert watches."""
        if self.bytes is None or not self.bound:
            return None
        return self.bytes / self.bound


@dataclass
class Level:
    """One level's name, gauges and counters, as ``/admin/stats`` and the metrics show it."""

    name: str
    report: LevelReport
    stats: LevelStats

    def snapshot(self) -> dict[str, Any]:
        report = self.report
        out: dict[str, Any] = {"entries": report.entries, "bytes": report.bytes, "bound": report.bound,
                               "fill": None if report.fill is None else round(report.fill, 6), **self.stats.snapshot()}
        if report.note:
            out["note"] = report.note
        out.update(report.extra)
        return out
