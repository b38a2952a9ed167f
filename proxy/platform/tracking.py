"""Redis server-assisted client-side caching: one connection that hears which keys changed.

Redis (6.0 and later) can tell a client which keys were modified (``CLIENT TRACKING``; see
https://redis.io/docs/latest/develop/reference/client-side-caching/). A :class:`Tracker` keeps one connection
per Redis node for that, in RESP2, so one connection does it all:

1. ``CLIENT ID``, then ``CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <prefix>``: in broadcasting
   mode Redis announces every change to a key under the prefix, whoever made it and whoever read the key,
   so the reads can go over any other connection (the batched reader's) and the server keeps no per-key
   table for us. (``NOLOOP`` would hide changes made *by this connection*; it makes none, so it is not
   asked for: our own writes, made over other connections, invalidate us too, as they must.)
2. ``SUBSCRIBE __redis__:invalidate``: the announcements arrive as pub/sub messages on it, each a list of
   keys, or nil: everything (``FLUSHALL``/``FLUSHDB``). Expiry and eviction are changes, announced too.

The :class:`Sink` (the exact tier's local copy, :mod:`proxy.cache.tracked`) is told of every key and of every
flush. It may hold keys only while :attr:`Tracker.live`: the connection is subscribed, and a message (an
announcement, or the answer to a ``PING`` sent after :data:`HEARTBEAT` seconds of silence) came no longer
than two heartbeats ago (a silently dead link is given up within 2 s, the bound on what it can hide; a
closed one at once). When the connection fails, is killed, or goes silent, the sink is flushed at once
(what it holds may have changed unannounced) and the tracker connects again in the background, with
backoff; no request waits for it. A failure is counted and logged and shown by ``/health``
(``redis_client_cache``: non-critical, since no request needs it), never raised to a request.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from proxy.errors import BackendError
from proxy.platform.tasks import cancel_and_wait, stop_if_cancelled

logger = logging.getLogger("cachegate.redis.tracking")

CHANNEL = b"__redis__:invalidate"
#: Seconds of silence after which the connection is asked for a PING; no answer a heartbeat later, and the
#: connection is taken as lost: a silently dead link goes unnoticed for at most two heartbeats.
HEARTBEAT = 1.0
#: Backoff between attempts to connect again: doubled from the first to the last, with jitter.
FIRST_BACKOFF = 0.05
LAST_BACKOFF = 5.0

Connect = Callable[[], Awaitable[Any]]


class Sink(Protocol):
    """What is told of the changes: a key changed (drop it), or anything may have (drop everything)."""

    def invalidate(self, keys: Sequence[str]) -> None: ...

    def flush(self) -> None: ...


class Tracking(Protocol):
    """What the local copy depends on: one :class:`Tracker`, or one per primary of a cluster."""

    @property
    def live(self) -> bool:
        """Every connection it needs is established: the copy may hold and serve keys."""
        ...

    def attach(self, sink: Sink) -> None: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


def tracking_options(connection_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A pool's connection options for a tracking connection: RESP2 (pub/sub messages as plain replies), no
    retry of its own (the tracker reconnects, flushing first), no pool back-reference."""
    options = {key: value for key, value in connection_kwargs.items() if key != "connection_pool"}
    return {**options, "protocol": 2, "retry": Retry(NoBackoff(), 0)}


class Tracker:
    """One tracking connection (to the node ``connect`` reaches), feeding one :class:`Sink`."""

    def __init__(self, connect: Connect, *, prefix: str, timeout: float, node: str = "primary",
                 heartbeat: float = HEARTBEAT) -> None:
        self._connect = connect
        self.prefix = prefix
        self.timeout = timeout
        self.node = node
        self.heartbeat = heartbeat
        self.sinks: list[Sink] = []
        self.live = False
        self.connects = 0  # tracking established
        self.failures = 0  # attempts that failed, and connections lost
        self.messages = 0  # invalidation messages
        self.keys = 0  # keys they named
        self.flushes = 0  # whole-sink flushes (nil messages, and every loss of the connection)
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None

    def attach(self, sink: Sink) -> None:
        self.sinks.append(sink)

    # -- running --------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"redis-tracking-{self.node}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)  # redis-py's read was seen to lose a cancellation
        self._down()
        await self._close()

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            try:
                await self._establish()
                backoff = FIRST_BACKOFF  # it was established: a later loss starts the backoff again
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure, whatever its kind: tracking never fails anything else
                self.failures += 1
                self.last_error = _describe(exc, self.timeout)
                logger.warning("Redis tracking on %s lost (%s): the local copy is flushed and bypassed until it "
                               "is back", self.node, self.last_error)
            finally:
                self._down()
                await self._close()
            stop_if_cancelled()  # a read that lost the cancellation ends in the except above
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, LAST_BACKOFF)

    async def _establish(self) -> None:
        async with asyncio.timeout(self.timeout):
            self._connection = connection = await self._connect()
            await connection.connect()
            await connection.send_command("CLIENT", "ID")
            own = int(await connection.read_response())
            await connection.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", own, "BCAST", "PREFIX", self.prefix)
            await connection.read_response()
            await connection.send_command("SUBSCRIBE", CHANNEL)
            while True:  # the confirmation comes first; nothing else can be sent to us before it
                reply = await connection.read_response()
                if isinstance(reply, list) and reply and reply[0] == b"subscribe":
                    break
        self._flush()  # nothing is held while down; this also voids what was being fetched meanwhile
        self.live = True
        self.connects += 1
        logger.info("Redis tracking on %s established (BCAST, prefix %s)", self.node, self.prefix)

    async def _listen(self) -> None:
        connection = self._connection
        pinged = False
        while True:
            message = await connection.read_response(timeout=self.heartbeat)
            if message is None:  # silence: ask, and give up when a heartbeat later nothing came back
                if pinged:
                    raise BackendError("redis", f"tracking connection silent: no answer to PING in {self.heartbeat:g}s")
                await connection.send_command("PING")
                pinged = True
                continue
            pinged = False  # any message says the connection is alive
            self._receive(message)

    def _receive(self, message: Any) -> None:
        if not (isinstance(message, list) and len(message) == 3 and message[0] == b"message"
                and message[1] == CHANNEL):
            return  # the PING's answer, or the subscription's confirmation
        self.messages += 1
        keys = message[2]
        if keys is None:
            self._flush()
            return
        names = [key.decode() if isinstance(key, bytes) else str(key) for key in keys]
        self.keys += len(names)
        for sink in self.sinks:
            sink.invalidate(names)

    def _flush(self) -> None:
        self.flushes += 1
        for sink in self.sinks:
            sink.flush()

    def _down(self) -> None:
        if self.live:
            self.live = False
            self._flush()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.disconnect(nowait=True)
            except Exception:  # a connection already torn down
                logger.debug("closing the tracking connection failed", exc_info=True)

    # -- looking ---------------------------------------------------------------------------------------------

    async def check(self) -> None:
        """``/health``: raises while tracking is not established (the local copy is bypassed meanwhile)."""
        if not self.live:
            raise BackendError("redis", f"client-side cache tracking on {self.node} is not established"
                                        + (f" ({self.last_error})" if self.last_error else ""))

    def status(self) -> dict[str, Any]:
        return {"node": self.node, "live": self.live, "connects": self.connects, "failures": self.failures,
                "messages": self.messages, "keys": self.keys, "flushes": self.flushes,
                "last_error": self.last_error}


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, BackendError):
        return exc.message.removeprefix("redis: ")
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g}s (REDIS_TIMEOUT)"
    return f"{type(exc).__name__}: {exc}"
