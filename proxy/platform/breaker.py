"""A circuit breaker per Redis node: after a failure the node is skipped for a short cool-down.

A hung node costs every call to it one ``REDIS_TIMEOUT``, and in a cluster a failed call also makes the
client reload the topology. With the breaker, the first failure opens the node's circuit: calls to it fail
at once (the cache takes them as misses) until the cool-down ends. Then one call is let through as a
trial, and the circuit is armed again for another cool-down, so a node that is still down costs one
timeout per cool-down, not one per request; a trial that succeeds closes the circuit. A ping that answers
(``/health``) closes it too. Only the node's failing to answer opens it: an error the node *answers* with
(a wrong command, say) says the node is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    def __init__(self, cooldown: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._open_until: dict[str, float] = {}
        self._reasons: dict[str, str] = {}
        self.skipped = 0  # calls refused while a circuit was open (for /metrics and the tests)

    def allow(self, node: str) -> bool:
        """May a call go to ``node`` now? True when its circuit is closed, or for one trial per cool-down."""
        until = self._open_until.get(node)
        if until is None:
            return True
        now = self._clock()
        if now < until:
            self.skipped += 1
            return False
        self._open_until[node] = now + self.cooldown  # this call is the trial; the others wait for it
        return True

    def failed(self, node: str, reason: str = "") -> None:
        self._open_until[node] = self._clock() + self.cooldown
        self._reasons[node] = reason

    def succeeded(self, node: str) -> None:
        if self._open_until:
            self._open_until.pop(node, None)

    def reason(self, node: str) -> str:
        """The failure that opened ``node``'s circuit."""
        return self._reasons.get(node, "")

    def open_nodes(self) -> list[str]:
        now = self._clock()
        return sorted(node for node, until in self._open_until.items() if until > now)

    def is_open(self, node: str) -> bool:
        until = self._open_until.get(node)
        return until is not None and self._clock() < until
