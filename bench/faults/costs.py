"""CPU per request of each part of the stack, by kind of request: the basis of the README's sizing.

On a machine shared with other work, requests per second say little; CPU seconds each process spent
(``/proc/<pid>/stat``) per request answered do not depend on how busy the machine was. Each kind is sent
closed loop through HAProxy for a few seconds, and every process's CPU is read before and after:

- ``exact hit``: pool prompts (first wording) asked just before, so each is an exact hit (Redis Cluster);
- ``semantic hit``: their second wordings, which the semantic tier answers with the first's entry the
  first time; sent to one replica straight, since each replica has a semantic store of its own here.
  A paraphrase answered once is then an exact hit under its own key, so most of this kind's requests
  are exact hits: its ``answers`` column gives the mix, and it is no semantic hit's cost;
- ``miss``: fresh prompts: exact lookup, an embedding, a semantic lookup, the flight lease, the upstream,
  then the entry stored in Redis and the vector in the replica's semantic store.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp

from bench.faults.load import KEEPALIVE, Ask, Mix, Prompt, Record, send
from bench.faults.topology import Stack

HOT = 40  # pool groups the hit kinds cycle over


@dataclass
class Cost:
    kind: str
    requests: int
    seconds: float
    outcomes: dict[str, int]  # x-cache/x-cache-tier of the answers
    cpu_ms: dict[str, float]  # CPU milliseconds per request, per role


async def _ask_each(url: str, mix: Mix, asks: list[Ask]) -> None:
    async with aiohttp.ClientSession() as session:
        for ask in asks:
            await send(session, url, ask, mix, 0.0)


async def _closed(url: str, mix: Mix, asks: list[Ask], *, workers: int, seconds: float) -> list[Record]:
    out: list[Record] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers, keepalive_timeout=KEEPALIVE),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                out.append(await send(session, url, asks[next(counter) % len(asks)], mix, 0.0))

        await asyncio.gather(*(worker() for _ in range(workers)))
    return out


def _fresh(mix: Mix, n: int) -> list[Ask]:
    asks = []
    for i in range(n):
        text = f"Costs, fresh prompt {i} at {time.time():.3f}: what is {i + 17} times {i + 23}?"
        prompt = Prompt(f"new-cost-{i}", f"new-cost-{i}", text)
        mix.texts[prompt.group] = (text,)
        asks.append(Ask(i % 2, prompt, stream=i % 2 == 0))
    return asks


async def measure(stack: Stack, *, seconds: float) -> list[Cost]:
    mix = Mix(seed=7)
    first = [Ask(t, Prompt(f"g{i}a", f"g{i}", mix.groups[i][0]), stream=(i + t) % 2 == 0)
             for i in range(HOT) for t in (0, 1)]
    second = [Ask(a.tenant, Prompt(f"g{a.prompt.group[1:]}b", a.prompt.group, mix.groups[int(a.prompt.group[1:])][1]),
                  a.stream) for a in first]
    kinds = {"exact hit": (first, 32), "semantic hit": (second, 32), "miss": (_fresh(mix, 100_000), 48)}
    out = []
    for kind, (asks, workers) in kinds.items():
        # The semantic kind goes to one replica: each keeps a semantic store of its own (no Qdrant server here).
        url = stack.replicas[0].url if kind == "semantic hit" else stack.url
        if kind != "miss":  # store the first wordings (again: entries live CACHE_TTL), then let the stores land
            await _ask_each(url, mix, first)
            await asyncio.sleep(1.0)
            if kind == "semantic hit":  # embed each second wording once: the hits measured reuse it
                await _ask_each(url, mix, second)
        before, started = stack.cpu(), time.perf_counter()
        records = await _closed(url, mix, asks, workers=workers, seconds=seconds)
        elapsed, after = time.perf_counter() - started, stack.cpu()
        done = [r for r in records if not r.failed]
        out.append(Cost(kind, len(done), elapsed,
                        dict(Counter(f"{r.cache} {r.tier}".strip() for r in records)),
                        {role: (after[role] - before[role]) * 1000 / max(1, len(done)) for role in before}))
    return out


def table(costs: list[Cost]) -> str:
    roles = list(costs[0].cpu_ms)
    lines = ["| kind | requests | req/s here | answers | " + " | ".join(f"{r} CPU ms/req" for r in roles) + " |",
             "|" + "---|" * (4 + len(roles))]
    for cost in costs:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(cost.outcomes.items()))
        lines.append(f"| {cost.kind} | {cost.requests} | {cost.requests / cost.seconds:.0f} | {outcomes} | "
                     + " | ".join(f"{cost.cpu_ms[r]:.2f}" for r in roles) + " |")
    return "\n".join(lines)
