"""The last requests the proxy answered, for the dashboard: no prompts, answers or keys, only what
happened (model, cache outcome, status, latency, tokens)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from proxy.contracts import RequestRecord


def _tokens(usage: Mapping[str, Any] | None) -> int | None:
    if not isinstance(usage, Mapping):
        return None
    total = usage.get("total_tokens")
    return total if isinstance(total, int) else None


class RecentRequests:
    """Keeps the last ``size`` records of ``/v1/*`` requests; they are turned into rows only when read."""

    def __init__(self, size: int = 50) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)

    def note(self, record: RequestRecord) -> None:
        """Called by the request middleware once a request is answered (or given up)."""
        if record.route.startswith("/v1/"):
            self._records.appendleft(record)

    def snapshot(self, limit: int | None = None) -> list[dict[str, Any]]:
        records = list(self._records)
        return [_row(record) for record in (records if limit is None else records[:limit])]


def _row(record: RequestRecord) -> dict[str, Any]:
    return {
        "time": record.started_at + record.duration,
        "request_id": record.request_id,
        "method": record.method,
        "path": record.route,
        "model": record.model,
        "outcome": record.outcome,
        "tier": record.tier,
        "stream": bool(record.stream),
        "status": record.status,
        "duration_ms": round(record.duration * 1000, 2),
        "tokens": _tokens(record.usage),
        "similarity": record.similarity,
    }
