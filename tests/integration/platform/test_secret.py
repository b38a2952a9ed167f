"""proxy.platform.secret on a real Redis: the replicas keep one tenant secret even when Redis loses it."""

from __future__ import annotations

from pathlib import Path

import redis

from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url
from proxy.platform.secret import TenantSecret

KEY = "cachegate:tenant-secret"


def replica(redis_url: str, data: Path) -> tuple[TenantSecret, RedisHome]:
    home = RedisHome(parse_redis_url(redis_url), timeout=5)
    return TenantSecret(configured=None, data_dir=data, redis=home, prefix="cachegate:"), home


async def keep(secret: TenantSecret) -> None:
    [job] = secret.contribution().jobs
    await job.run()


async def test_a_secret_redis_lost_is_written_back_and_the_next_replica_reads_it(redis_url: str,
                                                                                  tmp_path: Path) -> None:
    # The fault bench: the master holding the secret was killed and came back empty; the replica restarted
    # next wrote a secret of its own, and the two replicas shared no entry and no identical miss after that.
    first, home = replica(redis_url, tmp_path / "a")
    await first.start()
    redis.Redis.from_url(redis_url).delete(KEY)
    await keep(first)
    second, other = replica(redis_url, tmp_path / "b")
    await second.start()
    try:
        assert second.value == first.value
        assert redis.Redis.from_url(redis_url).get(KEY) == first.value
    finally:
        await home.aclose()
        await other.aclose()


async def test_a_replica_takes_the_secret_redis_holds_if_another_replica_wrote_first(redis_url: str,
                                                                                     tmp_path: Path) -> None:
    first, home = replica(redis_url, tmp_path / "a")
    await first.start()
    redis.Redis.from_url(redis_url).set(KEY, "written-by-a-replica-that-started-while-it-was-gone")
    try:
        await keep(first)
        assert first.value == b"written-by-a-replica-that-started-while-it-was-gone"  # one secret again
    finally:
        await home.aclose()
