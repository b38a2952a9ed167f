"""The semantic tier: one wrapper around any :class:`SemanticBackend` and any :class:`Embedder`.

After an exact miss the chat handler calls :meth:`SemanticCache.lookup`: the last user turn is embedded
(once: the vector rides on the probe and is reused to store the answer), the store is searched within the
request's scope (same model, parameters, system prompt, earlier turns and tenant — see
:func:`proxy.core.canonical.semantic_scope`) for entries that have not expired, and the best candidate
above the threshold that every guard (:mod:`proxy.semantic.guards`) accepts and no feedback blocked is
served. In shadow mode that candidate is only counted and logged. After a miss the answer is stored by
:meth:`remember` in the background: the client never waits for an upsert.

Every dependency failure (embedding slow or down, store down) is reported to :class:`FailOpen` and the
request goes on to the upstream as if the tier were not there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from proxy.cache.entry import CachedResponse, EntryFormatError
from proxy.contracts import Embedder, Observer, SemanticBackend, SemanticMatch, SemanticProbe, SemanticRecord
from proxy.core.canonical import last_user_text, namespace_id
from proxy.errors import BackendError, BadRequestError, NotFoundError
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import BackgroundTasks
from proxy.semantic import guards

if TYPE_CHECKING:
    from proxy.app import Services

logger = logging.getLogger("cachegate.semantic")

EMBEDDING = "embedding"
STORE = "qdrant"
MODES = ("serve", "shadow")
#: Characters above which a prompt is certainly longer than the model's window (no token is longer than
#: this many characters on average), so it is skipped without tokenising it.
MAX_CHARS_PER_TOKEN = 24


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def point_id(scope: str, text: str) -> str:
    """One point per (scope, prompt): asking the same prompt again overwrites instead of duplicating."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cachegate:{scope}:{text_hash(text)}"))


def block_key(scope: str, first: str, second: str) -> str:
    """The key of a pair of prompt hashes that must never match again in ``scope`` (order-free)."""
    low, high = sorted((first, second))
    return hashlib.sha256(f"{scope}:{low}:{high}".encode()).hexdigest()[:40]


def semantic_text(body: Mapping[str, Any]) -> str | None:
    """The text the tier embeds — the last user turn — or ``None`` when the request must skip the tier:
    the conversation carries tool calls or tool results, the last turn is not the user's, or the user's
    turn holds anything but text (images, audio, files)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    for message in messages:
        if not isinstance(message, dict):
            return None
        if message.get("role") in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            return None
    if messages[-1].get("role") != "user":
        return None
    text = last_user_text(body)
    if text is None or not text.strip():
        return None
    return text


@dataclass
class _Served:
    """What answered a semantic hit, kept so feedback on that request can evict and block it."""

    point_id: str
    scope: str
    asked_hash: str
    stored_hash: str


class SemanticCache:
    """The semantic tier, as the chat handler, the operator surface and ``create_app`` see it."""

    def __init__(self, *, backend: SemanticBackend, embedder: Embedder, observer: Observer, failopen: FailOpen,
                 tasks: BackgroundTasks, mode: str = "serve", threshold: float = 0.9,
                 embedding_timeout: float = 0.5, max_tokens: int = 256, candidates: int = 5,
                 maintenance_interval: float = 60.0, served_memory: int = 10_000, vector_cache: int = 4096,
                 substitution_similarity: float = guards.SUBSTITUTION_SIMILARITY,
                 clock: Callable[[], float] = time.time) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.backend = backend
        self.embedder = embedder
        self.mode = mode
        self.threshold = threshold
        self.embedding_timeout = embedding_timeout
        self.max_tokens = max_tokens
        self.candidates = candidates
        self.maintenance_interval = maintenance_interval
        self.substitution_similarity = substitution_similarity
        self._observer = observer
        self._failopen = failopen
        self._tasks = tasks
        self._clock = clock
        self._ready = False
        self._embedder_started = False
        self._blocks: set[str] = set()
        self._served: OrderedDict[str, _Served] = OrderedDict()
        self._served_memory = served_memory
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()
        self._vector_cache = vector_cache
        self._pending: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        #: Counters for tests, the evaluation and the operator: lookups, hits, shadow_hits, misses,
        #: skipped, errors, stored, store_errors, expired_removed and refused_<guard>.
        self.stats: dict[str, int] = {}

    @property
    def ready(self) -> bool:
        return self._ready

    # -- the component --------------------------------------------------------------------------------

    def routes(self, services: Services) -> list[BaseRoute]:
        return [Route("/admin/cache/feedback", self.feedback_endpoint, methods=["POST"])]

    def middleware(self, services: Services) -> list[Middleware]:
        return []

    async def start(self, services: Services | None = None) -> None:
        if services is not None:
            self._register_health(services)
        await self._open()
        self._maintenance = asyncio.get_running_loop().create_task(self._maintain_forever(),
                                                                   name="semantic-maintenance")

    async def _open(self) -> bool:
        """Load the in-process model (if that is the embedder) and open the store. A failure leaves the tier
        off — the proxy serves without it — and upkeep tries again."""
        if not self._embedder_started:
            start = getattr(self.embedder, "start", None)
            if start is not None:  # the in-process embedder loads its model (seconds, on a worker thread)
                try:
                    await start()
                except Exception as exc:
                    self._failopen.failed(EMBEDDING, BackendError(EMBEDDING, f"the model failed to load: {exc!r}"))
                    return False
                with contextlib.suppress(Exception):
                    await self.embedder.embed(["warm up"])  # the first call pays one-off allocations
            self._embedder_started = True
        return await self._open_store()

    def _register_health(self, services: Services) -> None:
        if getattr(self.embedder, "base_url", None) is not None:
            services.health_checks[EMBEDDING] = self.embedder.ping
        else:
            services.embedded[EMBEDDING] = f"in-process {getattr(self.embedder, 'model', self.embedder.name)}"
        if self.backend.name == "qdrant":
            services.health_checks[STORE] = self.backend.ping
        else:
            services.embedded[STORE] = f"{self.backend.name} at {getattr(self.backend, 'location', '?')}"

    async def _open_store(self) -> bool:
        try:
            await self.backend.ensure_ready(self.embedder.dim)
            self._blocks = await self.backend.load_blocks()
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            return False
        self._ready = True
        self._failopen.succeeded(STORE)
        return True

    async def stop(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._maintenance
            self._maintenance = None
        await self.flush(timeout=5.0)
        for close in (self.embedder.aclose, self.backend.aclose):
            with contextlib.suppress(Exception):
                await close()
        self._ready = False

    # -- lookup -------------------------------------------------------------------------------------

    async def lookup(self, body: Mapping[str, Any], *, scope: str, namespace: str,
                     request_id: str) -> SemanticProbe | None:
        if not self._ready:
            return None
        text = semantic_text(body)
        if text is None or not self._fits_window(text):
            self._count("skipped")
            return None
        started = time.perf_counter()
        self._count("lookups")
        vector = await self._embed(text)
        if vector is None:
            self._observer.cache_lookup("semantic", "error", time.perf_counter() - started)
            return None
        probe = SemanticProbe(vector=vector, scope=scope, text=text)
        now = self._clock()
        try:
            matches = await self.backend.search(vector, scope, limit=self.candidates, now=now)
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            self._count("errors")
            self._observer.cache_lookup("semantic", "error", time.perf_counter() - started)
            return probe
        self._failopen.succeeded(STORE)
        chosen = self._choose(matches, text, now)
        if chosen is None:
            self._count("misses")
            self._observer.cache_lookup("semantic", "miss", time.perf_counter() - started)
            return probe
        match, entry = chosen
        probe.similarity, probe.point_id = match.score, match.id
        if self.mode == "shadow":
            probe.shadow_hit = True
            self._count("shadow_hits")
            logger.info("shadow hit (similarity %.4f, request %s): %r would be answered with the answer to %r",
                        match.score, request_id, _clip(text), _clip(str(match.payload.get("text", ""))))
            self._observer.cache_lookup("semantic", "shadow_hit", time.perf_counter() - started)
            return probe
        probe.entry = entry
        self._count("hits")
        self._remember_served(request_id, _Served(match.id, scope, text_hash(text),
                                                  str(match.payload.get("text_hash", ""))))
        self._observer.cache_lookup("semantic", "hit", time.perf_counter() - started)
        return probe

    def _fits_window(self, text: str) -> bool:
        if len(text) > self.max_tokens * MAX_CHARS_PER_TOKEN:
            return False
        try:
            return self.embedder.count_tokens(text) <= self.max_tokens
        except Exception as exc:  # a missing tokenizer must not fail the request
            logger.warning("cannot count tokens, skipping the semantic tier: %r", exc)
            return False

    async def _embed(self, text: str) -> list[float] | None:
        cached = self._vectors.get(text)
        if cached is not None:
            self._vectors.move_to_end(text)
            return cached
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.embedding_timeout):
                vectors = await self.embedder.embed([text])
        except (BackendError, TimeoutError) as exc:
            error: BackendError = exc if isinstance(exc, BackendError) else BackendError(
                EMBEDDING, f"embedding took longer than {self.embedding_timeout}s (EMBEDDING_TIMEOUT)")
            self._failopen.failed(EMBEDDING, error)
            self._count("errors")
            self._observer.cache_lookup("embedding", "error", time.perf_counter() - started)
            return None
        self._failopen.succeeded(EMBEDDING)
        self._observer.cache_lookup("embedding", "ok", time.perf_counter() - started)
        vector = vectors[0]
        self._vectors[text] = vector
        if len(self._vectors) > self._vector_cache:
            self._vectors.popitem(last=False)
        return vector

    def _choose(self, matches: Sequence[SemanticMatch], text: str, now: float) -> tuple[SemanticMatch,
                                                                                      CachedResponse] | None:
        asked = text_hash(text)
        for match in matches:  # best first
            if match.score < self.threshold:
                return None
            payload = match.payload
            stored_text = payload.get("text")
            if not isinstance(stored_text, str) or float(payload.get("expires_at", 0)) <= now:
                continue
            if block_key(str(payload.get("scope", "")), asked, str(payload.get("text_hash", ""))) in self._blocks:
                self._count("refused_feedback")
                continue
            refused = guards.refusal(stored_text, text, match.score,
                                     substitution_similarity=self.substitution_similarity)
            if refused is not None:
                self._count(f"refused_{refused}")
                logger.debug("guard %s refused %r for %r (similarity %.4f)", refused, _clip(stored_text),
                             _clip(text), match.score)
                continue
            entry = _decode_entry(payload.get("entry"))
            if entry is None or entry.expired(now):
                continue
            return match, entry
        return None

    # -- storing --------------------------------------------------------------------------------------

    def remember(self, probe: SemanticProbe, entry: Any, *, namespace: str) -> None:
        if probe.vector is None or probe.scope is None or probe.text is None or not self._ready:
            return
        if not isinstance(entry, CachedResponse):
            return
        record = SemanticRecord(
            id=point_id(probe.scope, probe.text),
            vector=list(probe.vector),
            scope=probe.scope,
            expires_at=entry.stored_at + entry.ttl,
            payload={"text": probe.text, "text_hash": text_hash(probe.text), "model": entry.model,
                     "namespace": namespace_id(namespace), "stored_at": entry.stored_at,
                     "entry": base64.b64encode(entry.encode()).decode("ascii")},
        )
        self._spawn(self._upsert(record))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self._tasks.spawn(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _upsert(self, record: SemanticRecord) -> None:
        try:
            await self.backend.upsert(record)
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            self._count("store_errors")
            return
        self._failopen.succeeded(STORE)
        self._count("stored")

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait for the background upserts started so far (tests, the evaluation and shutdown use it)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    # -- feedback -----------------------------------------------------------------------------------

    def _remember_served(self, request_id: str, served: _Served) -> None:
        self._served[request_id] = served
        self._served.move_to_end(request_id)
        while len(self._served) > self._served_memory:
            self._served.popitem(last=False)

    async def feedback(self, request_id: str, verdict: str) -> dict[str, Any]:
        """``wrong``: evict the entry that answered ``request_id`` and never match that pair again."""
        served = self._served.get(request_id)
        if served is None:
            raise NotFoundError(f"No semantic hit with request id {request_id!r} is remembered (the last "
                                f"{self._served_memory} semantic hits are, in this process).",
                                param="request_id", code="unknown_request_id")
        if verdict == "right":
            self._count("feedback_right")
            return {"request_id": request_id, "verdict": verdict, "evicted": False}
        key = block_key(served.scope, served.asked_hash, served.stored_hash)
        self._blocks.add(key)
        await self.backend.add_block(key)
        evicted = await self.backend.delete([served.point_id])
        self._served.pop(request_id, None)
        self._count("feedback_wrong")
        logger.info("feedback: request %s was answered wrongly; evicted %s and blocked the pair", request_id,
                    served.point_id)
        return {"request_id": request_id, "verdict": verdict, "evicted": bool(evicted),
                "point_id": served.point_id, "blocked": True}

    async def feedback_endpoint(self, request: Request) -> JSONResponse:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise BadRequestError("The body must be JSON: {\"request_id\": \"...\", \"verdict\": \"wrong\"}.",
                                  code="invalid_json") from None
        if not isinstance(body, dict) or not isinstance(body.get("request_id"), str) or not body["request_id"]:
            raise BadRequestError("'request_id' (the x-request-id of the answer) is required.", param="request_id")
        verdict = body.get("verdict", "wrong")
        if verdict not in ("wrong", "right"):
            raise BadRequestError("'verdict' must be 'wrong' or 'right'.", param="verdict")
        try:
            result = await self.feedback(body["request_id"], verdict)
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            raise
        return JSONResponse(result)

    # -- the operator's view --------------------------------------------------------------------------

    async def clear(self, model: str | None = None, namespace: str | None = None) -> int:
        """Remove entries (all, or those of ``model`` and/or ``namespace``); returns how many."""
        removed = await self.backend.delete_where(model=model, namespace=namespace_id(namespace)
                                                  if namespace is not None else None)
        self._served.clear()
        return removed

    async def delete(self, point_id: str) -> int:
        """Remove one entry (named by a semantic hit's ``x-cache-key``); returns 1 if it was there."""
        return await self.backend.delete([point_id])

    async def count(self) -> int:
        return await self.backend.count()

    async def remove_expired(self) -> int:
        removed = await self.backend.delete_where(expired_before=self._clock())
        self._count("expired_removed", removed)
        return removed

    async def _maintain_forever(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_interval)
            await self.maintain()

    async def maintain(self) -> None:
        """Drop expired entries, let the store index new ones, pick up blocks other proxies added."""
        if not self._ready and not await self._open():
            return
        try:
            await self.remove_expired()
            await self.backend.maintain()
            self._blocks |= await self.backend.load_blocks()
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
        except Exception:  # upkeep must never die: it runs again next interval
            logger.exception("semantic tier upkeep failed")

    def _count(self, name: str, amount: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + amount


def _decode_entry(raw: Any) -> CachedResponse | None:
    if not isinstance(raw, str):
        return None
    try:
        return CachedResponse.decode(base64.b64decode(raw))
    except (EntryFormatError, ValueError):
        return None


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
