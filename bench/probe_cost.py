"""What one probe of a model costs, in the simulator's accounting: tokens and requests per test type.

Runs ``run_probe`` against the upstream simulator's cache profiles on its fake clock (no real waiting).
Run by hand::

    .venv/bin/python -m bench.probe_cost                       # full probe of sim-openai, sim-grok, sim-llama
    .venv/bin/python -m bench.probe_cost --quick --models sim-openai
"""

from __future__ import annotations

import argparse
import asyncio
import collections

from proxy.probe import QUICK_TESTS, TESTS, ProbeConfig, run_probe
from proxy.upstream import HttpUpstream
from tests.support.servers import SimulatorServer
from tests.support.sim_clock import SimHttpClock


async def measure(sim: SimulatorServer, models: list[str], quick: bool) -> None:
    upstream = HttpUpstream(sim.base_url, timeout=10)
    try:
        for model in models:
            report = await run_probe(model, QUICK_TESTS if quick else TESTS, upstream, clock=SimHttpClock(sim.url),
                                     config=ProbeConfig.quick() if quick else ProbeConfig())
            tokens: collections.Counter[str] = collections.Counter()
            requests: collections.Counter[str] = collections.Counter()
            for ex in report.exchanges:
                tokens[ex.test] += ex.tokens
                requests[ex.test] += 1
            cached = sum(ex.cached or 0 for ex in report.exchanges)
            print(f"{model}: {report.verdict.verdict}, {report.tokens_spent} tokens ({cached} read from cache) "
                  f"in {len(report.exchanges)} requests")
            for test in tokens:
                print(f"  {test:12} {tokens[test]:7} tokens {requests[test]:4} requests")
    finally:
        await upstream.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", default="sim-openai,sim-grok,sim-llama")
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    with SimulatorServer(catalog="profiles") as sim:
        asyncio.run(measure(sim, opts.models.split(","), opts.quick))


if __name__ == "__main__":
    main()
