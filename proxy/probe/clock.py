"""The probe's sense of time, injected: the real clock, or a test's fake one.

Every duration the probe measures (latency, time to first token) and every wait it makes (between
repeats, the idle gaps of the TTL search) goes through a :class:`Clock`, so tests can drive the
upstream simulator's fake clock and a TTL search over minutes takes no real time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale: only differences mean anything."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, for timestamps in reports and schedules."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``perf_counter`` for durations, ``time.time`` for timestamps, ``asyncio.sleep``."""

    def now(self) -> float:
        return time.perf_counter()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
