"""The command lane on a real Redis: raw answers, its connections kept and reused, never one whose answer may
still be on the way, a connection closed while idle sent once more, the pool when every one is busy, and
scripts by SHA with the full text when Redis forgot them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from proxy.errors import BackendError
from proxy.platform.redis import RedisHome
from proxy.platform.redis_lane import LuaScript
from proxy.platform.redis_url import parse_redis_url
from tests.support.servers import RedisServer

ECHO = LuaScript("return {KEYS[1], ARGV[1]}")


@pytest_asyncio.fixture
async def home(redis_url: str) -> AsyncIterator[RedisHome]:
    home = RedisHome(parse_redis_url(redis_url), timeout=2.0)
    try:
        yield home
    finally:
        await home.aclose()


async def test_answers_are_raw_and_one_connection_serves_commands_in_turn(home: RedisHome) -> None:
    assert await home.command("SET", "k", "v", "NX", key="k") == b"OK"
    assert await home.command("SET", "k", "w", "NX", key="k") is None  # not done: nothing to test true
    assert await home.command("GET", "k", key="k") == b"v"
    assert await home.command("INCR", "n", key="n") == 1
    assert home.lane.idle == 1 and home.lane.made == 1  # one connection, kept between commands


async def test_a_command_cut_short_leaves_its_connection_unused(home: RedisHome, redis_server: RedisServer) -> None:
    # BLPOP waits for a push; cut short by its deadline, its answer (the pushed value) would be read by the next
    # command sent on that connection if the lane kept it.
    with pytest.raises(BackendError):
        await home.attempt(None, lambda: home.lane.execute("BLPOP", "queue", 0), until=_soon(0.2))
    assert home.lane.idle == 0 and home.lane.made == 0
    with redis_server.client() as client:
        client.rpush("queue", "late")
    assert await home.command("GET", "absent", key="absent") is None
    assert await home.command("LPOP", "queue", key="queue") in (b"late", None)  # never the BLPOP's answer


async def test_a_connection_closed_while_idle_is_sent_again_on_a_new_one(home: RedisHome,
                                                                         redis_server: RedisServer) -> None:
    await home.command("SET", "k", "v", key="k")
    with redis_server.client() as client:
        killed = client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    assert await home.command("GET", "k", key="k") == b"v"  # the idle connection was closed: sent once more
    assert home.lane.made == 1


async def test_commands_beyond_the_lanes_connections_go_through_the_pool(home: RedisHome) -> None:
    size = home.lane.size
    waits = [asyncio.ensure_future(home.command("BLPOP", f"q{i}", 5, key=f"q{i}")) for i in range(size)]
    await asyncio.sleep(0.1)
    assert home.lane.made == size and home.lane.idle == 0
    assert await home.command("SET", "k", "v", "NX", key="k") == b"OK"  # raw from the pool too
    assert await home.command("GET", "k", key="k") == b"v"
    for i in range(size):
        await home.command("RPUSH", f"q{i}", "x", key=f"q{i}")
    assert [await wait for wait in waits] == [[f"q{i}".encode(), b"x"] for i in range(size)]
    assert home.lane.made == size


async def test_an_error_reply_is_an_answer_and_keeps_the_connection(home: RedisHome) -> None:
    await home.command("SET", "s", "text", key="s")
    with pytest.raises(BackendError, match="WRONGTYPE"):
        await home.command("LPUSH", "s", "x", key="s")
    assert home.lane.idle == 1 and home.lane.made == 1
    assert await home.command("GET", "s", key="s") == b"text"


async def test_scripts_run_by_sha_and_in_full_once_redis_forgot_them(home: RedisHome,
                                                                      redis_server: RedisServer) -> None:
    assert await home.run_script(ECHO, ["a"], ["1"]) == [b"a", b"1"]  # unknown at first: sent in full
    with redis_server.client() as client:
        assert client.script_exists(ECHO.sha) == [True]
        client.script_flush()
    assert await home.run_script(ECHO, ["b"], ["2"]) == [b"b", b"2"]


def _soon(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds
