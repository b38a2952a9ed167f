"""run_probe against the simulator over HTTP, where answers carry no usage: every billed request is charged an
estimate that is never below what the simulator really counted, so a budget errs towards stopping early.

The simulator's truth (``GET /_truth``) has each request's real prompt tokens (and one completion token); the
probe's exchanges are joined to it by the upstream request id they record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx
import pytest

from proxy.contracts import Upstream, UpstreamResponse
from proxy.probe import run_probe
from proxy.probe.exchange import Exchange
from proxy.probe.report import ProbeReport
from proxy.upstream import HttpUpstream
from tests.support.servers import SimulatorServer
from tests.support.sim_clock import SimHttpClock


@pytest.fixture(scope="module")
def profiled() -> Iterator[SimulatorServer]:
    with SimulatorServer(catalog="profiles") as sim:
        yield sim


class FaultHeaders:
    """An upstream that adds the simulator's per-request fault headers (``x-sim-*``) to what the probe sends,
    as the proxy forwards a client's: the probe itself never sends them."""

    def __init__(self, inner: HttpUpstream, faults: Sequence[tuple[str, str]]) -> None:
        self.inner, self.faults, self.base_url = inner, list(faults), inner.base_url

    async def send(self, method: str, path: str, *, headers: Sequence[tuple[str, str]],
                   content: bytes | AsyncIterator[bytes] | None, params: str = "") -> UpstreamResponse:
        return await self.inner.send(method, path, headers=[*headers, *self.faults], content=content, params=params)

    async def aclose(self) -> None:
        await self.inner.aclose()


def probe(sim: SimulatorServer, model: str, tests: list[str], faults: Sequence[tuple[str, str]] = ()) -> ProbeReport:
    async def go() -> ProbeReport:
        inner = HttpUpstream(sim.base_url, timeout=10)
        upstream: Upstream = FaultHeaders(inner, faults) if faults else inner
        try:
            return await run_probe(model, tests, upstream, clock=SimHttpClock(sim.url))
        finally:
            await upstream.aclose()

    sim.state.reset()
    return asyncio.run(go())


def billed_truth(sim: SimulatorServer, ex: Exchange) -> int:
    """The tokens the simulator counted for the request of ``ex``: its prompt and its one-token answer."""
    assert ex.upstream_request_id is not None
    seq = int(ex.upstream_request_id.removeprefix("sim-"))
    done = httpx.get(sim.url + "/_truth").json()[seq - 1]
    return int(done["prompt_tokens"]) + 1


def test_answers_without_any_usage_are_charged_estimates(profiled: SimulatorServer) -> None:
    report = probe(profiled, "sim-usageless", ["basic", "stream"])
    assert report.exchanges and all(ex.status == 200 and ex.usage.shape == "absent" for ex in report.exchanges)
    for ex in report.exchanges:  # plain and streamed alike: each billed request costs at least what it did
        assert ex.charge.estimated_tokens == ex.tokens >= billed_truth(profiled, ex)
    truth = sum(billed_truth(profiled, ex) for ex in report.exchanges)
    assert report.tokens_spent == report.tokens_estimated >= truth
    assert report.tokens_spent <= 1.5 * truth  # high, but still an estimate, not a refusal to count
    assert report.as_dict()["tokens_estimated"] == report.tokens_spent


def test_a_stream_that_ignores_include_usage_is_charged_an_estimate(profiled: SimulatorServer) -> None:
    report = probe(profiled, "sim-stream-blind", ["stream"])
    plain = [ex for ex in report.exchanges if not ex.stream]
    [streamed] = [ex for ex in report.exchanges if ex.stream]
    assert all(ex.charge.estimated_tokens == 0 and ex.tokens == billed_truth(profiled, ex) for ex in plain)
    assert streamed.usage.shape == "absent"
    assert streamed.tokens == streamed.charge.estimated_tokens >= billed_truth(profiled, streamed)
    assert report.tokens_spent == sum(billed_truth(profiled, ex) for ex in plain) + streamed.tokens
    assert report.tokens_estimated == streamed.tokens


def test_a_stream_cut_short_is_charged_an_estimate(profiled: SimulatorServer) -> None:
    # the stream breaks off after its role, text and finish chunks: before the usage chunk and [DONE]
    report = probe(profiled, "sim-openai", ["stream"], faults=[("x-sim-cut-after", "3"), ("x-sim-cut-abort", "1")])
    [streamed] = [ex for ex in report.exchanges if ex.stream]
    assert (streamed.status, streamed.ok, streamed.usage.shape) == (200, False, "absent")
    assert streamed.completion_chars == len("OK")  # what arrived before the cut
    assert streamed.tokens == streamed.charge.estimated_tokens >= billed_truth(profiled, streamed)
    assert report.tokens_estimated == streamed.tokens


def test_a_request_that_times_out_after_it_was_sent_is_charged_an_estimate(profiled: SimulatorServer) -> None:
    # the simulator has the prompt and answers after 3 s; the probe gave up after 0.5 s: it may still be billed
    async def go() -> ProbeReport:
        upstream = FaultHeaders(HttpUpstream(profiled.base_url, timeout=0.5), [("x-sim-delay", "3")])
        try:
            return await run_probe("sim-openai", ["basic"], upstream, clock=SimHttpClock(profiled.url))
        finally:
            await upstream.aclose()

    profiled.state.reset()
    report = asyncio.run(go())
    assert report.exchanges and all(ex.status == 0 and ex.timed_out for ex in report.exchanges)
    for ex in report.exchanges:
        assert ex.error is not None and "did not answer in time" in ex.error
        assert ex.billed and ex.tokens == ex.charge.estimated_tokens
        assert ex.tokens >= ex.prompt_estimate + (ex.max_tokens or 0) > 0
    assert report.tokens_spent == report.tokens_estimated == sum(ex.tokens for ex in report.exchanges)
