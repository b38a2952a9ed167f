"""The open-loop load of the fault benchmark: what is asked, on what schedule, and a log line per request.

Prompts: the paraphrase pairs of ``bench/data/semantic_pairs.jsonl`` as *groups* (a question in two
wordings) picked with Zipf-like popularity (weight ``1 / rank ** ZIPF_S``), the first wording mostly and the
second (which the semantic tier may answer with the first's entry) sometimes, plus a share of fresh prompts
that no one asked before (different numbers, which the semantic tier's number guard keeps apart). Half the
requests are streams; two tenants (two API keys) ask the same pool.

Open loop: request ``i`` is sent at ``start + i / rate`` whether or not the earlier ones were answered, so a
slow phase shows up as latency and failures instead of as a lower rate (no coordinated omission).

Right or wrong: the simulator runs with ``--echo-key``, so its answer to a prompt is ``[<call>] You said:
<prompt> (key <tag of the caller's key>)``; an answer is right when it says the prompt asked (a semantic hit:
a wording of the same group) and names the asking tenant's key. The call number is ignored: it only tells a
fresh answer from a replayed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import orjson

from tests.support.sim_load import key_tag

PAIRS = Path(__file__).resolve().parents[1] / "data" / "semantic_pairs.jsonl"
MODEL = "gpt-4o-mini"
TENANTS = ("sk-fault-bench-tenant-a", "sk-fault-bench-tenant-b")
ZIPF_S = 1.1
GROUPS = 120  # pool size: small enough that the popular half is hot within a CACHE_TTL
#: below HAProxy's `timeout http-keep-alive 5s`: a connection it closes as we reuse it would fail a request
#: on the client side only (a real client retries that; this one counts failures)
KEEPALIVE = 2.0
ANSWER = re.compile(r"^\[[0-9#]+\] You said: (?P<said>.*) \(key (?P<tag>[0-9a-f]{8})\)$", re.S)


@dataclass(frozen=True)
class Prompt:
    id: str  # "g17a" / "g17b" (a pool group's wordings) or "new-5" (fresh)
    group: str
    text: str


@dataclass(frozen=True)
class Ask:
    tenant: int
    prompt: Prompt
    stream: bool


@dataclass
class Record:
    """One line of the per-request log."""

    sent: float  # seconds since the load started (the schedule's time, not when the task got to it)
    tenant: int
    prompt: str
    stream: bool
    status: int  # 0: no HTTP answer at all
    cache: str
    tier: str
    ms: float
    answer_bytes: int
    right: bool | None  # None: no answer to judge
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status != 200 or bool(self.error)

    @property
    def fresh(self) -> bool:
        return self.prompt.startswith("new-")

    def line(self) -> bytes:
        return orjson.dumps(asdict(self))


def pool(groups: int = GROUPS) -> list[tuple[str, str]]:
    pairs = [orjson.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    return [(p["a"], p["b"]) for p in pairs if p["kind"] == "paraphrase"][:groups]


class Mix:
    """Draws what the next request asks: seeded, so two runs of the benchmark ask the same sequence."""

    def __init__(self, *, seed: int, fresh_share: float = 0.15, second_wording: float = 0.1,
                 stream_share: float = 0.5) -> None:
        self.rng = random.Random(seed)
        self.groups = pool()
        self.weights = [1 / (rank + 1) ** ZIPF_S for rank in range(len(self.groups))]
        self.fresh_share, self.second_wording, self.stream_share = fresh_share, second_wording, stream_share
        self.fresh = 0
        self.texts: dict[str, tuple[str, ...]] = {f"g{i}": pair for i, pair in enumerate(self.groups)}

    def next(self) -> Ask:
        rng = self.rng
        tenant, stream = rng.randrange(len(TENANTS)), rng.random() < self.stream_share
        if rng.random() < self.fresh_share:
            self.fresh += 1
            a, b = rng.randrange(100, 10_000), rng.randrange(100, 10_000)
            text = f"In the fault benchmark, what is {a} times {b}? Case {self.fresh}."
            prompt = Prompt(f"new-{self.fresh}", f"new-{self.fresh}", text)
            self.texts[prompt.group] = (text,)
            return Ask(tenant, prompt, stream)
        index = rng.choices(range(len(self.groups)), self.weights)[0]
        second = rng.random() < self.second_wording
        prompt = Prompt(f"g{index}{'b' if second else 'a'}", f"g{index}", self.groups[index][int(second)])
        return Ask(tenant, prompt, stream)

    def judge(self, ask: Ask, content: str, tier: str) -> bool:
        """Is ``content`` what the upstream says to this prompt and tenant (any wording of it on a semantic hit)?"""
        match = ANSWER.match(content)
        if match is None or match["tag"] != key_tag(f"Bearer {TENANTS[ask.tenant]}"):
            return False
        if tier == "semantic":
            return match["said"] in self.texts[ask.prompt.group]
        return match["said"] == ask.prompt.text


def body(ask: Ask) -> bytes:
    return orjson.dumps({"model": MODEL, "stream": ask.stream,
                         "messages": [{"role": "user", "content": ask.prompt.text}]})


def _content_of_stream(raw: bytes) -> tuple[str, str]:
    """The streamed text, and what went wrong (an ``error`` event, no ``[DONE]``) or ''."""
    parts: list[str] = []
    done = False
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            done = True
            continue
        event = orjson.loads(data)
        if "error" in event:
            return "".join(parts), f"error event: {event['error']}"
        for choice in event.get("choices") or ():
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts), "" if done else "stream ended without [DONE]"


async def send(session: aiohttp.ClientSession, url: str, ask: Ask, mix: Mix, sent: float,
               headers: dict[str, str] | None = None) -> Record:
    started = time.perf_counter()
    head = {"authorization": f"Bearer {TENANTS[ask.tenant]}", "content-type": "application/json", **(headers or {})}
    status, cache, tier, raw, error = 0, "", "", b"", ""
    try:
        async with session.post(url + "/v1/chat/completions", data=body(ask), headers=head) as response:
            status, cache, tier = response.status, response.headers.get("x-cache", ""), response.headers.get(
                "x-cache-tier", "")
            raw = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    ms = (time.perf_counter() - started) * 1000
    right: bool | None = None
    if status == 200 and not error:
        try:
            if ask.stream:
                content, error = _content_of_stream(raw)
            else:
                content = orjson.loads(raw)["choices"][0]["message"]["content"]
            right = mix.judge(ask, content, tier) if not error else None
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            error = f"unreadable answer: {exc}"
    elif status and not error:
        error = raw[:200].decode(errors="replace")
    return Record(round(sent, 3), ask.tenant, ask.prompt.id, ask.stream, status, cache, tier, round(ms, 2), len(raw),
                  right, error)


async def open_loop(url: str, mix: Mix, *, rate: float, start: float, stop: asyncio.Event,
                    on_record: Callable[[Record], None], connections: int = 256) -> None:
    """Send ``rate`` requests a second on schedule from ``start`` (perf_counter) until ``stop`` is set.

    Requests still in flight then are awaited (their latency counts)."""
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=KEEPALIVE)
    tasks: set[asyncio.Task[None]] = set()

    async def one(ask: Ask, at: float) -> None:
        on_record(await send(session, url, ask, mix, at))

    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        i = 0
        while not stop.is_set():
            at = i / rate
            delay = start + at - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    break
            task = asyncio.create_task(one(mix.next(), at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks)


async def closed_loop(url: str, mix: Mix, *, workers: int, seconds: float) -> list[Record]:
    """``workers`` clients back to back for ``seconds``: the stack's capacity for this mix."""
    out: list[Record] = []
    start = time.perf_counter()
    deadline = start + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers, keepalive_timeout=KEEPALIVE),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                out.append(await send(session, url, mix.next(), mix, time.perf_counter() - start))

        await asyncio.gather(*(worker() for _ in range(workers)))
    return out
