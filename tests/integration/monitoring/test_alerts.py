"""Warnings and the alert webhook against a real local HTTP receiver: a warning's start and end are POSTed,
failures are retried with back-off, and a live proxy lists its warnings in /health/detailed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from proxy.monitoring.alerts import Alerts, Origin
from proxy.monitoring.warnings import Sample, Thresholds
from proxy.monitoring.webhook import Webhook
from tests.support.webhook import Receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hook(receiver: Receiver) -> Receiver:
    receiver.bodies.clear()
    receiver.fail = receiver.calls = 0
    return receiver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_warning_is_posted_when_it_starts_and_when_it_ends(hook: Receiver) -> None:
    clock = Clock()
    samples = iter([Sample(0), Sample(300, requests=100, errors=50), Sample(600, requests=1000, errors=50)])
    webhook = Webhook(hook.url + "/hook", clock=clock)
    alerts = Alerts(Thresholds(), sample=lambda now: next(samples), webhook=webhook, origin=Origin("test:1"),
                    clock=clock)
    assert await alerts.check() == []
    clock.now += 300
    [warning] = await alerts.check()
    assert warning.name == "upstream_errors"
    assert alerts.active() == [{**warning.as_dict(), "since": 1300.0, "instance": "test:1", "worker": None}]
    await webhook.deliver()
    assert hook.bodies == [{"source": "cachegate", "status": "firing", "name": "upstream_errors",
                            "message": "50.0% of proxied requests failed with 5xx", "value": 0.5, "threshold": 0.05,
                            "labels": {}, "started_at": 1300.0, "ended_at": None, "instance": "test:1",
                            "worker": None}]
    clock.now += 300
    assert await alerts.check() == []  # 0 errors in 900 answers since
    assert alerts.active() == []
    await webhook.deliver()
    assert hook.bodies[1]["status"] == "resolved"
    assert (hook.bodies[1]["started_at"], hook.bodies[1]["ended_at"]) == (1300.0, 1600.0)
    await webhook.stop()


async def test_a_workers_warnings_name_it_in_health_and_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    samples = iter([Sample(0), Sample(300, requests=100, errors=50), Sample(600, requests=1000, errors=50)])
    alerts = Alerts(Thresholds(), sample=lambda now: next(samples), origin=Origin("host:3000", 2), clock=clock)
    await alerts.check()
    clock.now += 300
    with caplog.at_level(logging.INFO, logger="cachegate"):
        assert [w.name for w in await alerts.check()] == ["upstream_errors"]
        clock.now += 300
        assert alerts.active()[0]["instance"] == "host:3000/worker-2"
        assert alerts.active()[0]["worker"] == 2
        await alerts.check()
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("warning")] == [
        "warning (host:3000/worker-2): 50.0% of proxied requests failed with 5xx (threshold 0.05)",
        "warning ended (host:3000/worker-2): 50.0% of proxied requests failed with 5xx"]


async def test_a_failed_delivery_is_retried_with_back_off_then_given_up(hook: Receiver) -> None:
    clock = Clock()
    webhook = Webhook(hook.url + "/hook", first_retry=1.0, last_retry=4.0, attempts=4, clock=clock)
    hook.fail = 2
    webhook.notify({"name": "first"})
    webhook.notify({"name": "second"})
    await webhook.deliver()
    assert (hook.calls, webhook.queue[0].due) == (1, 1001.0)  # first retry after 1 s
    await webhook.deliver()
    assert hook.calls == 1  # not due yet: nothing sent, the order kept
    clock.now = 1001.0
    await webhook.deliver()
    assert (hook.calls, webhook.queue[0].due) == (2, 1003.0)  # then after 2 s
    clock.now = 1003.0
    await webhook.deliver()
    assert [body["name"] for body in hook.bodies] == ["first", "second"] and webhook.sent == 2
    hook.fail = 10
    webhook.notify({"name": "never"})
    for _ in range(4):
        await webhook.deliver()
        clock.now += 10
    assert not webhook.queue and webhook.dropped == 1
    await webhook.stop()


async def test_a_receiver_that_is_not_there_costs_nothing_but_retries() -> None:
    webhook = Webhook("http://127.0.0.1:1/hook", timeout=1.0)
    webhook.notify({"name": "x"})
    await asyncio.wait_for(webhook.deliver(), 5)
    assert len(webhook.queue) == 1 and webhook.queue[0].attempts == 1
    await webhook.stop()


def test_a_live_proxy_lists_its_warnings_and_posts_them(start_proxy: Any, hook: Receiver) -> None:
    proxy = start_proxy(redis_url="redis://127.0.0.1:1", redis_timeout=0.2, alert_check_seconds=0.2,
                        alert_webhook_url=hook.url + "/hook")
    chat = httpx.post(proxy.base_url + "/chat/completions", timeout=10,
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
    assert chat.status_code == 200  # Redis is down: served without it
    deadline = time.monotonic() + 10
    warnings: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not (warnings and hook.bodies):
        warnings = httpx.get(proxy.url + "/health/detailed").json()["warnings"]
        time.sleep(0.1)
    assert {(w["name"], w["labels"].get("component")) for w in warnings} >= {("dependency_down", "redis")}
    assert {(b["name"], b["status"], b["labels"].get("component")) for b in hook.bodies} >= {
        ("dependency_down", "firing", "redis")}
