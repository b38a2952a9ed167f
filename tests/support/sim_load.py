"""What a load benchmark needs from the upstream simulator, beside the per-request ``x-sim-*`` faults.

- ``latency``: every call waits this long before it answers (``--latency``), as a real model would;
- an outage: ``POST /_sim/outage`` with ``{"status": 503, "seconds": 15}`` makes every call answer that
  status for that long (``{"seconds": 0}`` ends it), whoever asks: the proxies cannot tell it from a
  provider's outage;
- ``asked``: how many chat calls arrived for each last user turn (``GET /_sim/asked?prompt=…``), so a
  benchmark can count the upstream calls one prompt cost across replicas;
- ``echo_key`` (``--echo-key``): answers end with `` (key <tag>)``, :func:`key_tag` of the caller's
  ``Authorization``, so a cached answer handed to another tenant is visible in its content.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.sim_wire import error_response, json_response


def key_tag(authorization: str) -> str:
    """Eight hex digits that name the caller's key (its ``Authorization`` header, as sent)."""
    return hashlib.sha256(authorization.encode()).hexdigest()[:8]


@dataclass
class LoadKnobs:
    latency: float = 0.0
    echo_key: bool = False
    asked: Counter[str] = field(default_factory=Counter)
    outage_status: int = 0
    outage_until: float = 0.0  # time.monotonic()

    def outage(self) -> int:
        """The status every call answers now, or 0 outside an outage."""
        return self.outage_status if time.monotonic() < self.outage_until else 0

    def start_outage(self, status: int, seconds: float) -> None:
        self.outage_status, self.outage_until = status, time.monotonic() + seconds

    def tagged(self, text: str, authorization: str) -> str:
        return f"{text} (key {key_tag(authorization)})" if self.echo_key else text

    def reset(self) -> None:
        self.asked.clear()
        self.outage_status, self.outage_until = 0, 0.0


def load_routes(knobs: LoadKnobs) -> list[Route]:
    async def asked(request: Request) -> Response:
        return json_response({"calls": knobs.asked[request.query_params.get("prompt", "")]})

    async def outage(request: Request) -> Response:
        try:
            change = orjson.loads(await request.body() or b"{}")
            knobs.start_outage(int(change.get("status", 503)), float(change["seconds"]))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
            return error_response(400, 'expected {"status": 503, "seconds": 15}')
        return json_response({"ok": True})

    return [Route("/_sim/asked", asked, methods=["GET"]), Route("/_sim/outage", outage, methods=["POST"])]
