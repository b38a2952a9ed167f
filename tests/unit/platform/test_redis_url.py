"""What REDIS_URL names: exact targets for every form, and refusals that say what is wrong."""

from __future__ import annotations

import pytest

from proxy.platform.redis_url import RedisTarget, parse_redis_url


@pytest.mark.parametrize(("raw", "cluster", "expected"), [
    ("redis://localhost:6379/2", False, RedisTarget("redis", "redis://localhost:6379/2", (("localhost", 6379),),
                                                    db=2)),
    ("redis://cache", False, RedisTarget("redis", "redis://cache/0", (("cache", 6379),))),
    ("rediss://u:p%40ss@cache:6380/0", False,
     RedisTarget("redis", "rediss://u:p%40ss@cache:6380/0", (("cache", 6380),), True, "u", "p@ss")),
    ("unix:///run/redis.sock", False, RedisTarget("redis", "unix:///run/redis.sock")),
    ("redis://10.0.0.1:7000", True, RedisTarget("redis-cluster", "redis://10.0.0.1:7000/0", (("10.0.0.1", 7000),))),
    ("redis+cluster://a:7000,b:7001,[::1]:7002", False,
     RedisTarget("redis-cluster", "redis://a:7000/0", (("a", 7000), ("b", 7001), ("::1", 7002)))),
    ("rediss+cluster://:secret@a", False,
     RedisTarget("redis-cluster", "rediss://:secret@a:6379/0", (("a", 6379),), True, None, "secret")),
    ("redis+sentinel://s1,s2:26380/mymaster/3", False,
     RedisTarget("redis-sentinel", "redis://s1:26379/3", (("s1", 26379), ("s2", 26380)), db=3, service="mymaster")),
])
def test_targets(raw: str, cluster: bool, expected: RedisTarget) -> None:
    assert parse_redis_url(raw, cluster=cluster) == expected


@pytest.mark.parametrize(("raw", "cluster", "message"), [
    ("http://cache:6379", False, "expected a URL starting with redis://"),
    ("redis://a:1,b:2", False, "several hosts need redis+cluster://"),
    ("redis+sentinel://s1:26379", False, "needs the master's name"),
    ("redis+cluster://a:7000/1", False, "database 0 only"),
    ("redis+cluster://a:70000", False, "bad port in 'a:70000'"),
    ("redis+cluster://a:7000,,b", False, "an empty host"),
    ("redis://cache/x", False, "expected a database number"),
    ("unix:///run/redis.sock", True, "cannot be reached over a unix socket"),
])
def test_refusals_say_what_is_wrong(raw: str, cluster: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_redis_url(raw, cluster=cluster)


def test_a_refusal_never_echoes_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url("redis+cluster://user:hunter2@a:bad")
    assert "hunter2" not in str(caught.value)
