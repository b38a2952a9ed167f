"""Two proxies on one Redis (``cachegate serve`` processes sharing DATA_DIR): exactly one runs the scheduler,
and when the leader is killed (SIGKILL: no clean-up, no release), the other takes over once the lock
expires, which is at most one lock period after the leader's last renewal."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.probe.helpers import truth, wait_for
from tests.support.servers import RedisServer, SimulatorServer, SubprocessServer, free_port

CACHEGATE = str(Path(sys.executable).parent / "cachegate")
LOCK_SECONDS = 2


def state(server: SubprocessServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(server.url + "/probe/api/scheduler", timeout=30).json()
    return body


@pytest.fixture
def replicas(psim: SimulatorServer, redis_url: str, tmp_path: Path) -> Iterator[list[SubprocessServer]]:
    env = {"UPSTREAM_BASE_URL": psim.base_url, "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / "data"),
           "SEMANTIC_MODE": "off", "LOG_PATH": "", "PROBE_ENABLED": "true", "PROBE_MODELS": "sim-openai",
           "PROBE_TESTS": "basic", "PROBE_JITTER": "0", "PROBE_INTERVAL": "3600",
           "PROBE_LOCK_SECONDS": str(LOCK_SECONDS)}
    servers = [SubprocessServer([CACHEGATE, "serve", "--port", "{port}"], port=free_port(), env=env)
               for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_one_scheduler_and_a_take_over_within_one_lock_period(
        replicas: list[SubprocessServer], psim: SimulatorServer, redis_server: RedisServer) -> None:
    a, b = replicas
    a.start()
    wait_for(lambda: state(a)["leader"], "the first replica to lead")
    b.start()
    first = wait_for(lambda: (s := state(a))["last_cycle"] and s["last_cycle"]["status"] == "completed"
                     and s["last_cycle"], "the leader's first cycle")
    # b has tried the lock (several ticks) and does not lead: one scheduler, one cycle's requests
    seen = state(b)["leadership"]["checked_at"]
    wait_for(lambda: (c := state(b)["leadership"]["checked_at"]) is not None and seen is not None and c > seen + 1,
             "the second replica to tick")
    assert [state(a)["leader"], state(b)["leader"]] == [True, False]
    assert len(truth(psim)) == first["requests"] == 4
    assert state(b)["last_cycle"] == first  # b reads the shared history, written by a
    assert first["replica"] == state(a)["replica"]

    # a run asked of the follower is left for the leader, which runs it
    asked = httpx.post(b.url + "/probe/api/run", timeout=30)
    assert asked.status_code == 202, asked.text
    assert (asked.json()["requested"], asked.json()["leader"], asked.json()["started"]) == (True, False, False)
    manual = wait_for(lambda: (c := state(a)["last_cycle"])["trigger"] == "manual" and c["status"] == "completed"
                      and c, "the leader to run the cycle asked of the follower")
    assert manual["replica"] == first["replica"]
    assert len(truth(psim)) == 8

    lock_key = state(a)["leadership"]["lock_key"]
    assert a._proc is not None
    a._proc.send_signal(signal.SIGKILL)
    a._proc.wait(10)
    with redis_server.client() as client:
        left = client.pttl(lock_key)
    # what the dead leader left: a lock that expires within one lock period, with nobody to renew it
    assert 0 < left <= LOCK_SECONDS * 1000
    taken = wait_for(lambda: (s := state(b))["leader"] and s, "the second replica to take over")
    assert taken["tick_seconds"] <= LOCK_SECONDS / 3  # it tries several times per lock period
    assert taken["next_run"] == manual["started_at"] + 3600  # it keeps the dead leader's schedule
    # and it runs the scheduler now: a cycle asked for runs on b
    started = httpx.post(b.url + "/probe/api/run", timeout=30)
    assert started.status_code == 202, started.text
    cycle = wait_for(lambda: (c := state(b)["last_cycle"])["replica"] == taken["replica"]
                     and c["status"] == "completed" and c, "the new leader's cycle")
    assert (cycle["replica"], cycle["trigger"]) == (taken["replica"], "manual")
    assert len(truth(psim)) == 12
