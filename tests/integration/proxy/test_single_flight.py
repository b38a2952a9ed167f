"""Concurrent identical misses share one upstream call; a failed leader does not poison the followers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai

from tests.support.proxy import ProxyServer
from tests.support.servers import SimulatorServer

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Tell me about single flight."}]


async def test_concurrent_plain_misses_make_one_upstream_call(proxy: ProxyServer, sim: SimulatorServer) -> None:
    async with proxy.async_client() as client:
        answers = await asyncio.gather(*[
            client.chat.completions.create(model=MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                           extra_headers={"x-sim-delay": "0.3"})
            for _ in range(8)
        ])
    assert sim.state.chat_calls == 1
    assert {a.choices[0].message.content for a in answers} == {"[1] You said: Tell me about single flight."}


async def test_followers_get_their_own_completion_id(proxy: ProxyServer, sim: SimulatorServer) -> None:
    """Issue 10, item 5: every answer of a flight has its own id; the followers name the leader's original."""
    async with proxy.async_client() as client:
        answers = await asyncio.gather(*[
            client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                                             extra_headers={"x-sim-delay": "0.3"})
            for _ in range(6)
        ])
    assert sim.state.chat_calls == 1
    ids = [answer.parse().id for answer in answers]
    assert len(set(ids)) == 6 and all(i.startswith("chatcmpl-") for i in ids)
    leader = [answer for answer in answers if answer.headers["x-cache"] == "MISS"]
    followers = [answer for answer in answers if answer.headers["x-cache"] != "MISS"]
    assert len(leader) == 1 and len(followers) == 5
    assert {answer.headers["x-cache-original-id"] for answer in followers} == {leader[0].parse().id}


async def test_plain_requests_wait_for_a_streaming_leader(proxy: ProxyServer, sim: SimulatorServer) -> None:
    async def stream(client: openai.AsyncOpenAI) -> str:
        answer = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                      extra_headers={"x-sim-chunk-delay": "0.05"})
        return "".join([c.choices[0].delta.content or "" async for c in answer if c.choices])

    async def plain(client: openai.AsyncOpenAI) -> str:
        answer = await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        return answer.choices[0].message.content or ""

    async with proxy.async_client() as client:
        leader = asyncio.create_task(stream(client))
        await asyncio.sleep(0.1)  # the stream is under way
        texts = await asyncio.gather(leader, *[plain(client) for _ in range(5)])
    assert sim.state.chat_calls == 1
    assert set(texts) == {"[1] You said: Tell me about single flight."}


async def test_a_stream_never_waits_for_another_request(proxy: ProxyServer, sim: SimulatorServer) -> None:
    """A streaming follower would see no byte until the leader's whole answer was in: streams go upstream at
    once, each with its own first byte."""
    async def first_byte(client: openai.AsyncOpenAI) -> str:
        answer = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                      extra_headers={"x-sim-chunk-delay": "0.2"})
        async for chunk in answer:
            if chunk.choices and chunk.choices[0].delta.content:
                await answer.close()
                return str(chunk.choices[0].delta.content)
        return ""

    async with proxy.async_client() as client:
        leader = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                      extra_headers={"x-sim-chunk-delay": "2"})  # a slow one
        firsts = await asyncio.wait_for(asyncio.gather(*[first_byte(client) for _ in range(3)]), 10)
        await leader.close()
    assert all(firsts)
    assert sim.state.chat_calls == 4


async def test_a_plain_follower_waits_no_longer_than_the_lock_timeout(start_proxy: Any, sim: SimulatorServer) -> None:
    proxy = start_proxy(cache_lock_timeout=0.3)
    body = {"model": MODEL, "messages": MESSAGES}
    auth = {"authorization": "Bearer sk-test-alice"}
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=30) as client:
        leader = asyncio.create_task(client.post("/chat/completions", json=body, headers={**auth, "x-sim-delay": "5"}))
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        follower = await client.post("/chat/completions", json=body, headers=auth)
        waited = asyncio.get_running_loop().time() - started
        leader.cancel()
    assert follower.status_code == 200 and follower.headers["x-cache"] == "MISS"  # it asked the upstream itself
    assert waited < 4  # it did not wait for the leader's 5 s
    assert sim.state.chat_calls == 2


async def test_a_failed_leader_does_not_poison_the_followers(proxy: ProxyServer, sim: SimulatorServer) -> None:
    body = {"model": MODEL, "messages": MESSAGES}
    auth = {"authorization": "Bearer sk-test-alice"}
    async with httpx.AsyncClient(base_url=proxy.base_url, timeout=10) as client:
        leader = asyncio.create_task(client.post("/chat/completions", json=body,
                                                 headers={**auth, "x-sim-status": "500", "x-sim-delay": "0.3"}))
        await asyncio.sleep(0.1)  # the leader is now waiting on the upstream
        followers = await asyncio.gather(*[client.post("/chat/completions", json=body, headers=auth)
                                           for _ in range(4)])
        failed = await leader
    assert failed.status_code == 500
    assert [f.status_code for f in followers] == [200] * 4
    assert all("error" not in f.json() for f in followers)
    assert sim.state.chat_calls == 5  # the leader, then each follower on its own
    again = httpx.post(proxy.base_url + "/chat/completions", json=body, headers=auth)
    assert again.headers["x-cache"] == "HIT"
