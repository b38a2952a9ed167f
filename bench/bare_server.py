"""The ceiling for an exact hit (run by the benchmarks): ``python -m bench.bare_server --port P [--plain]``.

A bare ASGI endpoint that does what a hit cannot avoid, and nothing else: it reads the request body and
answers a constant ``chat.completion`` of the same size as the benchmark's cached answer. By default it runs
on the proxy's own server stack (``proxy.http.server.uvicorn_options()``: uvicorn, httptools, the coalesced
writes), so a hit's share of it is cachegate's own work; ``--plain`` runs it on plain uvicorn with
httptools, to show what the server stack itself is worth.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn

ANSWER = orjson.dumps({
    "id": "chatcmpl-bare", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "An exact-match cache stores each answer under a key made from the "
                                        "request, and returns it when the same request comes again."}}],
    "usage": {"prompt_tokens": 28, "completion_tokens": 24, "total_tokens": 52}})
HEAD = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]}
BODY = {"type": "http.response.body", "body": ANSWER}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:  # the body, as a hit reads it
        message = await receive()
        more = message.get("more_body", False)
    await send(HEAD)
    await send(BODY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--plain", action="store_true", help="plain uvicorn + httptools, not the proxy's stack")
    args = parser.parse_args()
    if args.plain:
        options: dict[str, Any] = {"http": "httptools", "loop": "auto", "access_log": False}
    else:
        from proxy.http.server import uvicorn_options

        options = uvicorn_options()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", **options)


if __name__ == "__main__":
    main()
