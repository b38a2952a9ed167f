"""Feedback on semantic hits: ``POST /admin/cache/feedback`` with the ``x-request-id`` of an answer.

The book remembers which entry answered each semantic hit, for :data:`REMEMBER` seconds, in a
:class:`FeedbackStore`: in the process (:class:`MemoryFeedbackStore`, the last :data:`MEMORY` hits) or, with
Redis, in Redis (:class:`RedisFeedbackStore`), so feedback may reach any replica, whichever served the hit.
``wrong`` evicts that entry and blocks the pair of prompts for good (blocks are kept by the vector store, so
they survive restarts and are shared by replicas on one Qdrant); ``right`` is counted. Remembering a hit is
written in the background when the store is a server: a failing Redis costs the hit nothing (fail open), only
its feedback.

Request ids may be chosen by clients, so feedback is scoped to the tenant that was answered: each hit is
remembered with its tenant (the owner of its credentials), and the feedback call names the tenant with
``X-Feedback-Api-Key: <the client's key>`` (as warm's ``X-Warm-Api-Key``; none: the anonymous tenant). An
id is remembered once, first come (``SET NX`` in Redis): the request middleware gives a client that chooses
an id this process remembers a fresh one, and a hit under an id another replica remembers is simply not
remembered again; feedback for another tenant is answered as for an unknown id.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.contracts import SemanticBackend
from proxy.errors import BackendError, BadRequestError, NotFoundError
from proxy.http.params import check_names
from proxy.platform.failopen import FailOpen
from proxy.platform.redis import RedisHome
from proxy.semantic.labels import FeedbackLabels
from proxy.semantic.prompts import block_key

logger = logging.getLogger("cachegate.semantic")

STORE = "qdrant"
MEMORY = 10_000
REMEMBER = 86_400.0  # seconds a hit can be given feedback
VERDICTS = ("wrong", "right")
Spawn = Callable[[Coroutine[Any, Any, Any]], Any]
#: the keys of the feedback body (the route takes no query parameters)
FEEDBACK_PARAMS = frozenset({"request_id", "verdict"})
#: the header that names whose request the feedback is about
TENANT_HEADER = "x-feedback-api-key"
#: the tenant (owner) of a request with these headers, as the chat request parser decides it
TenantOf = Callable[[Mapping[str, str]], str | None]


@dataclass
class Served:
    """What answered a semantic hit, kept so feedback on that request can evict and block it."""

    point_id: str
    scope: str
    asked_hash: str
    stored_hash: str
    tenant: str | None = None  # the owner of the request that was answered (None: not told, not checked)
    asked_text: str | None = None  # the prompts, only with FEEDBACK_KEEP_TEXT (for the labelled pairs)
    stored_text: str | None = None


class FeedbackStore(Protocol):
    """request id → :class:`Served`, each for ``ttl`` seconds, the first one kept (a later ``put`` of a
    remembered id changes nothing). Raises BackendError when it fails."""

    name: str
    remote: bool  # a server: written off the request path

    async def put(self, request_id: str, served: Served, ttl: float) -> None: ...

    async def get(self, request_id: str) -> Served | None: ...

    async def delete(self, request_id: str) -> None: ...

    async def clear(self) -> None: ...


class MemoryFeedbackStore:
    name = "memory"
    remote = False

    def __init__(self, *, memory: int = MEMORY, clock: Callable[[], float] = time.monotonic) -> None:
        self.memory = memory
        self._clock = clock
        self._served: OrderedDict[str, tuple[Served, float]] = OrderedDict()

    async def put(self, request_id: str, served: Served, ttl: float) -> None:
        if await self.get(request_id) is not None:
            return  # the first is kept
        self._served[request_id] = (served, self._clock() + ttl)
        self._served.move_to_end(request_id)
        while len(self._served) > self.memory:
            self._served.popitem(last=False)

    async def get(self, request_id: str) -> Served | None:
        found = self._served.get(request_id)
        if found is None or found[1] <= self._clock():
            return None
        return found[0]

    async def delete(self, request_id: str) -> None:
        self._served.pop(request_id, None)

    async def clear(self) -> None:
        self._served.clear()


class RedisFeedbackStore:
    """``<prefix>feedback:<request id>`` → the JSON of :class:`Served`, expiring by itself (one key per call)."""

    name = "redis"
    remote = True

    def __init__(self, home: RedisHome, *, prefix: str) -> None:
        self.home = home
        self.prefix = f"{prefix}feedback:"

    async def put(self, request_id: str, served: Served, ttl: float) -> None:
        key, value = self.prefix + request_id, orjson.dumps(dataclasses.asdict(served))
        await self.home.command("SET", key, value, "PX", max(1, int(ttl * 1000)), "NX", key=key)

    async def get(self, request_id: str) -> Served | None:
        key = self.prefix + request_id
        raw = await self.home.command("GET", key, key=key)
        if raw is None:
            return None
        try:
            return Served(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):  # not ours, or from another version: nothing to act on
            return None

    async def delete(self, request_id: str) -> None:
        await self.home.delete([self.prefix + request_id])

    async def clear(self) -> None:
        batch: list[str] = []
        async for key in self.home.scan(self.prefix.replace("[", "\\[") + "*"):
            batch.append(key)
            if len(batch) >= 500:
                await self.home.delete(batch)
                batch = []
        await self.home.delete(batch)


class FeedbackBook:
    def __init__(self, backend: SemanticBackend, *, blocks: set[str], failopen: FailOpen, stats: Counter[str],
                 spawn: Spawn, store: FeedbackStore | None = None, remember: float = REMEMBER,
                 tenant_of: TenantOf | None = None, memory: int = MEMORY, labels: FeedbackLabels | None = None) -> None:
        self.backend = backend
        self.blocks = blocks  # shared with the selector: a block added here refuses the pair at once
        self.store: FeedbackStore = store or MemoryFeedbackStore(memory=memory)
        self.remember = remember
        self.tenant_of = tenant_of
        self.labels = labels  # every verdict kept as a labelled pair (None: not kept)
        self._failopen = failopen
        self._stats = stats
        self._spawn = spawn
        self._local: OrderedDict[str, None] = OrderedDict()  # ids this process served: the middleware asks
        self._memory = memory

    async def served(self, request_id: str, served: Served) -> bool:
        """Remember what answered ``request_id`` (off the request path when the store is a server); ``False``
        when this process remembers the id already (the first is kept)."""
        if request_id in self._local:
            return False
        self._local[request_id] = None
        while len(self._local) > self._memory:
            self._local.popitem(last=False)
        if self.store.remote:
            self._spawn(self._put(request_id, served))
        else:
            await self._put(request_id, served)
        return True

    def remembers(self, request_id: str) -> bool:
        """Whether this process remembers ``request_id`` for feedback (the request middleware asks, to give a
        client that chose it a fresh one)."""
        return request_id in self._local

    async def _put(self, request_id: str, served: Served) -> None:
        try:
            await self.store.put(request_id, served, self.remember)
        except BackendError as exc:
            self._failopen.failed(self.store.name, exc)

    async def forget(self) -> None:
        """Entries were cleared: nothing remembered can be evicted any more."""
        self._local.clear()
        try:
            await self.store.clear()
        except BackendError as exc:
            self._failopen.failed(self.store.name, exc)

    async def feedback(self, request_id: str, verdict: str, *, tenant: str | None = None) -> dict[str, Any]:
        """``wrong``: evict the entry that answered ``request_id`` of ``tenant`` and never match that pair again."""
        try:
            served = await self.store.get(request_id)
        except BackendError as exc:
            self._failopen.failed(self.store.name, exc)
            raise
        if served is None or (served.tenant is not None and served.tenant != tenant):
            raise NotFoundError(f"No semantic hit with request id {request_id!r} is remembered (semantic hits "
                                f"are, for {self.remember:g} s).", param="request_id", code="unknown_request_id")
        await self._label(verdict, served)
        if verdict == "right":
            self._stats["feedback_right"] += 1
            return {"request_id": request_id, "verdict": verdict, "evicted": False}
        key = block_key(served.scope, served.asked_hash, served.stored_hash)
        self.blocks.add(key)
        await self.backend.add_block(key)
        evicted = await self.backend.delete([served.point_id])
        await self.store.delete(request_id)
        self._stats["feedback_wrong"] += 1
        logger.info("feedback: request %s was answered wrongly; evicted %s and blocked the pair", request_id,
                    served.point_id)
        return {"request_id": request_id, "verdict": verdict, "evicted": bool(evicted),
                "point_id": served.point_id, "blocked": True}

    @property
    def keeps_text(self) -> bool:
        return self.labels is not None and self.labels.keep_text

    async def _label(self, verdict: str, served: Served) -> None:
        if self.labels is None:
            return
        try:
            await self.labels.record(verdict, scope=served.scope, stored_hash=served.stored_hash,
                                     asked_hash=served.asked_hash, stored_text=served.stored_text,
                                     asked_text=served.asked_text)
        except Exception:  # the verdict still counts; only its row for retraining is lost
            logger.exception("feedback: the labelled pair could not be written")

    async def endpoint(self, request: Request) -> JSONResponse:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise BadRequestError("The body must be JSON: {\"request_id\": \"...\", \"verdict\": \"wrong\"}.",
                                  code="invalid_json") from None
        if isinstance(body, dict):
            check_names(body, FEEDBACK_PARAMS, "POST /admin/cache/feedback")
        if not isinstance(body, dict) or not isinstance(body.get("request_id"), str) or not body["request_id"]:
            raise BadRequestError("'request_id' (the x-request-id of the answer) is required.", param="request_id")
        verdict = body.get("verdict", "wrong")
        if verdict not in VERDICTS:
            raise BadRequestError("'verdict' must be 'wrong' or 'right'.", param="verdict")
        try:
            result = await self.feedback(body["request_id"], verdict, tenant=self._tenant(request.headers))
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            raise
        return JSONResponse(result)

    def _tenant(self, headers: Mapping[str, str]) -> str | None:
        """The tenant the feedback is for: that of a client presenting ``X-Feedback-Api-Key``."""
        if self.tenant_of is None:
            return None
        key = headers.get(TENANT_HEADER, "").strip()
        return self.tenant_of({"authorization": f"Bearer {key}"} if key else {})
