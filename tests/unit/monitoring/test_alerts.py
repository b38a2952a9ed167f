"""What the alert webhook is told, exactly: a warning's start and end, and which process says so. Alone the
process is HOST:PORT; a worker of ``cachegate serve --workers N`` judges only its own share of the traffic, so
each names itself (``instance`` HOST:PORT/worker-i, ``worker`` as a field and a label) and a receiver can tell
the N messages apart and deduplicate them."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.monitoring.alerts import Alerts, Origin, address_of
from proxy.monitoring.warnings import Sample, Thresholds
from proxy.monitoring.webhook import Webhook


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def told(origin: Origin) -> list[dict[str, Any]]:
    """The bodies queued for the webhook (nothing is sent) while the memory level fills past 90 % and empties."""
    clock = Clock()
    samples = iter([Sample(1000.0, fill={"memory": 0.95}), Sample(1015.0, fill={"memory": 0.97}),
                    Sample(1030.0, fill={"memory": 0.5})])
    webhook = Webhook("http://127.0.0.1:1/hook")
    alerts = Alerts(Thresholds(), sample=lambda now: next(samples), webhook=webhook, origin=origin, clock=clock)
    for _ in range(3):
        await alerts.check()
        clock.now += 15
    return [message.body for message in webhook.queue]


def store_full(status: str, ended_at: float | None, **origin: Any) -> dict[str, Any]:
    labels = {"tier": "memory", **({"worker": str(origin["worker"])} if origin["worker"] is not None else {})}
    return {"source": "cachegate", "status": status, "name": "store_full", "message": "the memory level is 95.0% full",
            "value": 0.95, "threshold": 0.9, "labels": labels, "started_at": 1000.0, "ended_at": ended_at, **origin}


async def test_a_process_on_its_own_is_named_by_its_address() -> None:
    assert await told(Origin("127.0.0.1:3000")) == [
        store_full("firing", None, instance="127.0.0.1:3000", worker=None),
        # the end carries the warning as it was last seen (97 %: still, the same warning)
        {**store_full("resolved", 1030.0, instance="127.0.0.1:3000", worker=None),
         "message": "the memory level is 97.0% full", "value": 0.97}]


async def test_a_worker_names_itself_in_the_instance_the_body_and_the_labels() -> None:
    assert await told(Origin("0.0.0.0:3000", worker=2)) == [
        store_full("firing", None, instance="0.0.0.0:3000/worker-2", worker=2),
        {**store_full("resolved", 1030.0, instance="0.0.0.0:3000/worker-2", worker=2),
         "message": "the memory level is 97.0% full", "value": 0.97}]


async def test_two_workers_tell_one_warning_apart_and_the_rest_is_the_same() -> None:
    first, second = await told(Origin("0.0.0.0:3000", worker=0)), await told(Origin("0.0.0.0:3000", worker=1))
    assert [body["instance"] for body in first + second] == [f"0.0.0.0:3000/worker-{i}" for i in (0, 0, 1, 1)]

    def without_worker(body: dict[str, Any]) -> dict[str, Any]:  # what a receiver that deduplicates keys on
        labels = {name: value for name, value in body["labels"].items() if name != "worker"}
        return {**body, "labels": labels, "instance": body["instance"].rsplit("/worker-", 1)[0], "worker": None}

    assert [without_worker(body) for body in first] == [without_worker(body) for body in second]


def test_an_origin_names_a_worker_only_when_there_is_one() -> None:
    assert (Origin("h:1").instance, Origin("h:1").labels) == ("h:1", {})
    assert (Origin("h:1", 0).instance, Origin("h:1", 0).labels) == ("h:1/worker-0", {"worker": "0"})


@pytest.mark.parametrize(("host", "address"), [
    ("0.0.0.0", "pod-7:3000"), ("::", "pod-7:3000"), ("", "pod-7:3000"),
    ("10.0.0.5", "10.0.0.5:3000"), ("::1", "[::1]:3000"), ("proxy.internal", "proxy.internal:3000")])
def test_a_wildcard_host_is_named_by_the_machine(host: str, address: str) -> None:
    assert address_of(host, 3000, "pod-7") == address
