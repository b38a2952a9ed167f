"""Chat answers of the simulator for models with a cache profile (see :mod:`tests.support.cache_profiles`).

The answer reports the cache figures :class:`~tests.support.sim_cache.ProviderCache` decided, in the
profile's usage shape, plain or streamed (unless the profile's answers of that kind carry no usage); carries
Venice-style headers (request id, host name, balances that go down with spend); and its decision is recorded
as the truth for ``GET /_truth``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tests.support.cache_profiles import CacheProfile
from tests.support.sim_cache import ProviderCache, tokenize
from tests.support.sim_wire import FINGERPRINT, chat_events, error_response, json_response, stream_response
from tests.support.usage_shapes import in_choice, render_usage


def rejected(profile: CacheProfile, body: dict[str, Any]) -> Response | None:
    for name in profile.rejects:
        if name in body:
            # Venice's wording (a pydantic 'extra fields forbidden' error)
            return error_response(400, f"Extra inputs are not permitted, field: '{name}'", name)
    return None


def _spent(profile: CacheProfile, prompt: int, cached: int, completion: int) -> float:
    cache_price = profile.input_price if profile.cache_price is None else profile.cache_price
    return ((prompt - cached) * profile.input_price + cached * cache_price + completion * profile.output_price) / 1e6


async def profiled_chat(request: Request, body: dict[str, Any], profile: CacheProfile,
                        cache: ProviderCache) -> Response:
    refusal = rejected(profile, body)
    if refusal is not None:
        return refusal
    headers = {k.lower(): v for k, v in request.headers.items()}
    prompt = tokenize(body["messages"], profile, body)
    server = cache.route(profile, prompt, body, headers)
    arrived = cache.clock.now()
    decision = cache.decide(profile, prompt, server, body)
    prompt_tokens = len(prompt.tokens)
    stream = bool(body.get("stream"))
    text = "OK"
    completion_tokens = 1
    seq = cache.record({"model": profile.name, "server": server, "prompt_tokens": prompt_tokens,
                        "matched_tokens": decision.matched, "cached_tokens": decision.cached,
                        "written_tokens": decision.written, "hit": decision.cached > 0, "reason": decision.reason,
                        "at": arrived, "ttft": decision.ttft, "stream": stream,
                        "pin": headers.get("x-grok-conv-id") or body.get("prompt_cache_key")},
                       _spent(profile, prompt_tokens, decision.cached, completion_tokens))
    usage = render_usage(profile.usage_shape, prompt=prompt_tokens, completion=completion_tokens,
                         cached=decision.cached, written=decision.written)
    out_headers = {"x-request-id": f"sim-{seq}", "x-venice-host-name": f"sim-server-{server}",
                   "x-venice-balance-usd": f"{cache.balance_usd:.6f}",
                   "x-venice-balance-diem": f"{cache.balance_diem:.6f}"}
    head = {"id": f"chatcmpl-sim-{seq}", "object": "chat.completion", "created": int(time.time()),
            "model": profile.name, "system_fingerprint": FINGERPRINT}
    if not stream:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                  "finish_reason": "stop"}
        answer = {**head, "choices": [choice]} if profile.plain_usage == "missing" else {
            **head, "choices": [choice], "usage": usage}
        response = json_response(answer)
        response.headers.update(out_headers)
        return response
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage")) and profile.stream_usage != "missing"
    if profile.stream_usage == "uncached":  # a stream that loses the cache figures the plain answer has
        usage = render_usage(profile.usage_shape, prompt=prompt_tokens, completion=completion_tokens, cached=0,
                             written=decision.written)
    events = list(chat_events(seq, head, [text], None, "stop", usage if wants_usage else None))
    if in_choice(profile.usage_shape):  # Moonshot: the usage rides on the last choice, always
        events = [e for e in events if e.get("choices")]
        last = events[-1]
        events[-1] = {**last, "choices": [{**last["choices"][0], "usage": usage}]}
    response = stream_response(request, iter(events))
    response.headers.update(out_headers)
    return response
