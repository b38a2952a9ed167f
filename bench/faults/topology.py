"""The stack the fault benchmark runs on, every part its own process on loopback:

    HAProxy (Debian's, ``deploy/haproxy.cfg`` on free ports)
      → ``replicas`` x ``python -m proxy.cli serve`` (this checkout), each with its own ``DATA_DIR`` and so
        its own embedded semantic store (qdrant-edge: there is no Qdrant server here to share)
          → a 3-master Redis Cluster (:class:`tests.support.redis_cluster.LocalCluster`)
          → the embedding service (``python -m embedding_service``), one for all replicas
          → the upstream simulator (``--latency``, ``--echo-key``)

``CACHE_TTL`` is short (20 s by default) so that the steady state is stationary within a TTL and so that the
upstream outage finds expired entries to serve stale (``CACHE_STALE_IF_ERROR`` keeps its default, 300 s).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from redis.crc import key_slot

from tests.support.redis_cluster import LocalCluster
from tests.support.servers import RedisServer, SubprocessServer, free_port

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
HAPROXY = "/usr/sbin/haproxy"
PREFIX = "cachegate:"
STALE_IF_ERROR = 300  # CACHE_STALE_IF_ERROR's default, which the replicas keep


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process (all its threads) so far; 0 once it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stack:
    def __init__(self, work: Path, *, replicas: int = 2, latency: float = 0.05, ttl: int = 20,
                 redis_timeout: float = 0.25, keep_logs: Path | None = None) -> None:
        self.work = work
        self.keep_logs = keep_logs  # where HAProxy's and the replicas' logs are copied at the end
        self.redis_timeout = redis_timeout
        self.cluster = LocalCluster(masters=3)
        self.sim = SubprocessServer([sys.executable, "-m", "tests.support.simulator", "--port", "{port}",
                                     "--latency", str(latency), "--echo-key"], health_path="/bare", cwd=str(ROOT))
        self.embed = SubprocessServer([sys.executable, "-m", "embedding_service", "--port", "{port}",
                                       "--log-level", "warning"], startup_timeout=180, cwd=str(ROOT),
                                      env={"PYTHONPATH": str(ROOT)})
        self.ttl = ttl
        self.replicas: list[SubprocessServer] = [self._replica(n) for n in range(replicas)]
        self.front = free_port()
        self._haproxy: subprocess.Popen[bytes] | None = None
        self._stack = contextlib.ExitStack()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.front}"

    def _replica(self, n: int) -> SubprocessServer:
        # The env is filled in at start (the cluster's and the services' ports are known by then).
        return SubprocessServer([sys.executable, "-m", "proxy.cli", "serve", "--port", "{port}"], cwd=str(ROOT),
                                health_path="/health/ready", startup_timeout=180, env={})

    def __enter__(self) -> Self:
        try:
            self._stack.enter_context(self.cluster)
            self._stack.enter_context(self.sim)
            self._stack.enter_context(self.embed)
            for n, replica in enumerate(self.replicas):
                data = self.work / f"replica-{n}"
                data.mkdir(parents=True, exist_ok=True)
                assert replica.env is not None
                replica.env.update({
                    "PYTHONPATH": str(ROOT), "UPSTREAM_BASE_URL": self.sim.url + "/v1", "REDIS_URL": self.cluster.url,
                    "EMBEDDING_URL": self.embed.url, "SEMANTIC_MODE": "serve", "DATA_DIR": str(data), "LOG_PATH": "",
                    "LOG_LEVEL": "warning", "CACHE_TTL": str(self.ttl), "REDIS_TIMEOUT": str(self.redis_timeout),
                    "DRAIN_DELAY": "3", "DRAIN_TIMEOUT": "10", "ADMIN_API_KEY": "fault-bench-admin"})
                self._stack.enter_context(replica)
            self._start_haproxy()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._haproxy is not None:
            self._haproxy.terminate()
            self._haproxy.wait(10)
        if self.keep_logs is not None:
            self.keep_logs.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy(self.work / "haproxy.log", self.keep_logs / "haproxy.log")
            for n, replica in enumerate(self.replicas):
                with contextlib.suppress(OSError, ValueError):
                    (self.keep_logs / f"replica-{n}.log").write_text(replica.output())
        self._stack.close()

    def _start_haproxy(self) -> None:
        config = HAPROXY_CFG.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{self.front}")
        servers = "".join(f"    server replica{n + 1} 127.0.0.1:{r.port} check\n" for n, r in enumerate(self.replicas))
        config = re.sub(r"(?m)^    server replica\d+ .*\n", "", config).rstrip("\n") + "\n" + servers
        path = self.work / "haproxy.cfg"
        # its log (one line a request, with the termination state: who closed what) for a failure's cause
        config = config.replace("global\n", "global\n    log stdout format raw local0\n", 1).replace(
            "defaults\n", "defaults\n    log global\n    option httplog\n", 1)
        path.write_text(config)
        with (self.work / "haproxy.log").open("wb") as log:  # the child keeps its own copy of the descriptor
            self._haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(path)], stdout=log, stderr=subprocess.STDOUT)
        self.wait_in_rotation(len(self.replicas))

    def wait_in_rotation(self, count: int, timeout: float = 30) -> None:
        """Until HAProxy has ``count`` replicas up (its stats say so), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health/ready", timeout=1).status_code == 200 and self.up() >= count:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"HAProxy did not get {count} replicas up in {timeout}s")

    def up(self) -> int:
        """Replicas that answer /health/ready 200 (what HAProxy's checks see, 2 s later at most)."""
        count = 0
        for replica in self.replicas:
            with contextlib.suppress(httpx.HTTPError):
                count += httpx.get(replica.url + "/health/ready", timeout=1).status_code == 200
        return count

    # -- what the runs do to it ------------------------------------------------------------------------

    def secret_master(self) -> RedisServer:
        """The master that holds the tenant secret: the worst one to lose (see the master-kill run)."""
        return self.cluster.node_of_slot(key_slot(f"{PREFIX}tenant-secret".encode()))

    def other_master(self) -> RedisServer:
        secret = self.secret_master()
        return next(node for node in self.cluster.primaries() if node is not secret)

    def asked(self, prompt: str) -> int:
        return int(httpx.get(self.sim.url + "/_sim/asked", params={"prompt": prompt}, timeout=5).json()["calls"])

    def outage(self, seconds: float, status: int = 503) -> None:
        httpx.post(self.sim.url + "/_sim/outage", json={"status": status, "seconds": seconds},
                   timeout=5).raise_for_status()

    def counters(self) -> Counter[str]:
        """Flight outcomes and errors, summed over the replicas (their /metrics), to explain a burst's calls."""
        out: Counter[str] = Counter()
        for replica in self.replicas:
            with contextlib.suppress(httpx.HTTPError):
                for line in httpx.get(replica.url + "/metrics/prometheus", timeout=5).text.splitlines():
                    name, _, rest = line.partition("{")
                    if name not in ("cachegate_cache_lookups_total", "cachegate_errors_total"):
                        continue
                    labels, _, value = rest.rpartition("} ")
                    if name == "cachegate_errors_total" or 'tier="flight"' in labels:
                        out[labels] += int(float(value))
        return out

    def processes(self) -> dict[str, list[int | None]]:
        """Every process of the stack by role, for CPU accounting."""
        return {"replicas": [r.pid for r in self.replicas], "embedding": [self.embed.pid],
                "redis": [node.pid for node in self.cluster.nodes], "haproxy": [
                    self._haproxy.pid if self._haproxy else None], "upstream": [self.sim.pid]}

    def cpu(self) -> dict[str, float]:
        return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.processes().items()}
