"""Concurrent identical misses share one upstream call; a failed leader does not poison the followers."""

from __future__ import annotations

import asyncio

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


async def test_concurrent_stream_misses_make_one_upstream_call(proxy: ProxyServer, sim: SimulatorServer) -> None:
    async def one(client: openai.AsyncOpenAI) -> str:
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                      extra_headers={"x-sim-chunk-delay": "0.05"})
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async with proxy.async_client() as client:
        texts = await asyncio.gather(*[one(client) for _ in range(6)])
    assert sim.state.chat_calls == 1
    assert set(texts) == {"[1] You said: Tell me about single flight."}


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
