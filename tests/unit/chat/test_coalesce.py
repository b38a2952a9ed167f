"""Identical misses across "replicas": two coalescers sharing one lease store and one exact tier (what two
processes share through Redis), on an in-memory lease store so the decisions can be driven exactly."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson

from proxy.cache.entry import CachedResponse
from proxy.cache.exact import ExactCache
from proxy.cache.memory import MemoryBackend
from proxy.cache.singleflight import SingleFlight
from proxy.chat.coalesce import Claim, Coalescer
from proxy.contracts import NullObserver
from proxy.core.request import ChatRequestParser
from proxy.platform.failopen import FailOpen
from proxy.platform.jobs import JobRunner
from proxy.platform.locks import FAILED, MemoryLocks

BODY = {"model": "m", "messages": [{"role": "user", "content": "same question"}]}


class Lookups(NullObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def cache_lookup(self, tier: str, outcome: str, seconds: float) -> None:
        self.seen.append((tier, outcome))


def replicas(wait: float = 5.0) -> tuple[Any, list[Coalescer], ExactCache, Lookups]:
    locks, exact, seen, jobs = MemoryLocks(), ExactCache(MemoryBackend(10**6), prefix="cg:", observer=NullObserver(),
                                                         failopen=FailOpen(NullObserver())), Lookups(), JobRunner()
    coalescers = [Coalescer(SingleFlight(), exact=exact, observer=seen, spawn=jobs.spawn, wait=wait, prefix="cg:",
                            locks=locks) for _ in range(2)]
    parser = ChatRequestParser(prefix="cg:", upstream="http://up/v1", shared=False, secret=lambda: b"s")
    return parser, coalescers, exact, seen


def request(parser: Any, *, stream: bool = False) -> Any:
    return parser.parse(orjson.dumps({**BODY, "stream": stream}), [(b"authorization", b"Bearer k")])


def entry() -> CachedResponse:
    completion = {"id": "c", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "the answer"}, "finish_reason": "stop"}]}
    return CachedResponse.from_completion(completion, model="m", stored_at=time.time(), ttl=60)


async def test_a_request_on_another_replica_gets_the_leaders_answer_once_it_is_written() -> None:
    parser, (one, two), exact, seen = replicas()
    leader = await one.join(request(parser))
    assert isinstance(leader, Claim) and leader.lease is not None
    waiting = asyncio.create_task(two.join(request(parser)))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # it waits for the other replica's answer
    await exact.store(request(parser).key, entry())
    leader.resolve(entry())
    leader.release(stored=True)
    answered = await asyncio.wait_for(waiting, 5)
    assert isinstance(answered, CachedResponse) and ("flight", "remote") in seen.seen


async def test_a_failed_leader_sends_every_waiter_upstream_at_once() -> None:
    parser, (one, two), _, seen = replicas(wait=1.0)
    leader = await one.join(request(parser))
    assert isinstance(leader, Claim)
    waiters = [asyncio.create_task(two.join(request(parser))) for _ in range(3)]
    await asyncio.sleep(0.1)
    leader.release(stored=False)  # an error, or an answer that may not be stored
    outcomes = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    # the first waiter of the second replica leads there (alone: the lease says failed); its followers in that
    # process wait for it, never one after another across the lease
    assert sum(isinstance(o, Claim) for o in outcomes) == 1
    claim = next(o for o in outcomes if isinstance(o, Claim))
    assert claim.lease is None and ("flight", "failed") in seen.seen
    assert await one.locks.state(claim_name(request(parser))) == FAILED  # type: ignore[union-attr]


def claim_name(req: Any) -> str:
    return f"cg:lock:flight:{{{req.key.rpartition('{')[2].rstrip('}')}}}"


async def test_a_leader_that_went_away_is_taken_over() -> None:
    parser, (one, two), _, _ = replicas()
    leader = await one.join(request(parser))
    assert isinstance(leader, Claim) and leader.lease is not None
    waiting = asyncio.create_task(two.join(request(parser)))
    await asyncio.sleep(0.1)
    await one.locks.release(leader.lease)  # type: ignore[union-attr]  # as when its lease lapses
    taken = await asyncio.wait_for(waiting, 5)
    assert isinstance(taken, Claim) and taken.lease is not None  # one waiter leads now, with the lease


async def test_a_stream_never_waits_for_another_replica() -> None:
    parser, (one, two), _, _ = replicas()
    assert isinstance(await one.join(request(parser)), Claim)
    started = asyncio.get_running_loop().time()
    streamed = await two.join(request(parser, stream=True))
    assert isinstance(streamed, Claim) and streamed.lease is None  # asks the upstream itself, at once
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_wait_ends_at_the_lock_timeout_and_asks_the_upstream() -> None:
    parser, (one, two), _, seen = replicas(wait=0.3)
    assert isinstance(await one.join(request(parser)), Claim)
    late = await asyncio.wait_for(two.join(request(parser)), 5)
    assert isinstance(late, Claim) and late.lease is None and ("flight", "timeout") in seen.seen


async def wait_released(coalescer: Coalescer, name: str) -> None:
    assert coalescer.locks is not None
    for _ in range(500):  # the lease is given up by a spawned job
        if await coalescer.locks.state(name) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the lease was never given up")


async def led_and_stored(parser: Any, leading: Coalescer, exact: ExactCache) -> str:
    """``leading`` leads the request, stores its entry and lets the key go; the lease's name."""
    name = claim_name(request(parser))
    leader = await leading.join(request(parser))
    assert isinstance(leader, Claim)
    await exact.store(request(parser).key, entry())
    leader.resolve(entry())
    leader.release(stored=True)
    await wait_released(leading, name)
    return name


async def test_a_miss_that_reaches_the_flight_after_the_leader_stored_is_answered_by_that_entry() -> None:
    # Under load a request can miss the exact tier just before the leader writes the entry, then spend long
    # enough in the semantic tier (an embedding) that the leader has stored and let the key go when it gets
    # here: leading then would ask the upstream a second time for an answer that is already stored.
    parser, (one, two), exact, seen = replicas()
    name = await led_and_stored(parser, one, exact)
    for late in (two, one):  # on another replica, and on the leader's own
        answered = await late.join(request(parser))
        assert isinstance(answered, CachedResponse), answered
        await wait_released(late, name)  # the lease it took to look is given back
    assert seen.seen.count(("flight", "stored")) == 2


async def test_a_miss_straight_from_its_lookup_leads_without_reading_again() -> None:
    # the second read costs every miss a Redis round trip (or the disk level); straight after the request's
    # own lookup (no semantic tier in between) a leader that stored and let go meanwhile is rare enough
    parser, (one, two), exact, seen = replicas()
    name = await led_and_stored(parser, one, exact)
    fresh = await two.join(request(parser), recheck=False)
    assert isinstance(fresh, Claim) and ("flight", "stored") not in seen.seen
    fresh.release(stored=True)  # (as if it had stored: the lease is simply given back)
    await wait_released(two, name)
    late = await one.join(request(parser), recheck=True)
    assert isinstance(late, CachedResponse) and seen.seen.count(("flight", "stored")) == 1


class Gated(MemoryBackend):
    """A level whose reads wait until ``gate`` is set (a slow Redis), to cancel a request in the middle of one."""

    def __init__(self) -> None:
        super().__init__(10**6)
        self.gate, self.reading = asyncio.Event(), asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        self.reading.set()
        await self.gate.wait()
        return await super().get(key)


async def test_a_request_cancelled_while_it_looks_again_gives_the_key_back() -> None:
    # The look before leading is an await while the request holds the key (the local flight and a lease that a
    # job renews): a request cancelled there must let both go, or the key is held (and renewed) for ever.
    locks, level, jobs = MemoryLocks(), Gated(), JobRunner()
    exact = ExactCache(level, prefix="cg:", observer=NullObserver(), failopen=FailOpen(NullObserver()))
    flights: SingleFlight[CachedResponse] = SingleFlight()
    one = Coalescer(flights, exact=exact, observer=NullObserver(), spawn=jobs.spawn, wait=5.0, prefix="cg:",
                    locks=locks)
    parser = ChatRequestParser(prefix="cg:", upstream="http://up/v1", shared=False, secret=lambda: b"s")
    joining = asyncio.create_task(one.join(request(parser)))
    await asyncio.wait_for(level.reading.wait(), 5)
    name = claim_name(request(parser))
    assert await locks.state(name) not in (None, FAILED)  # it holds the lease while it looks
    joining.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await joining
    for _ in range(500):  # the lease is given up by a spawned job
        if await locks.state(name) == FAILED:
            break
        await asyncio.sleep(0.01)
    assert await locks.state(name) == FAILED  # the waiters elsewhere ask on their own at once
    assert len(flights) == 0  # this process's key is free: the next request leads


class FinishingLocks(MemoryLocks):
    """Leases whose first look at a lease's state lets ``finish`` run first: the leader storing and letting go
    just after a waiter polled the exact tier and just before it looks at the lease."""

    def __init__(self) -> None:
        super().__init__()
        self.finish: Any = None

    async def state(self, name: str) -> str | None:
        finish, self.finish = self.finish, None
        if finish is not None:
            await finish()
        return await super().state(name)


async def test_a_waiter_that_takes_the_lease_over_after_the_leader_stored_is_answered_by_that_entry() -> None:
    locks, jobs = FinishingLocks(), JobRunner()
    exact = ExactCache(MemoryBackend(10**6), prefix="cg:", observer=NullObserver(), failopen=FailOpen(NullObserver()))
    one, two = (Coalescer(SingleFlight(), exact=exact, observer=NullObserver(), spawn=jobs.spawn, wait=5.0,
                          prefix="cg:", locks=locks) for _ in range(2))
    parser = ChatRequestParser(prefix="cg:", upstream="http://up/v1", shared=False, secret=lambda: b"s")
    leader = await one.join(request(parser))
    assert isinstance(leader, Claim) and leader.lease is not None
    lease = leader.lease

    async def finish() -> None:  # what the leader's store and its spawned give-up do, in that order
        await exact.store(request(parser).key, entry())
        await locks.release(lease)

    locks.finish = finish
    answered = await asyncio.wait_for(two.join(request(parser)), 5)
    assert isinstance(answered, CachedResponse), answered  # not a second call upstream
