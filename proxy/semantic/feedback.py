"""Feedback on semantic hits: ``POST /admin/cache/feedback`` with the ``x-request-id`` of an answer.

The book remembers which entry answered each of the last :data:`MEMORY` semantic hits. ``wrong`` evicts
that entry and blocks the pair of prompts for good (blocks are kept by the store, so they survive restarts
and are shared by replicas on one Qdrant); ``right`` is counted.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
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


@dataclass
class Served:
    """What answered a semantic hit, kept so feedback on that request can evict and block it."""

    point_id: str
    scope: str
    asked_hash: str
    stored_hash: str


class FeedbackBook:
    def __init__(self, backend: SemanticBackend, *, blocks: set[str], failopen: FailOpen, stats: Counter[str],
                 memory: int = MEMORY) -> None:
        self.backend = backend
        self.blocks = blocks  # shared with the selector: a block added here refuses the pair at once
        self._failopen = failopen
        self._stats = stats
        self._memory = memory
        self._served: OrderedDict[str, Served] = OrderedDict()

    def served(self, request_id: str, served: Served) -> None:
        self._served[request_id] = served
        self._served.move_to_end(request_id)
        while len(self._served) > self._memory:
            self._served.popitem(last=False)

    def forget(self) -> None:
        """Entries were cleared: nothing remembered can be evicted any more."""
        self._served.clear()

    async def feedback(self, request_id: str, verdict: str) -> dict[str, Any]:
        """``wrong``: evict the entry that answered ``request_id`` and never match that pair again."""
        served = self._served.get(request_id)
        if served is None:
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
            result = await self.feedback(body["request_id"], verdict)
        except BackendError as exc:
            self._failopen.failed(STORE, exc)
            raise
        return JSONResponse(result)
