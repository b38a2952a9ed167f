"""Single flight: concurrent identical misses in one process share one upstream call.

The first request for a key becomes the leader; the others wait on its future. The leader resolves it
with the finished answer, or with ``None`` when it failed or was cut off, in which case each follower
makes its own upstream call: a failed leader never hands an error to the others. The key stays
registered until the answer is written to the store, so a request arriving in between still shares it
instead of missing.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Flight(Generic[T]):
    __slots__ = ("_owner", "future", "key", "leader")

    def __init__(self, key: str, future: asyncio.Future[T | None], leader: bool,
                 owner: SingleFlight[T] | None = None) -> None:
        self.key = key
        self.future = future
        self.leader = leader
        self._owner = owner

    async def wait(self) -> T | None:
        # shield: a follower that goes away must not cancel the future the others wait on
        return await asyncio.shield(self.future)

    def resolve(self, result: T | None) -> None:
        """The leader's answer for the followers (see :meth:`SingleFlight.resolve`)."""
        if self._owner is not None:
            self._owner.resolve(self, result)

    def release(self) -> None:
        """The leader is done: the key is free again (see :meth:`SingleFlight.release`)."""
        if self._owner is not None:
            self._owner.release(self)


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[T | None]] = {}

    def join(self, key: str) -> Flight[T]:
        future = self._flights.get(key)
        if future is not None:
            return Flight(key, future, leader=False, owner=self)
        future = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        return Flight(key, future, leader=True, owner=self)

    def resolve(self, flight: Flight[T], result: T | None) -> None:
        """Hand the leader's answer (or ``None``) to the followers; the key stays until :meth:`release`."""
        if not flight.future.done():
            flight.future.set_result(result)

    def release(self, flight: Flight[T]) -> None:
        self.resolve(flight, None)
        if self._flights.get(flight.key) is flight.future:
            del self._flights[flight.key]

    def __len__(self) -> int:
        return len(self._flights)
