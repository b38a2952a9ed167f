"""What one upstream simulator has seen: its counters, the last request, every target as it arrived.

Kept apart from :mod:`tests.support.simulator` (the server) and :mod:`tests.support.sim_answers` (the
OpenAI endpoints), which both write to it; tests read it from their own thread while the server runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.sim_cache import START, ProviderCache, SimClock
from tests.support.sim_load import LoadKnobs


@dataclass
class SimState:
    """Counters of one simulator; readable from the test thread while the server runs in another."""

    chat_calls: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    last_headers: dict[str, str] = field(default_factory=dict)
    last_query: str = ""
    last_body: Any = None
    seen_prompts: set[bytes] = field(default_factory=set)
    streams_abandoned: int = 0  # streams whose client went away before the end
    #: every request target as it arrived (raw path, still percent-encoded, and query), in order
    targets: list[str] = field(default_factory=list)
    clock: SimClock = field(default_factory=SimClock)
    load: LoadKnobs = field(default_factory=LoadKnobs)
    cache: ProviderCache = field(init=False)

    def __post_init__(self) -> None:
        self.cache = ProviderCache(self.clock)

    def stream_abandoned(self) -> None:
        self.streams_abandoned += 1

    def reset(self) -> None:
        self.chat_calls = 0
        self.streams_abandoned = 0
        self.calls.clear()
        self.targets.clear()
        self.last_headers = {}
        self.last_body = None
        self.seen_prompts.clear()
        self.cache.reset()
        self.clock.set(START)
        self.load.reset()

    def stats(self) -> dict[str, Any]:
        return {"chat_calls": self.chat_calls, "calls": dict(self.calls),
                "last_headers": dict(self.last_headers), "last_body": self.last_body}


class RecordTargets:
    """Pure ASGI: notes each request's target exactly as it arrived (``raw_path``: nothing decoded or
    normalised), so tests can tell what an upstream really received."""

    def __init__(self, app: Any, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            target = scope.get("raw_path") or scope["path"].encode()
            self.state.targets.append((target + (b"?" + query if query else b"")).decode("latin-1"))
        await self.app(scope, receive, send)
