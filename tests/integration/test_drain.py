"""``cachegate serve`` told to stop (SIGTERM): readiness turns 503 at once while liveness stays 200, new
requests are still answered for DRAIN_DELAY, a stream in flight runs to its end, then the ledger is flushed
and the process exits."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.monitoring.helpers import metrics
from tests.support.servers import SimulatorServer, SubprocessServer


def test_sigterm_drains_then_exits(sim: SimulatorServer, tmp_path: Path, start_proxy: Any) -> None:
    env = {"UPSTREAM_BASE_URL": sim.base_url, "DATA_DIR": str(tmp_path / "data"), "SEMANTIC_MODE": "off",
           "LOG_PATH": str(tmp_path / "requests.log"), "DRAIN_DELAY": "1.5", "DRAIN_TIMEOUT": "30"}
    server = SubprocessServer([sys.executable, "-m", "proxy.cli", "serve", "--port", "{port}"], env=env,
                              health_path="/health/ready")
    server.start()
    streamed: dict[str, Any] = {}

    def stream() -> None:  # about 4 s: still running when the server stops accepting
        body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "drain me"}]}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60,
                          headers={"x-sim-chunk-delay": "0.4"}) as response:
            streamed["status"] = response.status_code
            streamed["text"] = response.read().decode()

    try:
        assert httpx.get(server.url + "/health/ready").json()["status"] == "ready"
        reader = threading.Thread(target=stream)
        reader.start()
        time.sleep(0.5)  # the stream has begun
        server.signal(signal.SIGTERM)
        ready = httpx.get(server.url + "/health/ready", timeout=5)
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        assert httpx.get(server.url + "/health/live", timeout=5).status_code == 200
        during = httpx.post(server.url + "/v1/chat/completions", timeout=10,
                            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still here?"}]})
        assert during.status_code == 200  # the balancer may still send some until it sees the 503
        reader.join(60)
        assert streamed["status"] == 200
        assert streamed["text"].rstrip().endswith("data: [DONE]"), streamed["text"][-300:]
        code = server.wait(60)
        assert code in (0, -signal.SIGTERM), server.output()[-2000:]
        assert "Waiting for connections to close" in server.output() or "draining" in server.output()
    finally:
        server.stop()
    after = start_proxy(data_dir=str(tmp_path / "data"))  # the ledger was flushed before the exit
    assert metrics(after)["cache_performance"]["total_requests"] == 2
