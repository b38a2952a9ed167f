"""proxy.cache.singleflight: concurrent identical misses share one upstream call."""

from __future__ import annotations

import asyncio

import pytest

from proxy.cache.singleflight import Flight, SingleFlight


async def test_first_is_leader_others_follow() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    follower = flights.join("k")
    other = flights.join("other")
    assert leader.leader is True
    assert follower.leader is False
    assert other.leader is True
    assert follower.future is leader.future
    assert other.future is not leader.future
    assert leader.key == follower.key == "k"
    assert len(flights) == 2


async def test_followers_receive_the_result() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    waiters = [asyncio.create_task(flights.join("k").wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(task.done() for task in waiters)
    flights.resolve(leader, "answer")
    assert await asyncio.gather(*waiters) == ["answer", "answer", "answer"]


async def test_release_without_result_gives_followers_none() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    waiters = [asyncio.create_task(flights.join("k").wait()) for _ in range(2)]
    await asyncio.sleep(0)
    flights.release(leader)
    assert await asyncio.gather(*waiters) == [None, None]
    assert len(flights) == 0


async def test_key_stays_registered_after_resolve_until_release() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    flights.resolve(leader, "answer")
    assert len(flights) == 1
    late = flights.join("k")  # arrives between the answer and the store write
    assert late.leader is False
    assert await late.wait() == "answer"
    flights.release(leader)
    assert len(flights) == 0
    fresh = flights.join("k")
    assert fresh.leader is True
    assert fresh.future is not leader.future


async def test_release_after_resolve_keeps_the_result() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    follower = flights.join("k")
    flights.resolve(leader, "answer")
    flights.release(leader)
    assert await follower.wait() == "answer"


async def test_resolve_twice_keeps_the_first_result() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    flights.resolve(leader, "first")
    flights.resolve(leader, "second")
    assert await leader.wait() == "first"


async def test_release_is_idempotent() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    flights.release(leader)
    flights.release(leader)
    assert len(flights) == 0


async def test_stale_release_does_not_remove_a_newer_flight() -> None:
    flights: SingleFlight[str] = SingleFlight()
    old = flights.join("k")
    flights.release(old)
    new = flights.join("k")
    flights.release(old)  # a second release of the old flight
    assert len(flights) == 1
    assert flights.join("k").future is new.future


async def test_cancelled_follower_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    quitter = asyncio.create_task(flights.join("k").wait())
    stayer = asyncio.create_task(flights.join("k").wait())
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert not leader.future.cancelled()
    assert not stayer.done()
    flights.resolve(leader, "answer")
    assert await stayer == "answer"


async def test_follower_timeout_does_not_cancel_the_flight() -> None:
    flights: SingleFlight[str] = SingleFlight()
    leader = flights.join("k")
    follower = flights.join("k")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(follower.wait(), timeout=0.01)
    assert not leader.future.cancelled()
    flights.resolve(leader, "answer")
    assert await flights.join("k").wait() == "answer"


async def test_flight_slots() -> None:
    future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    flight: Flight[str] = Flight("k", future, leader=True)
    assert (flight.key, flight.future, flight.leader) == ("k", future, True)
    with pytest.raises(AttributeError):
        flight.extra = 1  # type: ignore[attr-defined]
