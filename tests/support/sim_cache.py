"""The simulator's provider-side prompt cache: servers, stored prefixes, a fake clock and the truth.

:class:`ProviderCache` decides, for one chat request to a profiled model (see
:mod:`tests.support.cache_profiles`), which server answers, how many tokens were found in its cache and
why, and what is written. Time is :class:`SimClock`: it only moves when a test advances it
(``POST /_clock``) and by each answer's modelled time to first token, so TTL tests take no real time.
Every decision is kept in :attr:`ProviderCache.truth` (``GET /_truth``).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
from dataclasses import dataclass
from typing import Any

from tests.support.cache_profiles import CacheProfile
from tests.support.sim_wire import text_of

START = 1_000_000.0


class SimClock:
    """Seconds on the simulator's own clock; thread-safe (tests read it while the server runs)."""

    def __init__(self) -> None:
        self._now = START
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += max(0.0, seconds)
            return self._now

    def set(self, value: float) -> float:
        with self._lock:
            self._now = value
            return self._now


@dataclass
class Prompt:
    tokens: tuple[str, ...]
    marks: tuple[int, ...]  # token counts at which a cache_control mark ends a content part


@dataclass
class _Entry:
    tokens: tuple[str, ...]
    written_at: float
    visible_at: float
    expires_at: float


@dataclass
class Decision:
    server: int
    matched: int
    cached: int
    written: int
    reason: str
    ttft: float = 0.0


def tokenize(messages: list[Any], profile: CacheProfile, body: dict[str, Any]) -> Prompt:
    tokens: list[str] = []
    marks: list[int] = []
    venice = body.get("venice_parameters")
    if profile.venice_system_tokens and not (isinstance(venice, dict)
                                             and venice.get("include_venice_system_prompt") is False):
        tokens += ["<system>", *(f"venice{i}" for i in range(profile.venice_system_tokens - 1))]
    for message in messages:
        tokens.append(f"<{message.get('role', 'user')}>")
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"text": text_of(content)}]
        for part in parts:
            if isinstance(part, dict):
                tokens += str(part.get("text", "")).split()
                if part.get("cache_control"):
                    marks.append(len(tokens))
    return Prompt(tuple(tokens), tuple(marks))


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class ProviderCache:
    """``seed`` makes the ``random`` spread of unpinned requests repeat exactly: each profile draws from its
    own generator, seeded by ``seed`` and its name, so models probed side by side do not disturb each other."""

    def __init__(self, clock: SimClock, seed: int = 0) -> None:
        self.clock = clock
        self.seed = seed
        self.truth: list[dict[str, Any]] = []
        self._entries: dict[tuple[str, int], list[_Entry]] = {}
        self._rotation: dict[str, itertools.count[int]] = {}
        self._draws: dict[str, random.Random] = {}
        self._lock = threading.Lock()
        self.balance_usd, self.balance_diem = 100.0, 1000.0

    def reset(self) -> None:
        with self._lock:
            self.balance_usd, self.balance_diem = 100.0, 1000.0
            self.truth.clear()
            self._entries.clear()
            self._rotation.clear()
            self._draws.clear()

    def route(self, profile: CacheProfile, prompt: Prompt, body: dict[str, Any], headers: dict[str, str]) -> int:
        if profile.servers <= 1:
            return 0
        pin = (headers.get("x-grok-conv-id") if profile.pin == "x-grok-conv-id"
               else body.get("prompt_cache_key") if profile.pin == "prompt_cache_key" else None)
        if pin:
            seed = " ".join(prompt.tokens[:32]) + "|" + str(pin)
            return int(hashlib.sha256(seed.encode()).hexdigest(), 16) % profile.servers
        with self._lock:
            if profile.spread == "random":
                draws = self._draws.setdefault(profile.name, random.Random(f"{self.seed}:{profile.name}"))
                return draws.randrange(profile.servers)
            return next(self._rotation.setdefault(profile.name, itertools.count())) % profile.servers

    def decide(self, profile: CacheProfile, prompt: Prompt, server: int, body: dict[str, Any]) -> Decision:
        """Look the prompt up on ``server`` now, let the modelled time to first token pass on the clock,
        then write what this request stores (at the time of the answer)."""
        with self._lock:
            now = self.clock.now()
            entries = self._live(profile, server, now)
            if profile.venice_system_tokens:
                self._seed_venice(profile, prompt, entries)
            enabled = profile.caches and (profile.requires is None or profile.requires in body)
            matched, reason, found = self._match(profile, prompt, entries, now) if enabled else (
                0, f"cached only with {profile.requires}" if profile.caches else "this model does not cache", None)
            cached = profile.cached_for(matched)
            if cached == 0 and matched:
                reason = f"{matched} tokens matched, below the minimum prefix of {profile.min_prefix}"
            if cached == 0 and reason == "no stored prefix":
                reason = self._elsewhere(profile, prompt, server, now) or reason
            ttft = profile.ttft(len(prompt.tokens), cached)
            answered = self.clock.advance(ttft)
            if found is not None and cached and profile.refresh_on_hit:
                found.expires_at = max(found.expires_at, answered + profile.ttl)
            written = self._write(profile, prompt, server, answered, cached) if enabled else 0
            return Decision(server, matched, cached, written, "hit" if cached else reason, ttft)

    def record(self, entry: dict[str, Any], spent_usd: float) -> int:
        """Keep what was decided for one request, charge it; its sequence number (``sim-N`` request ids)."""
        with self._lock:
            self.balance_usd -= spent_usd
            self.balance_diem -= spent_usd * 10  # one DIEM is worth a tenth of a dollar here
            self.truth.append({"seq": len(self.truth) + 1, **entry})
            return len(self.truth)

    # -- matching -----------------------------------------------------------------------------------

    def _live(self, profile: CacheProfile, server: int, now: float) -> list[_Entry]:
        entries = self._entries.setdefault((profile.name, server), [])
        entries[:] = [e for e in entries if e.expires_at > now]
        return entries

    def _seed_venice(self, profile: CacheProfile, prompt: Prompt, entries: list[_Entry]) -> None:
        # other customers' traffic has long cached the system prompt Venice prepends
        head = prompt.tokens[:profile.venice_system_tokens]
        if head[1:2] == ("venice0",) and not any(e.tokens == head for e in entries):
            entries.append(_Entry(head, 0.0, 0.0, float("inf")))

    def _match(self, profile: CacheProfile, prompt: Prompt, entries: list[_Entry],
               now: float) -> tuple[int, str, _Entry | None]:
        if not profile.caches:
            return 0, "this model does not cache", None
        best, best_entry, pending = 0, None, False
        for entry in entries:
            if profile.matching == "prefix":
                length = _common(entry.tokens, prompt.tokens)
            elif prompt.tokens[:len(entry.tokens)] == entry.tokens:  # units and marks: whole entries only
                length = len(entry.tokens)
            else:
                continue
            if length and entry.visible_at > now:
                pending = True
                continue
            if length > best:
                best, best_entry = length, entry
        if best:
            return best, "hit", best_entry
        return 0, "written, not yet readable (write delay)" if pending else "no stored prefix", None

    def _elsewhere(self, profile: CacheProfile, prompt: Prompt, server: int, now: float) -> str | None:
        for (name, other), entries in self._entries.items():
            if name == profile.name and other != server and any(
                    e.expires_at > now and _common(e.tokens, prompt.tokens) >= profile.min_prefix for e in entries):
                return f"stored on server {other}, routed to server {server}"
        return None

    # -- writing ------------------------------------------------------------------------------------

    def _write(self, profile: CacheProfile, prompt: Prompt, server: int, now: float, cached: int) -> int:
        entries = self._entries[(profile.name, server)]
        units: list[tuple[str, ...]] = []
        if profile.matching == "marks":
            units = [prompt.tokens[:mark] for mark in prompt.marks if mark >= profile.min_prefix]
        elif profile.matching == "units":
            units = [prompt.tokens]
            for entry in entries:  # a prefix seen twice becomes a unit of its own
                shared = _common(entry.tokens, prompt.tokens)
                if shared >= profile.min_prefix and shared < len(entry.tokens):
                    units.append(prompt.tokens[:shared])
        elif not any(e.tokens[:len(prompt.tokens)] == prompt.tokens for e in entries):
            units = [prompt.tokens]  # prefix: stored unless a stored prompt already covers it
        known = {e.tokens for e in entries}
        written = 0
        for unit in units:
            if unit not in known:
                known.add(unit)
                entries.append(_Entry(unit, now, now + profile.write_delay, now + profile.ttl))
                written = max(written, profile.cached_for(len(unit)) - cached)
        return max(0, written)
