"""Memory of the in-process stores against their budgets (run by hand; issue 10.18):

    python -m bench.memory_bench [--entries 100000] [--value-bytes 100] [--max-bytes 32MB]

Each measurement runs in a fresh interpreter (``multiprocessing`` spawn), so one does not inherit another's
freed-but-kept memory:

- **exact**: a :class:`~proxy.cache.memory.MemoryBackend` bounded by ``--max-bytes`` (default: what holds
  ``--entries`` entries) is sent twice that many ``set``s of small entries under real-shaped keys
  (``cachegate:exact:<16>:<12>:<12>:<64>``, 126 characters), so it is full and evicting when measured. The figure is
  the growth of the process's resident set (``VmRSS``) over its size just before (the fixed base: the
  interpreter and the imports), divided by the budget. The budget must hold: growth <= 1.3 x max_bytes.
  Also printed: what CPython really spends per entry beyond the key and value characters, the number
  ``ENTRY_OVERHEAD`` must cover.
- **vectors**: the semantic tier's cache of embeddings (4096 x 384 dimensions) as the tier keeps it
  (``array('f')``) and as it was kept before (lists of Python floats).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import random
from array import array
from typing import Any

from embedding_service.envspec import parse_size

KEY_PREFIX = "cachegate:exact:0123456789abcdef:-:0a1b2c3d4e5f:"


def rss() -> int:
    """The resident set of this process, in bytes (Linux: /proc/self/status)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _exact(entries: int, value_bytes: int, max_bytes: int, queue: Any) -> None:
    from proxy.cache.memory import ENTRY_OVERHEAD, MemoryBackend

    rng = random.Random(7)
    store = MemoryBackend(max_bytes)

    async def fill() -> None:
        for _ in range(2 * entries):  # each key and value made here, its own objects, as a request's are
            await store.set(KEY_PREFIX + f"{rng.getrandbits(256):064x}", rng.randbytes(value_bytes), 3600)

    gc.collect()
    base = rss()
    asyncio.run(fill())
    gc.collect()
    grown = rss() - base
    held, counted = asyncio.run(store.usage())
    per_entry = grown / held
    queue.put({"base_mb": base / 1e6, "grown_mb": grown / 1e6, "entries_held": held, "counted_mb": counted / 1e6,
               "ratio": grown / max_bytes, "real_overhead_per_entry": per_entry - len(KEY_PREFIX) - 64 - value_bytes,
               "entry_overhead_setting": ENTRY_OVERHEAD})


def _vectors(as_array: bool, size: int, dim: int, queue: Any) -> None:
    rng = random.Random(7)
    gc.collect()
    base = rss()
    cache: dict[str, Any] = {}
    for i in range(size):
        vector = [rng.uniform(-1, 1) for _ in range(dim)]
        cache[f"prompt {i}"] = array("f", vector) if as_array else vector
        del vector
    gc.collect()
    queue.put({"grown_mb": (rss() - base) / 1e6})


def run(target: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result: dict[str, Any] = queue.get(timeout=600)
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=100_000,
                        help="entries the exact store holds (it is sent twice as many)")
    parser.add_argument("--value-bytes", type=int, default=100, help="size of each stored value")
    parser.add_argument("--max-bytes", default=None, help="CACHE_MAX_BYTES (default: what holds --entries)")
    args = parser.parse_args()
    from proxy.cache.memory import ENTRY_OVERHEAD

    counted_per_entry = len(KEY_PREFIX) + 64 + args.value_bytes + ENTRY_OVERHEAD
    max_bytes = parse_size(args.max_bytes) if args.max_bytes else counted_per_entry * args.entries
    exact = run(_exact, args.entries, args.value_bytes, max_bytes)
    print(f"exact store: {2 * args.entries} sets of {args.value_bytes}-byte values, "
          f"CACHE_MAX_BYTES={max_bytes / 1e6:.1f} MB")
    print(f"  base RSS {exact['base_mb']:.1f} MB; grew {exact['grown_mb']:.1f} MB holding {exact['entries_held']} "
          f"entries (counted {exact['counted_mb']:.1f} MB) = {exact['ratio']:.2f} x CACHE_MAX_BYTES (bound: 1.30)")
    print(f"  CPython spends {exact['real_overhead_per_entry']:.0f} B per entry beyond key and value; "
          f"ENTRY_OVERHEAD counts {exact['entry_overhead_setting']} B")
    for label, as_array in (("array('f')", True), ("list of floats", False)):
        vectors = run(_vectors, as_array, 4096, 384)
        print(f"vector cache, 4096 x 384 as {label}: {vectors['grown_mb']:.1f} MB")


if __name__ == "__main__":
    main()
