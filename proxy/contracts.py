"""The contracts between cachegate's core and its parts.

Each is a small ``Protocol``; backends implement it and are chosen in one factory. Backends move bytes
and vectors: namespacing, serialising, TTL choice, metrics and fail-open handling live in the wrappers
(:mod:`proxy.cache.exact`, :mod:`proxy.semantic.tier`) so every backend behaves the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from proxy.cache.stats import LevelReport, LevelStats


@runtime_checkable
class ExactBackend(Protocol):
    """A key-value store with per-key expiry: one *level* of the exact tier (memory, disk, Redis). Raises
    :class:`proxy.errors.BackendError` on failure."""

    name: str
    remote: bool  # a server to check in /health (else it runs in-process)
    stats: LevelStats  # this level's counters: the backend counts its evictions, the exact tier the rest

    async def get(self, key: str) -> bytes | None: ...

    def peek(self, key: str) -> bytes | None:
        """The value if this level holds it in the process, read without I/O (as ``get`` reads it, the LRU
        order and the level's own expiry included); ``None`` otherwise, and always for a level on a server or
        a disk. It answers exact hits before the request reaches ASGI (:mod:`proxy.chat.memory_hits`)."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> bool:
        """Store ``value``; whether the level kept it (the exact tier counts only what was kept as a set)."""
        ...

    async def delete(self, keys: Sequence[str]) -> int: ...

    def scan(self, pattern: str) -> AsyncIterator[str]:
        """Keys matching a glob ``pattern`` (``*`` only), without blocking the store."""
        ...

    async def ping(self) -> None: ...

    async def usage(self) -> tuple[int, int]:
        """(entries, bytes) held, as far as the backend can tell cheaply."""
        ...

    async def report(self) -> LevelReport:
        """Entries, bytes and bound now (``None`` where the backend cannot tell cheaply)."""
        ...

    async def touch(self, hits: Mapping[str, int]) -> None:
        """Hits a level above this one served for these keys, so this level's LRU/LFU sees them too."""
        ...

    async def maintain(self) -> None:
        """Periodic upkeep (sweep expired entries, recount); a no-op where the store does it itself."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class SemanticRecord:
    """One stored request in the semantic tier."""

    id: str
    vector: Sequence[float]
    scope: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    expires_at: float = 0.0


@dataclass(frozen=True)
class SemanticMatch:
    id: str
    score: float
    payload: Mapping[str, Any]


class SemanticBackend(Protocol):
    """A vector store searched by cosine similarity within one scope."""

    name: str
    remote: bool  # a server to check in /health (else it runs in-process)

    @property
    def location(self) -> str:
        """Where it keeps its vectors, for /health and /admin/stats."""
        ...

    async def ensure_ready(self, dim: int) -> None:
        """Create the collection if missing; 'already exists' is fine."""
        ...

    async def search(self, vector: Sequence[float], scope: str, *, limit: int, now: float) -> list[SemanticMatch]:
        """Best matches in ``scope`` that have not expired at ``now``, best first."""
        ...

    async def upsert(self, record: SemanticRecord) -> None: ...

    async def delete(self, ids: Sequence[str]) -> int: ...

    async def delete_where(self, *, model: str | None = None, namespace: str | None = None,
                           expired_before: float | None = None) -> int: ...

    async def count(self) -> int: ...

    async def add_block(self, key: str) -> None:
        """Remember a pair that must never match again (semantic feedback), durably."""
        ...

    async def load_blocks(self) -> set[str]: ...

    async def maintain(self) -> None:
        """Periodic upkeep (index what was written, flush); a no-op where the store does it itself."""
        ...

    @property
    def needs_upkeep(self) -> bool:
        """Writes are waiting that :meth:`maintain` should handle now rather than at the next upkeep."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class Embedder(Protocol):
    """Turns texts into unit-normalised vectors. Failures raise
    :class:`embedding_service.errors.EmbeddingError`; the semantic tier fails open on them."""

    name: str
    dim: int
    remote: bool  # a service to check in /health (else the model runs in-process)

    @property
    def location(self) -> str:
        """The service's URL, or the model that runs in-process."""
        ...

    async def start(self) -> None:
        """Get ready (load an in-process model); nothing to do for a remote service."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text`` (to skip prompts longer than its window)."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class ByteStream(Protocol):
    """Chunks of a body, and a close that releases what produced them (even if never iterated)."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass
class UpstreamResponse:
    """An upstream answer whose body is read by iterating :attr:`body` (and closed by :meth:`aclose`)."""

    status_code: int
    headers: list[tuple[str, str]]
    body: ByteStream
    _close: Any = None

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()

    async def read(self) -> bytes:
        try:
            return b"".join([chunk async for chunk in self.body])
        finally:
            await self.aclose()


class Upstream(Protocol):
    """An OpenAI-compatible API. Raises UpstreamUnreachableError / UpstreamTimeoutError."""

    base_url: str

    async def send(self, method: str, path: str, *, headers: Sequence[tuple[str, str]],
                   content: bytes | AsyncIterator[bytes] | None,
                   params: str = "") -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)  # one per request: slots make it cheaper to build and to read
class RequestRecord:
    """What happened to one proxied request; handed to the :class:`Observer` when it is done."""

    request_id: str
    route: str
    method: str
    started_at: float
    status: int = 0
    model: str | None = None
    outcome: str = "none"  # exact_hit | semantic_hit | miss | bypass | error | none (not a chat request)
    tier: str | None = None
    stream: bool = False
    duration: float = 0.0
    ttft: float | None = None
    upstream_seconds: float | None = None
    usage: Mapping[str, Any] | None = None  # the answer's usage: what it cost (miss) or saved (hit)
    tokens: tuple[int, int, int] | None = None  # (prompt, completion, cached) of usage, when already known
    similarity: float | None = None
    api_key_hash: str | None = None
    stream_failed: bool = False
    shadow_hit: bool = False


class Observer(Protocol):
    """Receives what happens, for metrics, ledgers and logs. Must never raise or block."""

    def cache_lookup(self, tier: str, outcome: str, seconds: float) -> None: ...

    def response_started(self, record: RequestRecord) -> None:
        """A response's first message is being sent (streams become active)."""
        ...

    def backend_error(self, component: str, error: BaseException) -> None: ...

    def request_done(self, record: RequestRecord) -> None: ...


class NullObserver:
    def cache_lookup(self, tier: str, outcome: str, seconds: float) -> None:
        pass

    def response_started(self, record: RequestRecord) -> None:
        pass

    def backend_error(self, component: str, error: BaseException) -> None:
        pass

    def request_done(self, record: RequestRecord) -> None:
        pass


@dataclass
class SemanticProbe:
    """The result of a semantic lookup: a hit's entry (if any) and what is needed to store the answer
    later without embedding the prompt twice."""

    entry: Any = None  # CachedResponse on a hit that may be served
    similarity: float | None = None
    point_id: str | None = None
    shadow_hit: bool = False
    vector: Sequence[float] | None = None
    scope: str | None = None
    text: str | None = None


class SemanticTier(Protocol):
    """The semantic tier as the chat handler sees it; failures are handled inside (fail open)."""

    async def lookup(self, body: Mapping[str, Any], *, scope: str, namespace: str, request_id: str,
                     tenant: str | None = None) -> SemanticProbe | None:
        """``tenant``: the owner of the request's credentials (``ChatRequest.tenant.owner``), so that feedback
        on ``request_id`` is scoped to it."""
        ...

    def remember(self, probe: SemanticProbe, entry: Any, *, namespace: str) -> None:
        """Store ``entry`` for the probed prompt, in the background."""
        ...


class SemanticAdmin(Protocol):
    """The semantic tier as the operator's routes see it."""

    async def clear(self, model: str | None = None, namespace: str | None = None) -> int: ...

    async def delete(self, point_id: str) -> int: ...

    async def count(self) -> int: ...
