"""The probe's :class:`~proxy.probe.clock.Clock` on the simulator's fake clock, over HTTP (``/_clock``).

``now`` reads the simulator's time, which moves by each answer's modelled time to first token, so
latencies measured with it are exact; ``sleep`` advances it, so a TTL search over an hour takes no
real time. Blocking calls are fine here: the simulator runs in another thread (or process).
"""

from __future__ import annotations

import httpx


class SimHttpClock:
    def __init__(self, sim_url: str) -> None:
        self._client = httpx.Client(base_url=sim_url, timeout=10.0)
        self.slept = 0.0  # total seconds the probe waited, for tests

    def now(self) -> float:
        return float(self._client.get("/_clock").json()["now"])

    def wall(self) -> float:
        return self.now()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept += seconds
            self._client.post("/_clock", json={"advance": seconds}).raise_for_status()

    def close(self) -> None:
        self._client.close()
