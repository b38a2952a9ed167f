"""``POST /v1/chat/completions`` as a pure-ASGI app: read the body, parse it once, ask the pipeline, respond.

The app's short cut (:class:`proxy.app.CachegateApp`) sends chat requests here without Starlette's router
and exception layers, so this endpoint answers its own errors: a :class:`~proxy.errors.CachegateError`
raised before the response starts becomes its OpenAI-style answer, and anything else a logged 500.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from proxy.chat.pipeline import Answer, ChatPipeline
from proxy.core.request import ChatRequestParser
from proxy.http.asgi import receive_body
from proxy.http.responses import BytesResponse, StreamResponse, error_answer


class ChatEndpoint:
    def __init__(self, parser: ChatRequestParser, pipeline: ChatPipeline, *, max_body_bytes: int) -> None:
        self.parser = parser
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: ASGIApp
        try:
            headers = scope["headers"]
            declared = next((value.decode("latin-1") for name, value in headers if name == b"content-length"), None)
            raw = await receive_body(receive, declared, self.max_body_bytes)
            request = self.parser.parse(raw, headers, scope["query_string"].decode("latin-1"))
            response = as_response(await self.pipeline.answer(request, scope["state"]["record"]))
        except Exception as exc:
            response = error_answer(exc, scope)
        await response(scope, receive, send)


def as_response(answer: Answer) -> ASGIApp:
    if answer.events is not None:
        return StreamResponse(answer.events, status=answer.status, headers=answer.headers,
                              media_type=answer.media_type or "text/event-stream")
    return BytesResponse(answer.body or b"", status=answer.status, headers=answer.headers,
                         media_type=answer.media_type)
