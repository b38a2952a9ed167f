"""The request history on a real SQLite file: what is kept, hits counted in batches, the most-hit expired
entries first, retention a day past expiry."""

from __future__ import annotations

from pathlib import Path

from proxy.cache.history import RECENT, Asked, RequestHistory


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def asked(key: str, expires_at: float) -> Asked:
    return Asked(key, "owner", "m", b'{"model":"m","messages":[]}', (("x-cache-namespace", "docs"),), "", expires_at)


async def test_most_hit_expired_entries_first_and_a_day_of_them(tmp_path: Path) -> None:
    clock = Clock()
    history = RequestHistory(tmp_path / "h.sqlite3", clock=clock)
    await history.start()
    history.stored(asked("k:a", clock.now + 10))
    history.stored(asked("k:b", clock.now + 10))
    history.stored(asked("k:fresh", clock.now + 1000))
    history.stored(asked("k:old", clock.now - RECENT - 5))
    for key, hits in (("k:a", 2), ("k:b", 5), ("k:fresh", 9), ("k:old", 9)):
        for _ in range(hits):
            history.hit(key)
    await history.flush()
    history.stored(asked("k:a", clock.now + 20))  # stored again: its hits are kept
    history.hit("k:a")
    clock.now += 30
    found = await history.popular(5)
    assert [(a.key, a.hits) for a in found] == [("k:b", 5), ("k:a", 3)]  # not fresh ones, not day-old ones
    assert found[0].headers == (("x-cache-namespace", "docs"),) and found[0].owner == "owner"
    assert [a.key for a in await history.popular(1)] == ["k:b"]
    assert await history.purge() == 1
    await history.stop()
    reopened = RequestHistory(tmp_path / "h.sqlite3", clock=clock)
    await reopened.start()
    assert [a.key for a in await reopened.popular(5)] == ["k:b", "k:a"]  # it survives a restart
    await reopened.stop()
