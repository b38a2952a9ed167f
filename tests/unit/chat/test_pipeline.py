"""The chat pipeline on an in-memory upstream: which tier answers, what is stored, single flight, and the
one close path of an upstream call. No HTTP: :meth:`ChatPipeline.answer` is called directly."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.cache.singleflight import SingleFlight
from proxy.chat.coalesce import Coalescer
from proxy.chat.pipeline import Answer, ChatPipeline
from proxy.contracts import NullObserver, RequestRecord
from proxy.core.request import ChatRequestParser, TtlRule
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import JobRunner
from tests.support.memory_upstream import Call, MemoryUpstream, Reply, completion, events, plain

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class Harness:
    def __init__(self, handler: Any) -> None:
        self.upstream = MemoryUpstream(handler)
        self.jobs = JobRunner()
        self.exact = ExactCache(MemoryBackend(10**6), prefix="cg:", observer=NullObserver(),
                                failopen=FailOpen(NullObserver()))
        self.parser = ChatRequestParser(prefix="cg:", upstream=self.upstream.base_url, shared=False,
                                        secret=lambda: b"test-secret")
        coalescer = Coalescer(SingleFlight(), exact=self.exact, observer=NullObserver(), spawn=self.jobs.spawn,
                              wait=60.0, prefix="cg:")
        self.pipeline = ChatPipeline(upstream=self.upstream, exact=self.exact, coalescer=coalescer,
                                     spawn=self.jobs.spawn, semantic=None, ttl=TtlRule(60, 10, 0.7), prefix="cg:",
                                     ask_usage=True, upstream_api_key=None)

    async def ask(self, body: dict[str, Any] = BODY, **headers: str) -> tuple[Answer, RequestRecord, bytes]:
        raw_headers = [(b"authorization", b"Bearer sk-a"),
                       *[(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]]
        record = RequestRecord(request_id="r", route="/v1/chat/completions", method="POST", started_at=time.time())
        answer = await self.pipeline.answer(self.parser.parse(orjson.dumps(body), raw_headers), record)
        return answer, record, await read(answer)

    async def stored(self) -> CachedResponse | None:
        await self.jobs.flush()
        key = self.parser.parse(orjson.dumps(BODY), [(b"authorization", b"Bearer sk-a")]).key
        return await self.exact.lookup(key)


async def read(answer: Answer) -> bytes:
    if answer.events is None:
        return answer.body or b""
    chunks = []
    try:
        async for chunk in answer.events:
            chunks.append(chunk)
    finally:
        await answer.events.aclose()
    return b"".join(chunks)


def header(answer: Answer, name: bytes) -> bytes | None:
    return next((value for key, value in answer.headers if key == name), None)


async def test_a_miss_is_stored_and_the_same_request_is_then_an_exact_hit() -> None:
    h = Harness(lambda call: plain(completion("hello")))
    miss, record, body = await h.ask()
    assert (miss.cache, miss.status, record.outcome) == ("MISS", 200, "miss")
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "hello"
    assert await h.stored() is not None
    hit, record, again = await h.ask()
    assert (hit.cache, header(hit, b"x-cache-tier"), record.outcome, record.tier) == ("HIT", b"exact", "exact_hit",
                                                                                        "exact")
    served, stored = orjson.loads(again), orjson.loads(body)
    assert {k: v for k, v in served.items() if k not in ("id", "created")} == \
        {k: v for k, v in stored.items() if k not in ("id", "created")}  # stored byte for byte but its identity
    assert served["id"] != stored["id"] and served["id"].startswith("chatcmpl-")
    assert header(hit, b"x-cache-original-id") == stored["id"].encode()
    assert record.usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert len(h.upstream.calls) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_every_hit_gets_a_completion_id_of_its_own(stream: bool) -> None:
    h = Harness(lambda call: plain(completion("hello")))
    await h.ask()
    await h.stored()
    ids = set()
    for _ in range(3):
        answer, _, body = await h.ask({**BODY, "stream": stream})
        assert answer.cache == "HIT" and header(answer, b"x-cache-original-id") == b"chatcmpl-1"
        first = body.split(b"\n\n")[0].removeprefix(b"data: ") if stream else body
        ids.add(orjson.loads(first)["id"])
    assert len(ids) == 3 and "chatcmpl-1" not in ids


async def test_bypass_and_no_store_are_never_stored_no_cache_is_not_read() -> None:
    h = Harness(lambda call: plain(completion("fresh")))
    bypass, record, _ = await h.ask(x_bypass_cache="true")
    assert (bypass.cache, record.outcome) == ("BYPASS", "bypass")
    await h.ask(cache_control="no-store")
    assert await h.stored() is None
    await h.ask(cache_control="no-cache")
    assert await h.stored() is not None
    again, _, _ = await h.ask(cache_control="no-cache")
    assert again.cache == "MISS" and len(h.upstream.calls) == 4


async def test_an_upstream_error_passes_through_and_is_not_stored() -> None:
    h = Harness(lambda call: plain({"error": {"message": "nope"}}, status=500))
    answer, _, body = await h.ask()
    assert answer.status == 500 and orjson.loads(body)["error"]["message"] == "nope"
    assert await h.stored() is None


def streamed(call: Call) -> Reply:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return events({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "he"}}]},
                  {**chunk, "choices": [{"index": 0, "delta": {"content": "llo"}, "finish_reason": "stop"}]},
                  {**chunk, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
                  b"[DONE]")


async def test_a_stream_is_relayed_without_the_usage_event_it_did_not_ask_for_and_stored() -> None:
    h = Harness(streamed)
    _, record, body = await h.ask({**BODY, "stream": True})
    assert h.upstream.calls[0].body["stream_options"] == {"include_usage": True}  # asked for the ledger's sake
    assert b'"usage":{' not in body and body.endswith(b"data: [DONE]\n\n")
    assert record.usage == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert not record.stream_failed and record.ttft is not None
    entry = await h.stored()
    assert entry is not None and entry.completion["choices"][0]["message"]["content"] == "hello"
    plain_hit, _, hit_body = await h.ask()  # one entry serves both forms
    assert plain_hit.cache == "HIT" and orjson.loads(hit_body)["choices"][0]["message"]["content"] == "hello"


async def test_concurrent_identical_misses_share_one_upstream_call() -> None:
    gate = asyncio.Event()
    h = Harness(lambda call: Reply(chunks=[orjson.dumps(completion("shared"))], gate=gate))
    leader = asyncio.create_task(h.ask())
    followers = [asyncio.create_task(h.ask()) for _ in range(3)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(leader, *followers)
    assert [answer.cache for answer, _, _ in results] == ["MISS", "HIT", "HIT", "HIT"]
    assert len(h.upstream.calls) == 1


async def test_followers_of_a_failed_leader_ask_the_upstream_themselves() -> None:
    gate = asyncio.Event()
    replies = iter([Reply(500, chunks=[b'{"error": {"message": "x"}}'], gate=gate)] +
                   [plain(completion("retry")) for _ in range(3)])
    h = Harness(lambda call: next(replies))
    leader = asyncio.create_task(h.ask())
    follower = asyncio.create_task(h.ask())
    await asyncio.sleep(0.05)
    gate.set()
    (first, _, _), (second, _, body) = await asyncio.gather(leader, follower)
    assert first.status == 500 and second.status == 200 and second.cache == "MISS"
    assert orjson.loads(body)["choices"][0]["message"]["content"] == "retry"


async def test_a_stream_that_is_never_read_still_releases_its_flight() -> None:
    h = Harness(streamed)
    record = RequestRecord(request_id="r", route="/v1/chat/completions", method="POST", started_at=time.time())
    request = h.parser.parse(orjson.dumps({**BODY, "stream": True}), [(b"authorization", b"Bearer sk-a")])
    answer = await h.pipeline.answer(request, record)
    assert answer.events is not None and len(h.pipeline.coalescer.flights) == 1
    await answer.events.aclose()  # the client left before the first byte
    assert len(h.pipeline.coalescer.flights) == 0 and record.stream_failed
    assert h.upstream.closed == [True]  # the upstream body was closed too
    again, _, _ = await h.ask({**BODY, "stream": True})
    assert again.cache == "MISS"  # a new leader, not a follower waiting forever


@pytest.mark.parametrize("cut", [1, 2])
async def test_a_cut_off_stream_is_relayed_but_never_stored(cut: int) -> None:
    def handler(call: Call) -> Reply:
        reply = streamed(call)
        return Reply(reply.status, reply.headers, list(reply.chunks)[:cut])

    h = Harness(handler)
    _, record, _ = await h.ask({**BODY, "stream": True})
    assert record.stream_failed
    assert await h.stored() is None


async def test_warm_style_callers_get_the_key_of_a_miss() -> None:
    h = Harness(lambda call: plain(completion("k")))
    answer, _, _ = await h.ask()
    request = h.parser.parse(orjson.dumps(BODY), [(b"authorization", b"Bearer sk-a")])
    assert answer.key == request.key and answer.key.startswith("cg:exact:")

