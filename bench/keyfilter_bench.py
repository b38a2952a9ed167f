"""Key-filter benchmark (run by hand): ``python -m bench.keyfilter_bench [--keys 1000000] [--checks 200000]``.

What a check and a build of the disk level's key filter cost (:mod:`proxy.cache.keyfilter`), for ``--keys``
keys shaped as cachegate's (``cg:exact:<owner>:<namespace>:<model>:{<sha256>}``), at 1%:

- ``rbloom`` as the level uses it (Python's ``hash``), and with a hash sliced from the key's own digest;
- a pure-Python bytearray filter whose 7 positions are 32-bit slices of the key's digest (the alternative);
- ``DiskKeys.may_hold`` for an absent key: the filter check plus the ``pread`` of the WAL-index header,
  all a skipped read costs, against the read of an absent key from the file (the hop and SELECT it saves);
- with ``--http N``: the miss and stream-TTFB overhead over calling the simulator directly (p50 of N each),
  for this checkout, ``--versus`` (another checkout, e.g. main without the filter), and this checkout with
  the disk level off (``CACHE_DISK_MAX_BYTES=0``: what the disk costs a miss at all), one request each in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import math
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rbloom import Bloom

from proxy.cache.disk import DiskBackend
from proxy.cache.keyfilter import ERROR_RATE


def cachegate_key(seed: str) -> str:
    return f"cg:exact:o:-:1234567890ab:{{{hashlib.sha256(seed.encode()).hexdigest()}}}"


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


class DigestBits:
    """The pure-Python alternative: a power-of-two bytearray, positions sliced from the key's SHA-256."""

    def __init__(self, capacity: int, hashes: int = 7) -> None:
        bits = 1 << math.ceil(math.log2(-capacity * math.log(ERROR_RATE) / math.log(2) ** 2))
        self.mask, self.hashes, self.bits = bits - 1, hashes, bytearray(bits >> 3)

    def add(self, key: str) -> None:
        digest = int(key[-65:-1], 16)
        for i in range(self.hashes):
            position = (digest >> (32 * i)) & self.mask
            self.bits[position >> 3] |= 1 << (position & 7)

    def __contains__(self, key: str) -> bool:
        digest = int(key[-65:-1], 16)
        for i in range(self.hashes):
            position = (digest >> (32 * i)) & self.mask
            if not self.bits[position >> 3] & (1 << (position & 7)):
                return False
        return True


def build_rbloom(keys: list[str], hash_func: Callable[[str], int] | None = None) -> Any:
    made = Bloom(len(keys), ERROR_RATE) if hash_func is None else Bloom(len(keys), ERROR_RATE, hash_func=hash_func)
    made.update(keys)
    return made


def build_digest_bits(keys: list[str]) -> Any:
    made = DigestBits(len(keys))
    for key in keys:
        made.add(key)
    return made


def digest_hash(key: str) -> int:
    return int(key[-33:-1], 16) - (1 << 127)


def filters(keys: list[str], absent: list[str], checks: int) -> None:
    candidates: list[tuple[str, Callable[[list[str]], Any]]] = [
        ("rbloom, Python's hash", build_rbloom),
        ("rbloom, hash from the digest", functools.partial(build_rbloom, hash_func=digest_hash)),
        ("pure Python, digest slices", build_digest_bits)]
    print(f"{'filter':<30}{'build s':>9}{'absent µs':>11}{'present µs':>12}{'false pos.':>12}")
    miss, hit = absent[7], keys[7]
    for name, build in candidates:
        started = time.perf_counter()
        made = build(keys)
        built = time.perf_counter() - started
        rate = sum(key in made for key in absent) / len(absent)
        absent_us = per_call_us(functools.partial(made.__contains__, miss), checks)
        present_us = per_call_us(functools.partial(made.__contains__, hit), checks)
        print(f"{name:<30}{built:>9.2f}{absent_us:>11.2f}{present_us:>12.2f}{rate:>12.4f}")


async def skipped_read(checks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = DiskBackend(Path(tmp) / "exact.sqlite3", 10**9)
        for i in range(2000):
            await store.set(cachegate_key(str(i)), b"x" * 2000, 600)
        while store.keys.filter is None:
            await asyncio.sleep(0.01)
        absent = cachegate_key("absent")
        assert not store.keys.may_hold(absent)
        print(f"\nDiskKeys.may_hold, absent key (filter + header pread): "
              f"{per_call_us(functools.partial(store.keys.may_hold, absent), checks):.2f} µs")
        reads = []
        for i in range(2000):  # the read every miss made before the filter: a hop and an indexed SELECT
            key = cachegate_key(f"gone{i}")
            started = time.perf_counter()
            await store.database.run(lambda conn, key=key: conn.execute(
                "SELECT value, expires_at FROM entries WHERE key = ?", (key,)).fetchone())
            reads.append(time.perf_counter() - started)
        reads.sort()
        print(f"the same read from the file: p50 {reads[len(reads) // 2] * 1e6:.0f} µs, "
              f"p99 {reads[int(len(reads) * 0.99)] * 1e6:.0f} µs")
        await store.aclose()


def over_http(samples: int, versus: Path | None) -> None:
    import httpx

    from bench import _harness as h
    from bench.exact_bench import unique_body

    with h.simulator() as sim, contextlib.ExitStack() as stack:
        upstream = sim.url + "/v1"
        chat = "/v1/chat/completions"
        urls = {"direct": upstream + "/chat/completions", "this": stack.enter_context(h.proxy(upstream)).url + chat}
        if versus is not None:
            urls["versus"] = stack.enter_context(h.proxy(upstream, source=versus)).url + chat
        urls["no disk"] = stack.enter_context(h.proxy(upstream, CACHE_DISK_MAX_BYTES="0")).url + chat
        with httpx.Client(timeout=30) as client:
            for stream in (False, True):
                out = h.interleaved_ms(client, urls, functools.partial(unique_body, stream=stream), samples,
                                       first_byte=stream)
                direct = h.median(out.pop("direct"))
                print(f"{'stream TTFB' if stream else 'miss':<12} added p50: " + ", ".join(
                    f"{name} {h.median(values) - direct:+.2f} ms" for name, values in out.items())
                    + f" (direct {direct:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--http", type=int, metavar="N", help="also the miss/TTFB overhead, N requests each")
    parser.add_argument("--versus", type=Path, help="another checkout for --http (e.g. a worktree of main)")
    args = parser.parse_args()
    keys = [cachegate_key(str(i)) for i in range(args.keys)]
    absent = [cachegate_key(f"absent{i}") for i in range(20_000)]
    filters(keys, absent, args.checks)
    asyncio.run(skipped_read(args.checks))
    if args.http:
        over_http(args.http, args.versus)


if __name__ == "__main__":
    main()
