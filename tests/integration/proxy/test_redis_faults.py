"""A Redis that fails mid-test costs cache misses, never a failed request, and no more than one
``REDIS_TIMEOUT`` a request: a cluster master killed (``kill -9``) or hung (``SIGSTOP``), on each engine, a
master failed over to its replica, a Sentinel failover, and one hung server under concurrent clients
(issue 10, item 20).

The bounds asserted are generous and relative: the slowest request with Redis hung must stay under the
slowest of the same load with Redis healthy (measured in the same test, so a busy machine slows both) plus
one ``REDIS_TIMEOUT`` of 2 s plus half a timeout of slack. Two timeouts would be over it. They tell one
timeout from two; they are not a benchmark.
"""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.crc import key_slot

from tests.conftest import CLUSTER_ENGINES, engine_binary
from tests.support.proxy import ProxyServer
from tests.support.redis_cluster import LocalCluster, LocalSentinel
from tests.support.servers import RedisServer, SimulatorServer

MODEL = "gpt-4o-mini"
TIMEOUT = 2.0  # REDIS_TIMEOUT of the proxies whose requests are timed
SLACK = TIMEOUT / 2


def ask(proxy: ProxyServer, prompt: str) -> httpx.Response:
    response = httpx.post(proxy.base_url + "/chat/completions", timeout=30,
                          headers={"authorization": "Bearer sk-test-alice"},
                          json={"model": MODEL, "messages": [{"role": "user", "content": prompt}]})
    assert response.status_code == 200, response.text
    return response


def timed(proxy: ProxyServer, prompt: str) -> tuple[str, float]:
    started = time.monotonic()
    response = ask(proxy, prompt)
    return response.headers["x-cache"], time.monotonic() - started


def concurrently(proxy: ProxyServer, prompts: list[str], clients: int) -> list[tuple[str, float]]:
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda prompt: timed(proxy, prompt), prompts))


def slowest(outcomes: list[tuple[str, float]]) -> float:
    return max(seconds for _, seconds in outcomes)


def wait_for_stores(proxy: ProxyServer) -> None:
    deadline = time.monotonic() + 10
    while len(proxy.parts.jobs) and time.monotonic() < deadline:
        time.sleep(0.01)


def warm(proxy: ProxyServer, prompts: list[str]) -> dict[str, str]:
    """Ask each prompt until it is a hit; returns prompt → its exact key."""
    for prompt in prompts:
        ask(proxy, prompt)
    wait_for_stores(proxy)
    keys = {}
    for prompt in prompts:
        hit = ask(proxy, prompt)
        assert hit.headers["x-cache"] == "HIT"
        keys[prompt] = hit.headers["x-cache-key"]
    return keys


def by_node(cluster: LocalCluster, keys: dict[str, str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for prompt, key in keys.items():
        out.setdefault(cluster.node_of_slot(key_slot(key.encode())).port, []).append(prompt)
    return out


@pytest.fixture(scope="module", params=CLUSTER_ENGINES)
def fault_cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """A cluster of its own (a test breaks it), on each engine."""
    with LocalCluster(binary=engine_binary(str(request.param))) as cluster:
        yield cluster


@pytest.fixture
def cluster_proxy(fault_cluster: LocalCluster, start_proxy: Any) -> ProxyServer:
    fault_cluster.wait_healthy()
    fault_cluster.flushall()
    # without the local copy of Redis: these tests measure what a node's fault costs the calls that reach it
    # (the copy answers the keys it holds while a hung node cannot change them, until its tracking gives up)
    proxy: ProxyServer = start_proxy(redis_url=fault_cluster.url, redis_timeout=TIMEOUT, redis_cooldown=1.0,
                                     redis_client_cache_bytes=0)
    return proxy


def test_a_killed_master_costs_its_keys_only_and_every_request_succeeds(fault_cluster: LocalCluster,
                                                                         cluster_proxy: ProxyServer) -> None:
    keys = warm(cluster_proxy, [f"killed master {i}" for i in range(12)])
    groups = by_node(fault_cluster, keys)
    victim_port, lost = max(groups.items(), key=lambda item: len(item[1]))
    victim = next(node for node in fault_cluster.nodes if node.port == victim_port)
    victim.signal(signal.SIGKILL)
    for _ in range(2):
        for prompt in keys:
            assert ask(cluster_proxy, prompt).headers["x-cache"] == ("MISS" if prompt in lost else "HIT"), prompt
    victim.start()  # back on its port with its node file: it serves its slots again, empty
    fault_cluster.wait_healthy()
    time.sleep(1.1)  # past the cool-down: the next call to it is the trial
    for prompt in lost:
        ask(cluster_proxy, prompt)
    wait_for_stores(cluster_proxy)
    assert all(ask(cluster_proxy, prompt).headers["x-cache"] == "HIT" for prompt in keys)


def test_a_hung_master_costs_at_most_one_timeout_a_request(fault_cluster: LocalCluster,
                                                          cluster_proxy: ProxyServer) -> None:
    keys = warm(cluster_proxy, [f"hung master {i}" for i in range(12)])
    groups = by_node(fault_cluster, keys)
    victim_port, lost = max(groups.items(), key=lambda item: len(item[1]))
    victim = next(node for node in fault_cluster.nodes if node.port == victim_port)
    healthy = concurrently(cluster_proxy, [f"healthy {i}" for i in range(24)], 8)  # the same load, Redis well
    with fault_cluster.stopped(victim):
        outcomes = [timed(cluster_proxy, prompt) for prompt in keys]
        # a miss's flight lasts until its store gave up (a timeout): an ask meanwhile would share its answer
        wait_for_stores(cluster_proxy)
        outcomes += concurrently(cluster_proxy, list(keys), 8)  # each once: no single flight between them
    for (outcome, _), prompt in zip(outcomes, list(keys) * 2, strict=True):
        assert outcome == ("MISS" if prompt in lost else "HIT"), (prompt, victim_port, outcomes)  # the others hit
    assert slowest(outcomes) < slowest(healthy) + TIMEOUT + SLACK, (slowest(healthy), outcomes)
    home = cluster_proxy.parts.redis
    assert home is not None and home.breaker.skipped > 0  # most of its keys did not wait at all
    fault_cluster.wait_healthy()


def test_a_master_failed_over_to_its_replica_serves_again(start_proxy: Any) -> None:
    with LocalCluster(masters=3, replicas=1) as cluster:
        proxy = start_proxy(redis_url=cluster.url, redis_timeout=TIMEOUT, redis_cooldown=0.3)
        keys = warm(proxy, [f"failover {i}" for i in range(9)])
        groups = by_node(cluster, keys)
        victim_port, lost = max(groups.items(), key=lambda item: len(item[1]))
        next(node for node in cluster.nodes if node.port == victim_port).signal(signal.SIGKILL)
        for prompt in keys:  # before the failover: misses for its keys, every request answered
            assert ask(proxy, prompt).headers["x-cache"] in ("HIT", "MISS")
        cluster.wait_healthy()  # the replica took over its slots
        time.sleep(0.4)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the topology is reloaded after the next failure
            ask(proxy, lost[0])
            wait_for_stores(proxy)
            if ask(proxy, lost[0]).headers["x-cache"] == "HIT":
                break
            time.sleep(0.3)
        assert ask(proxy, lost[0]).headers["x-cache"] == "HIT"
        assert cluster.node_of_slot(key_slot(keys[lost[0]].encode())).port != victim_port


def test_a_sentinel_failover_is_followed(start_proxy: Any) -> None:
    with LocalSentinel() as sentinel:
        proxy = start_proxy(redis_url=sentinel.url, redis_timeout=TIMEOUT, redis_cooldown=0.3)
        first = sentinel.master_port()
        warm(proxy, ["sentinel one"])
        sentinel.master.signal(signal.SIGKILL)
        assert ask(proxy, "sentinel one").headers["x-cache"] in ("HIT", "MISS")  # answered, whatever Redis does
        deadline = time.monotonic() + 30
        while sentinel.master_port() == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sentinel.master_port() == sentinel.replica.port
        time.sleep(0.4)  # past the cool-down
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ask(proxy, "sentinel two")
            wait_for_stores(proxy)
            if ask(proxy, "sentinel two").headers["x-cache"] == "HIT":
                break
            time.sleep(0.3)
        assert ask(proxy, "sentinel two").headers["x-cache"] == "HIT"
        # the local copy's tracking connection followed the master too (asked of the sentinels again)
        tracking = proxy.parts.redis.tracking("")  # type: ignore[union-attr]
        deadline = time.monotonic() + 15
        while not tracking.live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tracking.live and tracking.status()["connects"] >= 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("clients", [4, 16])
def test_a_hung_redis_costs_one_timeout_per_request_under_concurrency(start_proxy: Any, sim: SimulatorServer,
                                                                      clients: int) -> None:
    """Issue 10, item 20: reads queued behind a stuck MGET used to wait for it to time out, then for their own
    timeout (two timeouts); now each read has one deadline from when it was asked, and once Redis is known
    down the breaker skips it at once."""
    with RedisServer() as redis_server:
        proxy = start_proxy(redis_url=redis_server.url, redis_timeout=TIMEOUT)
        healthy = concurrently(proxy, [f"healthy {i}" for i in range(clients * 3)], clients)
        redis_server.signal(signal.SIGSTOP)
        try:
            outcomes = concurrently(proxy, [f"hung {i}" for i in range(clients * 3)], clients)
        finally:
            redis_server.signal(signal.SIGCONT)
    assert all(outcome == "MISS" for outcome, _ in outcomes)
    assert slowest(outcomes) < slowest(healthy) + TIMEOUT + SLACK, (slowest(healthy), sorted(outcomes))
