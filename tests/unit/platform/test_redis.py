"""What a Redis call's failures become: a BackendError for every kind (the callers fail open on that one)."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.errors import BackendError
from proxy.platform.redis import RedisHome
from proxy.platform.redis_url import parse_redis_url


async def torn(client: Any) -> None:
    """What redis-py's asyncio connection raises when it is disconnected while a command is sending on it."""
    writer = None
    writer.writelines([b"*1\r\n$4\r\nPING\r\n"])  # type: ignore[attr-defined]


async def test_a_connection_torn_down_under_a_command_is_a_backend_error_and_opens_the_circuit() -> None:
    # Seen in bench/fault_bench.py: a cluster master killed and restarted under load made redis-py fail with
    # AttributeError inside send_packed_command; it reached the request as a 500 instead of a miss.
    home = RedisHome(parse_redis_url("redis://127.0.0.1:1"), timeout=0.5)
    try:
        with pytest.raises(BackendError, match="writelines"):
            await home.call(torn)
        with pytest.raises(BackendError, match="skipped"):  # the node's circuit is open: not asked again at once
            await home.call(torn)
    finally:
        await home.aclose()
