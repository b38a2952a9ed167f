"""A small OpenAI-compatible upstream for integration tests and benchmarks.

Answers are deterministic but reveal the call number (``[3] You said: hi``) so a test can tell a fresh
upstream answer from a cached replay. Faults are injected per request with ``x-sim-*`` headers, which the
proxy forwards untouched: ``status``, ``delay``, ``chunk-delay``, ``cut-after``, ``cut-abort``,
``no-finish``, ``bad-json``, ``tool-call``, ``cached-tokens``, ``reject-stream-options`` (a strict upstream),
``raw-sse``/``raw-json`` (base64 of the exact bytes to answer with; ``chunk-size`` cuts an event stream),
``response-headers`` (a JSON object of headers to add to the answer). Run standalone with
``python -m tests.support.simulator --port N [--latency S] [--echo-key]``; what benchmarks use besides
(a fixed latency, an outage window, calls per prompt, answers tagged by key) is in :mod:`tests.support.sim_load`.

Models with a prompt-cache profile (:mod:`tests.support.cache_profiles`, e.g. ``sim-openai``) are answered
by :mod:`tests.support.sim_profiled` instead: a provider-side cache on a fake clock (``GET``/``POST /_clock``
with ``{"advance": s}`` or ``{"set": t}``), whose every decision ``GET /_truth`` lists. With
``catalog="profiles"`` ``/v1/models`` lists those models, Venice-style, instead of the default three.

This module is the server: it records every call, applies the faults all endpoints share and serves the
state routes (``/_sim/*``, ``/_clock``, ``/_truth``) and the CLI. The ``/v1/*`` answers are built in
:mod:`tests.support.sim_answers`; what the simulator has seen is :class:`~tests.support.sim_state.SimState`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.sim_answers import SimAnswers
from tests.support.sim_load import LoadKnobs, load_routes
from tests.support.sim_state import RecordTargets, SimState
from tests.support.sim_wire import QuietAbort, error_response, flag, json_response, last_user

_Handler = Callable[[Request, Any], Awaitable[Response]]


def create_simulator(*, catalog: str = "default", latency: float = 0.0,
                     echo_key: bool = False) -> tuple[Starlette, SimState]:
    state = SimState(load=LoadKnobs(latency=latency, echo_key=echo_key))
    answers = SimAnswers(state, catalog=catalog)

    def endpoint(handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        """Record the call, then apply the faults every endpoint shares before the handler runs."""

        async def run(request: Request) -> Response:
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = None
            path = request.url.path
            state.calls[path] = state.calls.get(path, 0) + 1
            state.last_headers = {k.lower(): v for k, v in request.headers.items()}
            state.last_query = request.url.query
            state.last_body = body
            if path == "/v1/chat/completions":
                state.chat_calls += 1
                if isinstance(body, dict) and isinstance(body.get("messages"), list):
                    state.load.asked[last_user(body["messages"])] += 1
            if delay := float(request.headers.get("x-sim-delay", "0") or 0) or state.load.latency:
                await asyncio.sleep(delay)
            if status := int(request.headers.get("x-sim-status", "0") or 0) or state.load.outage():
                return error_response(status, f"simulated upstream error {status}")
            if raw and body is None:
                return error_response(400, "We could not parse the JSON body of your request.")
            if flag(request, "x-sim-bad-json") and not (isinstance(body, dict) and body.get("stream")):
                return Response(b"<html>not json{", media_type="application/json")
            response = await handler(request, body)
            for name, value in orjson.loads(request.headers.get("x-sim-response-headers", "{}")).items():
                response.headers.append(name, value)  # e.g. the upstream's own x-request-id, a CDN's x-cache
            return response

        return run

    async def bare(request: Request) -> Response:
        # Deliberately touches no state: this is the throughput ceiling the benchmarks compare against.
        return Response(b'{"ok":true}', media_type="application/json")

    async def stats(request: Request) -> Response:
        return json_response(state.stats())

    async def reset(request: Request) -> Response:
        state.reset()
        return json_response({"ok": True})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                change = orjson.loads(await request.body() or b"{}")
                if "set" in change:
                    state.clock.set(float(change["set"]))
                else:
                    state.clock.advance(float(change.get("advance", 0)))
            except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
                return error_response(400, 'expected {"advance": seconds} or {"set": seconds}')
        return json_response({"now": state.clock.now()})

    async def truth(request: Request) -> Response:
        model = request.query_params.get("model")
        return json_response([t for t in state.cache.truth if model is None or t["model"] == model])

    app = Starlette(routes=[
        Route("/v1/chat/completions", endpoint(answers.chat), methods=["POST"]),
        Route("/v1/completions", endpoint(answers.completions), methods=["POST"]),
        Route("/v1/embeddings", endpoint(answers.embeddings), methods=["POST"]),
        Route("/v1/models", endpoint(answers.models), methods=["GET"]),
        Route("/bare", bare, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        *load_routes(state.load),
        Route("/_clock", clock, methods=["GET", "POST"]),
        Route("/_truth", truth, methods=["GET"]),
        Route("/v1/models/{model:path}", endpoint(answers.model), methods=["GET"]),
        Route("/{rest:path}", endpoint(answers.unknown), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ], middleware=[Middleware(QuietAbort), Middleware(RecordTargets, state=state)])
    return app, state


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="OpenAI-compatible upstream simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds every call waits before it answers")
    parser.add_argument("--echo-key", action="store_true", help="answers name the caller's key (sim_load.key_tag)")
    opts = parser.parse_args(argv)
    app, _ = create_simulator(latency=opts.latency, echo_key=opts.echo_key)
    # The fastest stack available, since benchmarks must not be limited by the upstream.
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    uvicorn.run(app, host=opts.host, port=opts.port, loop=loop, http=http, access_log=False,
                log_level="warning")


if __name__ == "__main__":
    main()
