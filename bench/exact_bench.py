"""Exact-tier benchmark (run by hand): ``python -m bench.exact_bench [--seconds 10]``.

Reports in one run, with wrk (one thread) at 32 connections for all throughput figures (each the median
of ``--rounds`` rounds that take turns, so a noisy moment on the machine does not favour one row; the
share of the ceiling is the median of each round's share):
- the ceiling: a bare ASGI endpoint on the proxy's own server stack (:mod:`bench.bare_server`: reads the
  body, answers a constant chat.completion), beside the same on plain uvicorn and the simulator's
  Starlette ``GET /bare`` (the ceiling of earlier notes, itself slower);
- exact-hit throughput and p50/p99 through the proxy, on the in-process store and on Redis;
- the latency a miss adds over calling the simulator directly (sequential, p50; direct and proxied
  requests take turns, one proxy at a time; with ``--blocks N`` in N blocks per proxy that take turns
  between the proxies too, each row's figure the median of its blocks');
- time to first byte of a stream through the proxy vs direct (the same way), on both backends;
- with ``--entry``: cost and size of the stored envelope with and without compression.
Targets (issue 16): hits ≥ 50% of the same-stack ceiling, hit p99 ≤ 10 ms, miss and TTFB overhead ≤ 1 ms p50.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench import _harness as h

HIT_BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Explain what an exact-match cache is in two sentences."}]})


def unique_body(*, stream: bool = False) -> bytes:
    return orjson.dumps({"model": "gpt-4o-mini", "stream": stream,
                         "messages": [{"role": "user", "content": f"question {uuid.uuid4().hex}"}]})


def entry_costs() -> None:
    from proxy.cache.entry import CachedResponse

    for words in (50, 600, 4000):
        completion = {"id": "x", "object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": " ".join(["token"] * words)},
             "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": words}}
        entry = CachedResponse.from_completion(completion, model="m", stored_at=time.time(), ttl=60)
        blob = entry.encode()
        runs = 2000
        started = time.perf_counter()
        for _ in range(runs):
            CachedResponse.decode(blob)
        decode_us = (time.perf_counter() - started) / runs * 1e6
        print(f"entry body {len(entry.body):>6} B → stored {len(blob):>6} B, decode {decode_us:6.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1000, help="sequential requests per miss/TTFB row")
    parser.add_argument("--blocks", type=int, default=1,
                        help="measure each miss/TTFB row in this many blocks of samples/blocks, the rows taking "
                             "turns block by block; a row's added p50 is then the median of its blocks' (range shown)")
    parser.add_argument("--entry", action="store_true", help="also measure the stored envelope")
    parser.add_argument("--versus", type=Path, help="another checkout (e.g. a `git worktree` of an older "
                                                    "commit): its proxies get rows of their own, taking turns")
    args = parser.parse_args()
    if args.entry:
        entry_costs()

    names = ["ceiling: bare ASGI, our stack", "bare ASGI, plain uvicorn", "simulator GET /bare (Starlette)",
             "exact hit, memory", "exact hit, redis"]
    if args.versus:
        names += ["exact hit, memory [versus]", "exact hit, redis [versus]"]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with h.simulator() as sim, h.redis() as redis, h.bare() as ceiling, h.bare(plain=True) as plain, \
            contextlib.ExitStack() as stack:
        upstream = sim.url + "/v1"
        memory = stack.enter_context(h.proxy(upstream))
        on_redis = stack.enter_context(h.proxy(upstream, REDIS_URL=redis.url))
        servers = [("", memory, on_redis)]
        if args.versus:
            servers.append((" [versus]", stack.enter_context(h.proxy(upstream, source=args.versus)),
                            stack.enter_context(h.proxy(upstream, source=args.versus, REDIS_URL=redis.url,
                                                        CACHE_KEY_PREFIX="versus:"))))
        targets: dict[str, tuple[str, bytes | None]] = {names[0]: (ceiling.url + "/v1/chat/completions", HIT_BODY),
                                                        names[1]: (plain.url + "/v1/chat/completions", HIT_BODY),
                                                        names[2]: (sim.url + "/bare", None)}
        for suffix, mem, red in servers:
            for name, server in ((f"exact hit, memory{suffix}", mem), (f"exact hit, redis{suffix}", red)):
                url = server.url + "/v1/chat/completions"
                httpx.post(url, content=HIT_BODY, headers={"content-type": "application/json"})  # fill
                targets[name] = (url, HIT_BODY)
        for _ in range(args.rounds):
            for name, (url, body) in targets.items():
                runs[name].append(h.wrk(url, body=body, seconds=args.seconds))
        # Each proxied row takes turns with direct calls, one pair at a time: the proxy under test
        # stays as warm as one in service, and drift on the machine touches both sides alike.
        chat = "/v1/chat/completions"
        sequential = []
        pairs = [(f"{kind}, {backend}{suffix}", server) for kind in ("miss", "stream TTFB")
                 for suffix, mem, red in servers for backend, server in (("memory", mem), ("redis", red))]
        blocks: dict[str, list[tuple[list[float], list[float]]]] = {label: [] for label, _ in pairs}
        with httpx.Client(timeout=30) as client:
            for _ in range(max(1, args.blocks)):
                for label, server in pairs:
                    stream = label.startswith("stream")
                    pair = h.interleaved_ms(client, {"direct": upstream + "/chat/completions",
                                                     "proxy": server.url + chat},
                                            functools.partial(unique_body, stream=stream),
                                            max(1, args.samples // max(1, args.blocks)), first_byte=stream)
                    blocks[label].append((pair["direct"], pair["proxy"]))
        for label, measured in blocks.items():
            sequential.append((label, [v for direct, _ in measured for v in direct],
                               [v for _, via in measured for v in via],
                               [h.median(via) - h.median(direct) for direct, via in measured]))

    rows = [(name, {field: h.median([run[field] for run in runs[name]]) for field in runs[name][0]})
            for name in names]
    # A row's share of the ceiling is taken per round (the two measured within seconds of each other),
    # then the median of the rounds: steadier than a ratio of medians when the machine's speed drifts.
    shares = {name: [run["rps"] / ceiling_run["rps"] * 100 for run, ceiling_run in zip(runs[name], runs[names[0]],
                                                                                          strict=True)]
              for name in names}
    if args.rounds > 1:
        for name in names:
            print(f"{name}: req/s per round " + ", ".join(f"{run['rps']:.0f}" for run in runs[name])
                  + " (" + ", ".join(f"{share:.0f}%" for share in shares[name]) + ")")
    print(f"\n{'what':<36}{'req/s':>10}{'% ceiling':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for name, row in rows:
        print(f"{name:<36}{row['rps']:>10.0f}{h.median(shares[name]):>10.1f}%"
              f"{row.get('p50', 0):>9.2f}{row.get('p99', 0):>9.2f}")
    print(f"\n{'sequential (ms)':<32}{'direct p50':>11}{'proxy p50':>11}{'proxy p99':>11}{'added p50':>11}"
          + ("  range of the blocks" if args.blocks > 1 else ""))
    for label, direct, via, added in sequential:
        line = f"{label:<32}{h.median(direct):>11.2f}{h.median(via):>11.2f}{h.pct(via, 99):>11.2f}"
        if args.blocks > 1:  # the median of the blocks' own differences, and their range
            line += f"{h.median(added):>+11.2f}  {min(added):+.2f}..{max(added):+.2f}"
        else:
            line += f"{h.median(via) - h.median(direct):>+11.2f}"
        print(line)


if __name__ == "__main__":
    main()
