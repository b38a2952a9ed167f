"""The fault runs: each a steady window, a fault window (what :class:`Fault` does, for as long as it takes),
then a recovery window, under the same open-loop load; every request is logged (``<run>.jsonl``)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.faults.load import Ask, Mix, Prompt, Record, open_loop, send
from bench.faults.topology import Stack


@dataclass(frozen=True)
class Windows:
    steady: float
    fault: float  # how long the fault is held (a restart then takes what it takes)
    recovery: float


@dataclass
class Outcome:
    name: str
    records: list[Record]
    fault_start: float  # seconds since the load started
    fault_end: float
    started: float = 0.0  # perf_counter when the load started (runs share that clock)
    bursts: list[tuple[int, list[Record]]] = field(default_factory=list)  # upstream calls, the burst's answers
    note: str = ""


Act = Callable[[Stack, float, Outcome], Awaitable[None]]


async def _sleep_then(hold: float, step: Callable[[], object]) -> None:
    await asyncio.sleep(hold)
    await asyncio.to_thread(step)


async def master_killed(stack: Stack, hold: float, out: Outcome) -> None:
    victim = stack.secret_master()
    out.note = f"SIGKILL master :{victim.port} (the tenant secret's), {hold:.0f} s down, restarted empty"
    await asyncio.to_thread(victim.signal, signal.SIGKILL)
    await _sleep_then(hold, victim.start)
    await asyncio.to_thread(stack.cluster.wait_healthy)


async def master_hung(stack: Stack, hold: float, out: Outcome) -> None:
    victim = stack.other_master()
    out.note = f"SIGSTOP master :{victim.port} for {hold:.0f} s, then SIGCONT"
    victim.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(hold)
    finally:
        victim.signal(signal.SIGCONT)
    await asyncio.to_thread(stack.cluster.wait_healthy)


async def embedding_killed(stack: Stack, hold: float, out: Outcome) -> None:
    out.note = f"SIGKILL the embedding service, {hold:.0f} s down, restarted (model load included)"
    stack.embed.signal(signal.SIGKILL)
    await asyncio.to_thread(stack.embed.wait, 10)
    stack.embed.stop()
    await _sleep_then(hold, stack.embed.start)


async def replica_restarted(stack: Stack, hold: float, out: Outcome) -> None:
    replica = stack.replicas[-1]
    replica.signal(signal.SIGTERM)
    code = await asyncio.to_thread(replica.wait, 60)
    drained = time.perf_counter()
    replica.stop()
    await asyncio.to_thread(replica.start)  # the same port, the same DATA_DIR
    await asyncio.to_thread(stack.wait_in_rotation, len(stack.replicas))
    out.note = (f"SIGTERM replica :{replica.port} (exit {code}), restarted at once; back in rotation "
                f"{time.perf_counter() - drained:.1f} s after it exited")


async def upstream_down(stack: Stack, hold: float, out: Outcome) -> None:
    out.note = f"the upstream answers 503 to everything for {hold:.0f} s"
    await asyncio.to_thread(stack.outage, hold)
    await _sleep_then(hold, lambda: stack.outage(0))


BURST = 20


async def identical_misses(stack: Stack, hold: float, out: Outcome) -> None:
    """Bursts of ``BURST`` identical plain misses at once, alternately on each replica (straight, not through
    HAProxy, so the spread is exact), one new prompt per burst, until ``hold`` is over (3 bursts at least)."""
    mix = Mix(seed=99)
    before = await asyncio.to_thread(stack.counters)
    ends = time.perf_counter() + hold
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=BURST, force_close=True),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        n = 0
        while n < 3 or time.perf_counter() < ends:
            n += 1
            text = f"Twenty of us ask this at once: burst {n} at {time.time():.3f}, what is {n} plus {n}?"
            prompt = Prompt(f"burst-{n}", f"burst-{n}", text)
            mix.texts[prompt.group] = (text,)
            ask = Ask(0, prompt, stream=False)
            answers = await asyncio.gather(*(send(session, stack.replicas[i % len(stack.replicas)].url, ask, mix, 0.0)
                                             for i in range(BURST)))
            out.bursts.append((await asyncio.to_thread(stack.asked, text), list(answers)))
            await asyncio.sleep(1.0)
    counted = await asyncio.to_thread(stack.counters)
    counted.subtract(before)
    seen = ", ".join(f"{name} {value}" for name, value in sorted(counted.items()) if value)
    out.note = (f"{n} bursts of {BURST} identical plain misses, spread evenly over {len(stack.replicas)} replicas; "
                f"the replicas counted (the open-loop load's too): {seen}")


RUNS: dict[str, Act] = {
    "master-kill": master_killed,
    "master-hang": master_hung,
    "embedding-kill": embedding_killed,
    "replica-restart": replica_restarted,
    "identical-misses": identical_misses,
    "upstream-503": upstream_down,
}


async def run(name: str, stack: Stack, mix: Mix, *, rate: float, windows: Windows, log: Path) -> Outcome:
    records: list[Record] = []
    out = Outcome(name, records, 0.0, 0.0)
    stop = asyncio.Event()
    start = out.started = time.perf_counter()
    load = asyncio.create_task(open_loop(stack.url, mix, rate=rate, start=start, stop=stop, on_record=records.append))
    try:
        await asyncio.sleep(windows.steady)
        out.fault_start = time.perf_counter() - start
        await RUNS[name](stack, windows.fault, out)
        out.fault_end = time.perf_counter() - start
        await asyncio.sleep(windows.recovery)
    finally:
        stop.set()
        await load
    with log.open("wb") as file:
        for record in sorted(records, key=lambda r: r.sent):
            file.write(record.line() + b"\n")
        for calls, answers in out.bursts:
            for record in answers:
                file.write(record.line()[:-1] + f',"burst_upstream_calls":{calls}}}\n'.encode())
    return out
