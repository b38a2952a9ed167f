"""Debian's HAProxy with ``deploy/haproxy.cfg`` in front of two ``cachegate serve`` replicas: requests are
balanced round robin, and a replica sent SIGTERM is taken out by its readiness check while it still
serves, so no client request fails while it drains and exits."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.monitoring.helpers import metrics
from tests.support.browser import in_ci
from tests.support.servers import SimulatorServer, SubprocessServer, free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"


def require_haproxy() -> str:
    """haproxy's path; skip without it (fail in CI, where `make test` installs it from Debian)."""
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)
    if found:
        return found
    message = "haproxy is not installed (make haproxy, or apt-get install haproxy)"
    if in_ci():
        pytest.fail(message + ": the HAProxy test must run in CI", pytrace=False)
    pytest.skip(message)


def replica(sim: SimulatorServer, tmp_path: Path, name: str) -> SubprocessServer:
    env = {"UPSTREAM_BASE_URL": sim.base_url, "DATA_DIR": str(tmp_path / name), "SEMANTIC_MODE": "off",
           "LOG_PATH": "", "DRAIN_DELAY": "6", "DRAIN_TIMEOUT": "10"}
    return SubprocessServer([sys.executable, "-m", "proxy.cli", "serve", "--port", "{port}"], env=env,
                            health_path="/health/ready")


@pytest.fixture
def balanced(sim: SimulatorServer, tmp_path: Path) -> Iterator[tuple[str, list[SubprocessServer]]]:
    binary = require_haproxy()
    replicas = [replica(sim, tmp_path, name) for name in ("one", "two")]
    for server in replicas:
        server.start()
    front = free_port()
    config = CONFIG.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{front}")
    config = re.sub(r"127\.0\.0\.1:3001", f"127.0.0.1:{replicas[0].port}", config)
    config = re.sub(r"127\.0\.0\.1:3002", f"127.0.0.1:{replicas[1].port}", config)
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as file:
        file.write(config)
    haproxy = subprocess.Popen([binary, "-db", "-f", file.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{front}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if haproxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {haproxy.stderr.read().decode() if haproxy.stderr else ''}")
            time.sleep(0.1)
        yield url, replicas
    finally:
        haproxy.terminate()
        haproxy.wait(10)
        for server in replicas:
            server.stop()
        Path(file.name).unlink()


def chat(url: str, n: int) -> int:
    response = httpx.post(url + "/v1/chat/completions", timeout=30,
                          json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"balanced {n}"}]})
    return response.status_code


def served(server: SubprocessServer) -> int:
    return int(metrics(server)["cache_performance"]["total_requests"])  # type: ignore[arg-type]


def test_requests_are_balanced_and_a_draining_replica_is_taken_out(balanced: tuple[str, list[SubprocessServer]]
                                                                    ) -> None:
    url, (one, two) = balanced
    assert [chat(url, n) for n in range(10)] == [200] * 10
    assert (served(one), served(two)) == (5, 5)  # round robin, each request on a connection of its own

    one.signal(signal.SIGTERM)  # readiness 503 for DRAIN_DELAY (6 s) while it still serves
    statuses, taken_out_while_alive = [], False
    before = served(one)
    deadline = time.monotonic() + 15
    n = 10
    while time.monotonic() < deadline and not taken_out_while_alive:
        batch = [chat(url, n + i) for i in range(4)]
        statuses += batch
        n += 4
        try:
            alive = httpx.get(one.url + "/health/live", timeout=1).status_code == 200
            now = served(one)
        except httpx.HTTPError:
            break  # it stopped accepting before HAProxy took it out: the assert below says so
        taken_out_while_alive = alive and now == before
        before = now
        time.sleep(0.2)
    assert taken_out_while_alive, "HAProxy still sent requests to the draining replica until it stopped"
    assert httpx.get(one.url + "/health/ready", timeout=1).status_code == 503
    assert set(statuses) == {200}  # no client saw the drain
    assert one.wait(30) in (0, -signal.SIGTERM)
    assert [chat(url, 100 + i) for i in range(4)] == [200] * 4  # the other one serves everything
    served_by_two = served(two)
    assert served_by_two >= 5 + 4
