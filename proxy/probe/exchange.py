"""One probe request and its answer, kept as evidence; and the client that makes them.

An :class:`Exchange` records what was sent (hash, hints, test and step, the run's correlation id) and what
came back: status, the normalised cache figures next to the raw ``usage``, latency and time to first
token, the upstream's request id and host, and Venice's balance headers. Streams are read to their end
through :mod:`proxy.core.sse`; the usage comes from the final chunk (or Moonshot's ``choices[0].usage``).
What a request is charged to the budget is :attr:`Exchange.charge`: the usage where the answer has one, else
the estimate of :mod:`proxy.probe.charge` from the prompt and the generated text that arrived.

With ``capture`` (the monitor's microscope) an exchange also keeps the request as sent (the key redacted)
and the answer as received (a stream as its events), so a person can read and replay it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.contracts import Upstream
from proxy.core.sse import SSEParser
from proxy.core.usage import ABSENT, CacheUsage, normalize_usage, usage_in
from proxy.errors import UpstreamError, UpstreamTimeoutError
from proxy.probe.charge import Charge, charge, completion_estimate, generated_chars, prompt_chars, tokens_of_chars
from proxy.probe.clock import Clock
from proxy.probe.request import build_request, encode, rejected_param, request_hash

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")
REDACTED = "<redacted>"
CAPTURE_LIMIT = 64_000  # characters of an answer kept by capture


@dataclass
class Exchange:
    model: str
    test: str
    step: str
    role: str  # prime (first request of a fresh prompt) | repeat | probe
    correlation_id: str
    started_at: float
    hints: tuple[str, ...] = ()
    stream: bool = False
    status: int = 0
    latency: float | None = None
    ttft: float | None = None
    usage: CacheUsage = ABSENT
    raw_usage: Any = None
    request_hash: str = ""
    upstream_request_id: str | None = None
    host: str | None = None
    balance_usd: float | None = None
    balance_diem: float | None = None
    error: str | None = None
    retried_without: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None  # with capture: method, url, headers (key redacted), body
    response: dict[str, Any] | None = None  # with capture: status, headers, body (a stream: its events)
    prompt_estimate: int = 0  # tokens the prompt is estimated at, for an answer without usage
    completion_chars: int = 0  # characters of generated text that arrived
    max_tokens: int | None = None  # the cap sent (None: the model rejected it)
    timed_out: bool = False  # no answer in time to a request that was sent

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    @property
    def cached(self) -> int | None:
        return self.usage.cached_tokens if self.ok else None

    @property
    def hit(self) -> bool:
        return bool(self.cached)

    @property
    def billed(self) -> bool:
        """Whether the upstream took the prompt, so the request costs tokens: it answered 200, or time ran
        out after the request was sent (it had the prompt, and may be generating and billing an answer
        nobody reads: counted, so the budget errs towards stopping early)."""
        return self.status == 200 or self.timed_out

    @property
    def charge(self) -> Charge:
        return charge(self.usage, billed=self.billed, prompt_estimate=self.prompt_estimate,
                      completion_estimate=completion_estimate(self.completion_chars, self.max_tokens))

    @property
    def tokens(self) -> int:
        return self.charge.tokens

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "test": self.test, "step": self.step, "role": self.role,
                "correlation_id": self.correlation_id, "started_at": self.started_at, "hints": list(self.hints),
                "stream": self.stream, "status": self.status, "latency": self.latency, "ttft": self.ttft,
                **self.usage.as_dict(), "raw_usage": self.raw_usage, "request_hash": self.request_hash,
                "upstream_request_id": self.upstream_request_id, "host": self.host,
                "balance_usd": self.balance_usd, "balance_diem": self.balance_diem, "error": self.error,
                "retried_without": self.retried_without, "estimated_tokens": self.charge.estimated_tokens,
                **({"request": self.request, "response": self.response} if self.request is not None else {})}


def _captured_body(raw: bytes) -> Any:
    text = raw[:CAPTURE_LIMIT].decode("utf-8", errors="replace")
    try:
        return orjson.loads(raw) if len(raw) <= CAPTURE_LIMIT else text
    except orjson.JSONDecodeError:
        return text


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ProbeClient:
    """Sends probe requests to one upstream; remembers per model the parameters it rejected."""

    def __init__(self, upstream: Upstream, clock: Clock, *, api_key: str | None, venice: bool = False,
                 correlation_id: str = "", max_tokens: int = 16, capture: bool = False) -> None:
        self.upstream = upstream
        self.capture = capture
        self.clock = clock
        self.api_key = api_key
        self.venice = venice
        self.correlation_id = correlation_id
        self.max_tokens = max_tokens
        self.rejected: dict[str, set[str]] = {}

    def _headers(self, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
        headers = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        if self.api_key:
            headers.append(("authorization", f"Bearer {self.api_key}"))
        return headers + extra

    async def chat(self, model: str, messages: list[Any], *, test: str, step: str, role: str,
                   stream: bool = False, hints: Collection[str] = (), pin: str = "",
                   prompt_tokens: int = 0) -> Exchange:
        """One chat request (retried without any optional parameter the model rejects with a 400);
        ``prompt_tokens`` is what the caller expects the prompt to count (its token gauge), for the estimate
        an answer without usage is charged."""
        ex = Exchange(model, test, step, role, self.correlation_id, self.clock.wall(), tuple(hints), stream)
        ex.prompt_estimate = max(prompt_tokens, tokens_of_chars(prompt_chars(messages)))
        rejected = self.rejected.setdefault(model, set())
        while True:
            body, extra = build_request(model, messages, stream=stream, hints=hints, pin=pin, venice=self.venice,
                                        max_tokens=self.max_tokens, without=rejected)
            content = encode(body)
            ex.request_hash = request_hash(content)
            cap = body.get("max_tokens")
            ex.max_tokens = cap if isinstance(cap, int) else None
            refused = await self._send(ex, content, extra, body)
            if refused is None or refused in rejected:
                return ex
            rejected.add(refused)
            ex.retried_without.append(refused)

    async def _send(self, ex: Exchange, content: bytes, extra: list[tuple[str, str]],
                    body: dict[str, Any]) -> str | None:
        started = self.clock.now()
        headers = self._headers(extra)
        if self.capture:
            shown = [(n, f"Bearer {REDACTED}" if n == "authorization" else v) for n, v in headers]
            ex.request = {"method": "POST", "url": self.upstream.base_url + "/chat/completions",
                          "headers": [list(h) for h in shown], "body": body}
        try:
            response = await self.upstream.send("POST", "/chat/completions", headers=headers, content=content)
            names = {name.lower(): value for name, value in response.headers}
            if self.capture:  # cookies an upstream sets are its session with us: not evidence, never shown
                shown_headers = {n: v for n, v in names.items() if n not in ("set-cookie", "cookie")}
                ex.response = {"status": response.status_code, "headers": shown_headers, "body": None}
            ex.status = response.status_code
            ex.upstream_request_id = next((names[h] for h in REQUEST_ID_HEADERS if h in names), None)
            ex.host = names.get("x-venice-host-name")
            ex.balance_usd = _number(names.get("x-venice-balance-usd"))
            ex.balance_diem = _number(names.get("x-venice-balance-diem"))
            if ex.status == 200 and ex.stream:
                await self._read_stream(ex, response.body, started)
                await response.aclose()
            else:
                raw = await response.read()
                ex.latency = self.clock.now() - started
                if ex.response is not None:
                    ex.response["body"] = _captured_body(raw)
                if ex.status != 200:
                    ex.error = raw[:500].decode("utf-8", errors="replace")
                    return rejected_param(ex.status, raw, body)
                self._read_plain(ex, raw)
        except UpstreamError as exc:
            ex.error, ex.latency = exc.message, self.clock.now() - started
            ex.timed_out = isinstance(exc, UpstreamTimeoutError) and exc.after_sending
        return None

    def _read_plain(self, ex: Exchange, raw: bytes) -> None:
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            ex.error = "the answer is not JSON"
            return
        ex.raw_usage = usage_in(payload)
        ex.usage = normalize_usage(ex.raw_usage)
        if isinstance(payload, dict):
            ex.completion_chars = generated_chars(payload.get("choices"), "message")

    async def _read_stream(self, ex: Exchange, body: Any, started: float) -> None:
        parser = SSEParser()
        events: list[Any] = []
        async for chunk in body:
            for data in parser.feed(chunk):
                if ex.response is not None and len(events) < 200:
                    events.append(data)
                if data.strip() == "[DONE]":
                    continue
                try:
                    event = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event, dict) and event.get("choices"):
                    if ex.ttft is None:
                        ex.ttft = self.clock.now() - started
                    ex.completion_chars += generated_chars(event["choices"], "delta")
                found = usage_in(event)
                if found is not None:
                    ex.raw_usage = found
        ex.latency = self.clock.now() - started
        ex.usage = normalize_usage(ex.raw_usage)
        if ex.response is not None:
            ex.response["body"] = {"events": events}


@dataclass
class CheckResult:
    """One test type's figures for one model, with the exchanges they were read from."""

    name: str
    figures: dict[str, Any]
    evidence: list[Exchange] = field(default_factory=list)
    skipped: str | None = None  # why the test did not run

    def as_dict(self) -> dict[str, Any]:
        return {"figures": self.figures, "skipped": self.skipped,
                "evidence": [ex.as_dict() for ex in self.evidence]}
