"""``cachegate serve --workers 2`` as a real process tree on a real Redis: both workers answer on one port and
share the cache; SIGTERM drains each and stops them all (exit 0, nothing left behind); a killed worker is
started again; a worker whose supervisor is gone stops; each worker has its own metrics port and posts its
alerts under a name of its own; and what cannot work is refused at start, naming the setting or the port."""

from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from proxy.workers.plan import Restarts
from proxy.workers.supervisor import Supervisor
from tests.integration.monitoring.helpers import metrics_when
from tests.support.servers import SimulatorServer, SubprocessServer, free_port
from tests.support.webhook import Receiver
from tests.support.workers import connections_to_each, free_ports, listening, request, workers_listening

ROOT = Path(__file__).resolve().parents[2]
CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one answer for every worker"}]}


def environment(sim: SimulatorServer, redis_url: str | None, tmp_path: Path, **more: str) -> dict[str, str]:
    # REDIS_TIMEOUT far above what a busy shared machine takes to answer: at the default 0.25 s a Redis call cut
    # short fails open (a miss where the test expects a hit, a ledger flush put off), which is right, and not
    # what these tests look at
    env = {"UPSTREAM_BASE_URL": sim.base_url, "DATA_DIR": str(tmp_path / "data"), "SEMANTIC_MODE": "off",
           "LOG_PATH": str(tmp_path / "requests.log"), "DRAIN_DELAY": "0.5", "DRAIN_TIMEOUT": "10",
           "REDIS_TIMEOUT": "30", "PYTHONPATH": str(ROOT), **more}
    return {**env, "REDIS_URL": redis_url} if redis_url else env


@contextmanager
def two_workers(env: dict[str, str], *,
                metrics: int | None = None) -> Iterator[tuple[SubprocessServer, int, list[int]]]:
    """The supervisor (its flags: --workers, --port), the public port and the two workers' pids, once both listen.
    With ``metrics`` (worker 0's METRICS_BIND_ADDRESS port) the start is watched there: /health is not public."""
    port = free_port()
    server = SubprocessServer([sys.executable, "-m", "proxy.cli", "serve", "--workers", "2", "--port", str(port)],
                              port=metrics or port, env=env, health_path="/health/live", cwd=str(ROOT),
                              startup_timeout=120)
    with server:
        try:
            yield server, port, workers_listening(supervisor_pid(server), port, 2)
        except BaseException:
            print(server.output()[-4000:])
            raise


def supervisor_pid(server: SubprocessServer) -> int:
    assert server.pid is not None  # started
    return server.pid


def gone(pids: list[int], timeout: float = 60) -> bool:
    """Whether every one of ``pids`` has ended (and was reaped) within ``timeout``."""
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return not alive and not any(psutil.pid_exists(pid) for pid in pids)


def test_two_workers_share_one_port_and_the_cache_and_stop_on_sigterm(
        sim: SimulatorServer, redis_url: str, tmp_path: Path, start_proxy: Any) -> None:
    with two_workers(environment(sim, redis_url, tmp_path)) as (server, port, pids):
        parent = supervisor_pid(server)
        assert parent not in pids and not listening(parent, port)  # the supervisor holds no socket
        connections = connections_to_each(pids, port)  # the kernel gave each worker connections
        one, other = (connections[pid] for pid in pids)
        _, first, stored = request(one, "POST", CHAT, BODY)
        _, second, served = request(other, "POST", CHAT, BODY)
        assert (first["x-cache"], second["x-cache"]) == ("MISS", "HIT")  # stored by one, a hit through the other
        assert served["choices"] == stored["choices"]
        assert sim.state.chat_calls == 1
        for conn in connections.values():
            conn.close()

        server.signal(signal.SIGTERM)
        assert server.wait(60) == 0, server.output()[-3000:]
        output = server.output()
    assert gone(pids)
    assert output.count("SIGTERM: draining") == 2, output[-3000:]  # each worker drained
    assert "all 2 workers stopped" in output
    # each worker flushed its share of the ledger to Redis on the way out
    after = start_proxy(redis_url=redis_url, redis_timeout=30)
    assert metrics_when(after, 2, timeout=30)["cache_performance"]["total_requests"] == 2


def test_a_killed_worker_is_started_again(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> None:
    with two_workers(environment(sim, redis_url, tmp_path)) as (server, port, pids):
        psutil.Process(pids[0]).kill()
        assert gone(pids[:1])
        now = workers_listening(supervisor_pid(server), port, 2)
        assert pids[0] not in now and pids[1] in now
        fresh = next(pid for pid in now if pid != pids[1])
        connections = connections_to_each([fresh, pids[1]], port)
        status, _, _ = request(connections[fresh], "POST", CHAT, BODY)
        assert status == 200
        for conn in connections.values():
            conn.close()
        output = server.output()
        restarted = r"worker [01] \(pid \d+\) was killed by SIGKILL .*: starting it again in 1s"
        assert re.search(restarted, output), output[-3000:]
        server.signal(signal.SIGTERM)
        assert server.wait(60) == 0
    assert gone(now)


def test_each_worker_has_its_own_metrics_port(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> None:
    base = free_ports(2)
    env = environment(sim, redis_url, tmp_path, METRICS_BIND_ADDRESS=f"127.0.0.1:{base}")
    with two_workers(env, metrics=base) as (server, _, pids):
        # a worker's metrics listener opens just after its public one: wait for each
        owners = [workers_listening(supervisor_pid(server), port, 1)[0] for port in (base, base + 1)]
        assert sorted(owners) == pids  # port + i is worker i's: one target per process for Prometheus
        for port in (base, base + 1):
            scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"accept": "text/plain;version=0.0.4"})
            assert scrape.status_code == 200 and "cachegate_cache_entries" in scrape.text


def test_each_worker_posts_its_alerts_under_a_name_of_its_own(sim: SimulatorServer, tmp_path: Path) -> None:
    # Redis is not there: each worker serves without it, and warns of it, on its own (it judges its own counters)
    with Receiver() as receiver:
        env = environment(sim, "redis://127.0.0.1:1/0", tmp_path, REDIS_TIMEOUT="0.2", ALERT_CHECK_SECONDS="0.2",
                          ALERT_WEBHOOK_URL=receiver.url + "/hook")
        with two_workers(env) as (server, port, pids):
            connections = connections_to_each(pids, port)
            for conn in connections.values():
                assert request(conn, "POST", CHAT, BODY)[0] == 200  # served without Redis
                conn.close()

            def redis_down() -> list[dict[str, Any]]:
                return [body for body in receiver.bodies if body["name"] == "dependency_down"
                        and body["labels"].get("component") == "redis"]

            deadline = time.monotonic() + 60
            while len({body["instance"] for body in redis_down()}) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            server.signal(signal.SIGTERM)
            assert server.wait(60) == 0
    told = sorted(redis_down(), key=lambda body: body["worker"])
    assert [body.pop("started_at") > 0 for body in told] == [True, True]
    assert told == [{"source": "cachegate", "status": "firing", "name": "dependency_down",
                     "message": "serving without redis", "value": 1.0, "threshold": 0.0,
                     "labels": {"component": "redis", "worker": str(index)}, "ended_at": None,
                     "instance": f"127.0.0.1:{port}/worker-{index}", "worker": index} for index in (0, 1)]


def test_no_worker_outlives_a_killed_supervisor(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> None:
    with two_workers(environment(sim, redis_url, tmp_path)) as (server, _, pids):
        server.signal(signal.SIGKILL)
        assert server.wait(30) == -signal.SIGKILL
        assert gone(pids)  # each saw its parent change, drained and stopped


@pytest.mark.parametrize(("env", "named"), [
    ({"WORKERS": "2"}, "WORKERS: more than one process needs REDIS_URL: the exact cache, ledger, rate limits and "
                       "feedback are per process otherwise"),
    ({"WORKERS": "2", "REDIS_URL": "redis://127.0.0.1:1/0", "SEMANTIC_MODE": "serve"},
     "WORKERS: more than one process cannot share the embedded semantic store"),
    ({"WORKERS": "2", "REDIS_URL": "redis://127.0.0.1:1/0", "PORT": "0"}, "WORKERS: more than one process needs a "
                                                                         "fixed PORT"),
    ({"WORKERS": "0"}, "WORKERS: expected a whole number from 1 to 256"),
])
def test_what_cannot_work_is_refused_naming_the_setting(env: dict[str, str], named: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve"], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path),
                                 "SEMANTIC_MODE": "off", **env}, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert f"cachegate: bad setting: {named}" in result.stderr


def test_a_taken_port_stops_start_up_naming_it(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:  # a listener of another program, without SO_REUSEPORT
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve", "--workers", "2", "--port", str(port)],
                                capture_output=True, text=True, timeout=60, cwd=ROOT,
                                env={"PATH": "/usr/bin:/bin", **environment(sim, redis_url, tmp_path)})
    assert result.returncode == 3
    assert f"cachegate: PORT: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "worker 0 started" not in result.stderr  # refused before any worker


def test_a_worker_that_cannot_start_stops_the_others(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> None:
    base = free_ports(2)
    with socket.socket() as taken:  # worker 1's metrics port
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        env = environment(sim, redis_url, tmp_path, METRICS_BIND_ADDRESS=f"127.0.0.1:{base}", WORKERS="2")
        result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve", "--port", str(free_port())],
                                capture_output=True, text=True, timeout=120, cwd=ROOT,
                                env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 3, result.stderr[-3000:]
    assert f"METRICS_BIND_ADDRESS: worker 1 cannot listen on 127.0.0.1:{base + 1} (port + 1)" in result.stderr
    assert re.search(r"worker 1 \(pid \d+\) exited with status 3 before it started serving", result.stderr)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]  # worker 0, stopped as it starts, stops quietly
    started = [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in result.stderr.splitlines()
               if "worker 0 started (pid" in line]
    assert started and gone(started)  # worker 0 was stopped too


def test_a_worker_dying_right_after_each_start_stops_the_supervisor(caplog: pytest.LogCaptureFixture) -> None:
    crash = [sys.executable, "-c", "raise SystemExit(1)"]
    restarts = Restarts(delay=0.05, limit=3, settle=3600)  # every death counts as early, however slow the machine
    supervisor = Supervisor(2, crash, {"PATH": "/usr/bin:/bin"}, restarts=restarts, poll=0.02)
    with caplog.at_level(logging.INFO, logger="cachegate.workers"):
        assert supervisor.run() == 1
    assert "exited with status 1, 3 times in a row within 3600s of its start" in caplog.text
    assert caplog.text.count("starting it again in 0.05s") >= 2
    assert all(worker.process is None for worker in supervisor.workers)
