"""A Redis home for a contract suite, on a real server or on the session's real cluster, emptied first."""

from __future__ import annotations

import pytest

from proxy.platform.redis import RedisHome
from proxy.platform.redis_cluster import ClusterHome
from proxy.platform.redis_url import parse_redis_url
from tests.support.redis_cluster import LocalCluster

#: the kinds of Redis every suite of a Redis-backed contract runs on
KINDS = ("redis", "redis-cluster")


def home_for(kind: str, request: pytest.FixtureRequest, *, timeout: float = 5.0) -> RedisHome:
    if kind == "redis-cluster":
        cluster: LocalCluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        return ClusterHome(parse_redis_url(cluster.url), timeout=timeout)
    return RedisHome(parse_redis_url(request.getfixturevalue("redis_url")), timeout=timeout)
