"""Book-keeping for dependencies the cache may lose (Redis, Qdrant, the embedding service).

A failure is counted, logged (at most once per :data:`LOG_EVERY` seconds per component, so an outage
does not flood the log) and reported to the observer; ``/health`` shows the last error. The request that
met the failure goes on to the upstream: the cache never turns a failure into a 5xx.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from proxy.contracts import Observer
from proxy.redaction import scrub

LOG_EVERY = 5.0
logger = logging.getLogger("cachegate.failopen")


@dataclass
class ComponentState:
    name: str
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_ok_at: float | None = None
    _last_logged: float = 0.0

    @property
    def degraded(self) -> bool:
        return self.last_error_at is not None and (self.last_ok_at is None or self.last_error_at > self.last_ok_at)

    def snapshot(self) -> dict[str, Any]:
        return {"failures": self.failures, "last_error": self.last_error, "last_error_at": self.last_error_at,
                "degraded": self.degraded}


class FailOpen:
    """One per app: tracks every component's state and reports failures."""

    def __init__(self, observer: Observer) -> None:
        self._observer = observer
        self.components: dict[str, ComponentState] = {}

    def state(self, component: str) -> ComponentState:
        state = self.components.get(component)
        if state is None:
            state = self.components[component] = ComponentState(component)
        return state

    def failed(self, component: str, error: BaseException) -> None:
        state = self.state(component)
        now = time.time()
        state.failures += 1
        state.last_error = str(error) or type(error).__name__
        state.last_error_at = now
        if now - state._last_logged >= LOG_EVERY:
            state._last_logged = now
            logger.warning("%s failed, serving without it (failures so far: %d): %s", component,
                           state.failures, scrub(state.last_error))
        self._observer.backend_error(component, error)

    def succeeded(self, component: str) -> None:
        state = self.components.get(component)
        if state is not None and state.degraded:
            state.last_ok_at = time.time()
            logger.info("%s is back", component)
