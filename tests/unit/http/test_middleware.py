"""proxy.http.middleware: which request id a request gets (issue 10.15)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from proxy.contracts import NullObserver, RequestRecord
from proxy.http.middleware import RequestContextMiddleware, RequestRecords


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def answer(request_id: bytes | None, taken: set[str] | None = None) -> tuple[str, RequestRecord]:
    sent: list[dict[str, Any]] = []
    records: list[RequestRecord] = []
    headers = [(b"x-request-id", request_id)] if request_id is not None else []
    scope = {"type": "http", "path": "/v1/chat/completions", "method": "POST", "headers": headers}
    middleware = RequestContextMiddleware(ok, RequestRecords(NullObserver(), [records.append],
                                                             taken=taken.__contains__ if taken is not None else None))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    echoed = dict(sent[0]["headers"])[b"x-request-id"].decode("latin-1")
    return echoed, records[0]


def test_a_sane_client_id_is_used_and_echoed() -> None:
    echoed, record = answer(b"client-id:42.a_b")
    assert echoed == record.request_id == "client-id:42.a_b"


@pytest.mark.parametrize("sent", [b"abc\n", b"abc\r\n", b"a b", b"", b"x" * 129, b"caf\xc3\xa9"])
def test_anything_else_gets_our_own(sent: bytes) -> None:
    echoed, record = answer(sent)
    assert echoed == record.request_id
    assert len(echoed) == 32 and all(c in "0123456789abcdef" for c in echoed)


def test_without_one_we_mint_one() -> None:
    assert len(answer(None)[0]) == 32


def test_an_id_the_feedback_book_remembers_is_not_reused() -> None:
    echoed, _ = answer(b"req-1002", taken={"req-1002"})
    assert echoed != "req-1002" and len(echoed) == 32
    assert answer(b"req-1003", taken={"req-1002"})[0] == "req-1003"
