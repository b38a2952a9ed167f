"""Client-side caching on a Redis Cluster: one :class:`~proxy.platform.tracking.Tracker` per primary.

Each primary announces the changes to its own keys only, so the local copy needs every primary's tracking
connection: it may hold keys while all of them are established (:attr:`ClusterTracking.live`). The set of
primaries is looked at every :data:`~proxy.platform.tracking.HEARTBEAT` seconds (the Redis home reloads the
topology after a node failed; see :mod:`proxy.platform.redis_cluster`); when it changed (a failover, a node
added or removed), the copy is flushed and every primary is tracked afresh: a key whose slot moved is then
announced by its new primary. Keys moving between primaries that stay (resharding) need nothing more: the
source's delete and the target's restore are both announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from proxy.errors import BackendError
from proxy.platform.tasks import cancel_and_wait
from proxy.platform.tracking import HEARTBEAT, Connect, Sink, Tracker, tracking_options

logger = logging.getLogger("cachegate.redis.tracking")

Primaries = Callable[[], Awaitable[Sequence[Any]]]


def connect_to(node: Any) -> Connect:
    """A tracking connection to one cluster node (a ``ClusterNode``), made like the client's to it."""
    async def connect() -> Any:
        return node.connection_class(**tracking_options(node.connection_kwargs))
    return connect


class ClusterTracking:
    def __init__(self, primaries: Primaries, *, prefix: str, timeout: float, every: float = HEARTBEAT,
                 connect: Callable[[Any], Connect] = connect_to) -> None:
        self._primaries = primaries
        self._connect = connect
        self.prefix = prefix
        self.timeout = timeout
        self.every = every
        self.trackers: dict[str, Tracker] = {}
        self.sinks: list[Sink] = []
        self.topology_changes = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        trackers = self.trackers
        return bool(trackers) and all(tracker.live for tracker in trackers.values())

    def attach(self, sink: Sink) -> None:
        self.sinks.append(sink)
        for tracker in self.trackers.values():
            tracker.attach(sink)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="redis-tracking-cluster")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        trackers, self.trackers = self.trackers, {}
        for tracker in trackers.values():
            await tracker.stop()

    async def _watch(self) -> None:
        while True:
            try:
                nodes = {node.name: node for node in await self._primaries()}
                if nodes and set(nodes) != set(self.trackers):
                    await self._retrack(nodes)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the topology could not be read: asked again at the next turn
                self.last_error = str(exc.message if isinstance(exc, BackendError) else exc)
                logger.debug("reading the cluster's primaries for tracking failed: %s", exc)
            await asyncio.sleep(self.every)

    async def _retrack(self, nodes: dict[str, Any]) -> None:
        old, self.trackers = self.trackers, {}  # not live from here: nothing is held or kept meanwhile
        for sink in self.sinks:
            sink.flush()
        for tracker in old.values():
            await tracker.stop()
        if old:
            self.topology_changes += 1
            logger.info("cluster primaries changed (%s → %s): the local copy is flushed and tracked afresh",
                        ", ".join(sorted(old)), ", ".join(sorted(nodes)))
        for name, node in sorted(nodes.items()):
            tracker = Tracker(self._connect(node), prefix=self.prefix, timeout=self.timeout, node=name)
            for sink in self.sinks:
                tracker.attach(sink)
            self.trackers[name] = tracker
            tracker.start()

    async def check(self) -> None:
        if not self.trackers:
            raise BackendError("redis", "client-side cache tracking: the cluster's primaries are not known yet"
                                        + (f" ({self.last_error})" if self.last_error else ""))
        for tracker in self.trackers.values():
            await tracker.check()

    def status(self) -> dict[str, Any]:
        return {"live": self.live, "topology_changes": self.topology_changes,
                "nodes": {name: tracker.status() for name, tracker in self.trackers.items()}}
