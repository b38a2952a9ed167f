"""The contract of the probe's history: what the monitor writes and the API reads.

:class:`~proxy.probe.sql_store.SqlProbeStore` implements it once for both engines: ``DATA_DIR/probe.sqlite3``,
or PostgreSQL at ``DATABASE_URL`` for replicas that share no disk (the registry chooses). Times are Unix
seconds of the probe's clock; every ``since`` is inclusive and every ``until`` exclusive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.probe.records import CycleRow, ResultRow, VerdictRow


@dataclass(frozen=True)
class Spend:
    """What the probe's requests in a time range spent (estimates for answers without usage included)."""

    requests: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    estimated_tokens: int = 0  # of ``tokens``, the estimates


@dataclass(frozen=True)
class Balance:
    """The last balances the upstream reported (Venice: ``x-venice-balance-usd`` / ``-diem``)."""

    usd: float | None
    diem: float | None
    at: float


@dataclass(frozen=True)
class ResultFilter:
    model: str | None = None
    test: str | None = None
    source: str | None = None
    since: float | None = None
    until: float | None = None


class ProbeStore(Protocol):
    name: str

    async def open(self) -> None:
        """Apply the schema's migrations and get ready; raises when the store cannot be used."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raises when the store does not answer (``/health``)."""
        ...

    async def purge(self, before: float) -> int:
        """Delete results, verdicts and finished cycles older than ``before``; how many rows went."""
        ...

    async def add_run(self, results: Sequence[ResultRow], verdict: VerdictRow | None) -> None:
        """A run's requests and (for a full run) its verdict, together."""
        ...

    async def save_cycle(self, cycle: CycleRow) -> None:
        """Insert the cycle, or update it (same id)."""
        ...

    async def cycles(self, limit: int = 1) -> list[CycleRow]:
        """The latest cycles, newest first."""
        ...

    async def interrupt_cycles(self, *, replica: str, at: float) -> int:
        """Mark the cycles still ``running`` that ``replica`` did not start as ``interrupted`` (their leader
        died); how many."""
        ...

    async def latest_verdicts(self) -> list[VerdictRow]:
        """Each model's latest verdict, by model."""
        ...

    async def verdicts(self, *, model: str | None = None, since: float | None = None, until: float | None = None,
                       limit: int | None = None) -> list[VerdictRow]:
        """Verdicts, newest first."""
        ...

    async def recent_verdicts(self, per_model: int) -> dict[str, list[VerdictRow]]:
        """Each model's last ``per_model`` verdicts, oldest first."""
        ...

    async def streaks(self) -> dict[str, float]:
        """Per model, since when its latest verdict has held (the first of its unbroken run of equal verdicts)."""
        ...

    async def last_successes(self) -> dict[str, float]:
        """Per model, when its last run without an error ended."""
        ...

    async def verdict_series(self, *, since: float, until: float | None, width: int,
                             model: str | None = None) -> list[dict[str, Any]]:
        """Verdicts per ``width``-second bucket and model: ``bucket`` (start), ``model``, ``runs``, ``caching``,
        ``cache_rate`` and ``hit_ratio`` (means over the runs that have one), oldest first."""
        ...

    async def results(self, where: ResultFilter, *, limit: int) -> list[ResultRow]:
        """Probe requests, newest first."""
        ...

    def export(self, where: ResultFilter) -> AsyncIterator[ResultRow]:
        """Every matching probe request, oldest first, read a page at a time."""
        ...

    async def spend(self, since: float, until: float | None = None) -> Spend: ...

    async def usage_by_day(self, *, since: float, until: float | None) -> list[dict[str, Any]]:
        """Per UTC day (``day`` as Unix seconds of its midnight): ``requests``, ``prompt_tokens``,
        ``cached_tokens``, ``completion_tokens``, ``estimated_tokens`` (charged for answers without usage),
        ``cost_usd``, ``saved_usd``."""
        ...

    async def model_stats(self, since: float) -> dict[str, dict[str, Any]]:
        """Per model over its requests since ``since``: ``requests``, ``errors``, ``repeats`` (answered
        with a cache field), ``hits``, ``prompt_tokens``, ``cached_tokens``, ``avg_latency``, ``avg_ttft``,
        ``saved_usd``, ``cost_usd``, ``last_success`` (the last answered request)."""
        ...

    async def latest_balance(self) -> Balance | None: ...

    async def ttl_states(self) -> dict[str, dict[str, Any]]: ...

    async def save_ttl_state(self, model: str, state: dict[str, Any], at: float) -> None: ...
