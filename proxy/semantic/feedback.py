"""Feedback on semantic hits: ``POST /admin/cache/feedback`` with the ``x-request-id`` of an answer.

The book remembers which entry answered each of the last :data:`MEMORY` semantic hits. ``wrong`` evicts
that entry and blocks the pair of prompts for good (blocks are kept by the store, so they survive restarts
and are shared by replicas on one Qdrant); ``right`` is counted.

Request ids may be chosen by clients, so feedback is scoped to the tenant that was answered: each hit is
remembered with its tenant (the owner of its credentials), and the feedback call names the tenant with
``X-Feedback-Api-Key: <the client's key>`` (as warm's ``X-Warm-Api-Key``; none: the anonymous tenant). An
id is remembered once: a later hit under a remembered id is not (the request middleware gives a client
that chooses a remembered id a fresh one; only two concurrent requests can meet here), and feedback for
another tenant is answered as for an unknown id.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from proxy.contracts import SemanticBackend
from proxy.errors import BackendError, BadRequestError, NotFoundError
from proxy.http.params import check_names
from proxy.platform.failopen import FailOpen
from proxy.semantic.prompts import block_key

logger = logging.getLogger("cachegate.semantic")

STORE = "qdrant"
MEMORY = 10_000
VERDICTS = ("wrong", "right")
#: the keys of the feedback body (the route takes no query parameters)
FEEDBACK_PARAMS = frozenset({"request_id", "verdict"})
#: the header that names whose request the feedback is about
TENANT_HEADER = "x-feedback-api-key"
#: the tenant (owner) of a request with these headers, as the chat request parser decides it
TenantOf = Callable[[Mapping[str, str]], str]


@dataclass
class Served:
    """What answered a semantic hit, kept so feedback on that request can evict and block it."""

    point_id: str
    scope: str
    asked_hash: str
    stored_hash: str
    tenant: str | None = None  # the owner of the request that was answered (None: not told, not checked)


class FeedbackBook:
    def __init__(self, backend: SemanticBackend, *, blocks: set[str], failopen: FailOpen, stats: Counter[str],
                 memory: int = MEMORY, tenant_of: TenantOf | None = None) -> None:
        self.backend = backend
        self.tenant_of = tenant_of
        self.blocks = blocks  # shared with the selector: a block added here refuses the pair at once
        self._failopen = failopen
        self._stats = stats
        self._memory = memory
        self._served: OrderedDict[str, Served] = OrderedDict()

    def served(self, request_id: str, served: Served) -> bool:
        """Remember what answered ``request_id``; ``False`` (and the first kept) if the id is remembered."""
        if request_id in self._served:
            return False
        self._served[request_id] = served
        while len(self._served) > self._memory:
            self._served.popitem(last=False)
        return True

    def remembers(self, request_id: str) -> bool:
        """Whether feedback can refer to ``request_id`` (the request middleware asks, to mint a fresh id)."""
        return request_id in self._served

    def forget(self) -> None:
        """Entries were cleared: nothing remembered can be evicted any more."""
        self._served.clear()

    async def feedback(self, request_id: str, verdict: str, *, tenant: str | None = None) -> dict[str, Any]:
        """``wrong``: evict the entry that answered ``request_id`` of ``tenant`` and never match that pair again."""
        served = self._served.get(request_id)
        if served is None or (served.tenant is not None and served.tenant != tenant):
            raise NotFoundError(f"No semantic hit with request id {request_id!r} is remembered (the last "
                                f"{self._memory} semantic hits are, in this process).",
                                param="request_id", code="unknown_request_id")
        if verdict == "right":
            self._stats["feedback_right"] += 1
            return {"request_id": request_id, "verdict": verdict, "evicted": False}
        key = block_key(served.scope, served.asked_hash, served.stored_hash)
        self.blocks.add(key)
        await self.backend.add_block(key)
        evicted = await self.backend.delete([served.point_id])
        self._served.pop(request_id, None)
        self._stats["feedback_wrong"] += 1
        logger.info("feedback: request %s was answered wrongly; evicted %s and blocked the pair", request_id,
                    served.point_id)
        return {"request_id": request_id, "verdict": verdict, "evicted": bool(evicted),
                "point_id": served.point_id, "blocked": True}

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
