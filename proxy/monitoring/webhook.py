"""``ALERT_WEBHOOK_URL``: a JSON POST when a warning starts and when it ends.

:meth:`Webhook.notify` only appends to a bounded queue (the oldest message goes when it is full, and is
counted): nothing on the request path or in the alert check ever waits for the receiver. The ``alert-webhook``
job delivers what is due, one message at a time in order; a message that fails (no answer within
:data:`TIMEOUT`, a connection error, any status but 2xx) is tried again after a back-off that doubles from
:data:`FIRST_RETRY` to :data:`LAST_RETRY` seconds, at most :data:`ATTEMPTS` times, then dropped with a log line.

The body (``Content-Type: application/json``)::

    {"source": "cachegate", "status": "firing" | "resolved", "name": "hit_rate_low", "message": "...",
     "value": 0.08, "threshold": 0.2, "labels": {...}, "started_at": 1767225600.0, "ended_at": null,
     "instance": "host:3000", "worker": null}

Under ``cachegate serve --workers N`` each worker sends its own (it judges its own share of the traffic), named
``"instance": "host:3000/worker-2"``, ``"worker": 2`` and ``"worker": "2"`` among the labels
(:class:`proxy.monitoring.alerts.Origin`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from proxy.component import Contribution, Job

logger = logging.getLogger("cachegate.alerts")

TIMEOUT = 5.0
FIRST_RETRY = 1.0
LAST_RETRY = 60.0
ATTEMPTS = 8
QUEUE = 200
DELIVER_EVERY = 0.5


@dataclass
class Message:
    body: dict[str, Any]
    attempts: int = 0
    due: float = 0.0


class Webhook:
    def __init__(self, url: str, *, timeout: float = TIMEOUT, first_retry: float = FIRST_RETRY,
                 last_retry: float = LAST_RETRY, attempts: int = ATTEMPTS, queue: int = QUEUE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.timeout = timeout
        self.first_retry = first_retry
        self.last_retry = last_retry
        self.attempts = attempts
        self._clock = clock
        self.queue: collections.deque[Message] = collections.deque()
        self.limit = queue
        self.sent = 0
        self.dropped = 0
        self._client: httpx.AsyncClient | None = None

    def notify(self, body: dict[str, Any]) -> None:
        """Queue ``body`` for delivery; never waits."""
        if len(self.queue) >= self.limit:
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(Message(body))

    async def deliver(self) -> None:
        """Send what is due, in order; stop at the first message that must wait for its retry."""
        while self.queue:
            message = self.queue[0]
            if message.due > self._clock():
                return
            if await self._send(message):
                self.queue.popleft()
                self.sent += 1
                continue
            message.attempts += 1
            if message.attempts >= self.attempts:
                self.queue.popleft()
                self.dropped += 1
                logger.warning("alert webhook: gave up on %s after %d attempts", message.body.get("name"),
                               message.attempts)
                continue
            message.due = self._clock() + min(self.last_retry, self.first_retry * 2 ** (message.attempts - 1))
            return

    async def _send(self, message: Message) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.post(self.url, json=message.body)
        except httpx.HTTPError as exc:
            logger.info("alert webhook: %s (attempt %d)", type(exc).__name__, message.attempts + 1)
            return False
        if response.is_success:
            return True
        logger.info("alert webhook answered %d (attempt %d)", response.status_code, message.attempts + 1)
        return False

    # -- the component --------------------------------------------------------------------------------

    def contribution(self) -> Contribution:
        return Contribution(jobs=[Job("alert-webhook", DELIVER_EVERY, self.deliver)])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        try:  # what is due goes out once more (bounded); retries still waiting are dropped
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.deliver(), self.timeout)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None
