"""What any proxy hop costs on this machine (run by hand): ``python -m bench.proxy_floor [--samples 600]``.

The miss and TTFB targets (≤ 1 ms over calling the upstream directly) include the hop itself: one more
HTTP exchange and one more process to wake. This runs a relay with no logic at all (uvicorn with the
proxy's server options, aiohttp to the simulator, bytes passed through) next to cachegate and the direct
call, taking turns, so the three numbers share the machine's state. What cachegate adds on top of the
relay is its own work; the relay's figure is the floor for any Python proxy built this way.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

import httpx

from bench import _harness as h
from bench.exact_bench import unique_body
from tests.support.servers import SubprocessServer


def relay_app(upstream: str) -> Any:
    """A pure-ASGI relay of POST bodies to ``upstream``; nothing parsed, nothing stored."""
    import aiohttp

    session: dict[str, aiohttp.ClientSession] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    session["s"] = aiohttp.ClientSession()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await session["s"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":  # the harness's readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = (await receive())["body"]
        async with session["s"].post(upstream + scope["path"], data=body,
                                     headers={"content-type": "application/json"}) as response:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(b"content-type", response.headers["content-type"].encode())]})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    return app


def serve_relay(port: int, upstream: str) -> None:
    import uvicorn

    from proxy.http.server import uvicorn_options

    uvicorn.run(relay_app(upstream), host="127.0.0.1", port=port, log_level="warning", **uvicorn_options())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chat = "/v1/chat/completions"
    with h.simulator() as sim, h.proxy(sim.url + "/v1") as cachegate, SubprocessServer(
            [sys.executable, "-c", f"from bench.proxy_floor import serve_relay; serve_relay({{port}}, {sim.url!r})"],
            health_path="/health", cwd=str(h.ROOT)) as relay:
        urls = {"direct": sim.url + chat, "relay": relay.url + chat, "cachegate": cachegate.url + chat}
        with httpx.Client(timeout=30) as client:
            print(f"{'round':<7}{'what':<10}{'direct p50':>12}{'+relay':>9}{'+cachegate':>12}  (ms)")
            for round_no in range(1, args.rounds + 1):
                for what, first_byte in (("miss", False), ("TTFB", True)):
                    runs = h.interleaved_ms(client, urls, functools.partial(unique_body, stream=first_byte),
                                            args.samples, first_byte=first_byte)
                    direct = h.median(runs["direct"])
                    print(f"{round_no:<7}{what:<10}{direct:>12.2f}{h.median(runs['relay']) - direct:>+9.2f}"
                          f"{h.median(runs['cachegate']) - direct:>+12.2f}", flush=True)


if __name__ == "__main__":
    main()
