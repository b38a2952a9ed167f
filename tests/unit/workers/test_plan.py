"""The decisions of ``cachegate serve --workers N``, with exact values: what is refused (naming the setting),
each worker's metrics port and environment, when a worker is started again, and the supervisor's exit code."""

from __future__ import annotations

import signal

import pytest

from proxy.errors import SettingsError
from proxy.settings import Settings
from proxy.workers.plan import (
    WORKER_INDEX,
    Restarts,
    Verdict,
    check,
    child_environment,
    describe,
    exit_status,
    metrics_address,
    worker_index,
)

REDIS = "redis://127.0.0.1:6379/0"


def settings(**changes: object) -> Settings:
    return Settings(redis_url=REDIS, semantic_mode="off", port=3000).replace(**changes)


def refusal(**changes: object) -> tuple[str | None, str]:
    with pytest.raises(SettingsError) as caught:
        check(settings(**changes))
    return caught.value.param, caught.value.message


def test_one_process_needs_nothing_more() -> None:
    check(Settings(redis_url=None, port=0, semantic_mode="serve", workers=1))


def test_several_processes_on_redis_without_the_embedded_store_are_fine() -> None:
    check(settings(workers=4))
    check(settings(workers=4, semantic_mode="serve", qdrant_url="http://qdrant:6333"))
    check(settings(workers=2, metrics_bind_address="127.0.0.1:9090"))


def test_several_processes_need_redis() -> None:
    assert refusal(workers=2, redis_url=None) == (
        "WORKERS", "WORKERS: more than one process needs REDIS_URL: the exact cache, ledger, rate limits and "
                   "feedback are per process otherwise")


@pytest.mark.parametrize("mode", ["serve", "shadow"])
def test_several_processes_cannot_share_the_embedded_semantic_store(mode: str) -> None:
    param, message = refusal(workers=2, semantic_mode=mode)
    assert param == "WORKERS"
    assert message == ("WORKERS: more than one process cannot share the embedded semantic store under DATA_DIR "
                       "(each would open it on its own): set QDRANT_URL, or SEMANTIC_MODE=off")


def test_several_processes_need_a_fixed_port() -> None:
    assert refusal(workers=2, port=0)[0] == "WORKERS"


def test_the_workers_metrics_ports_must_fit_and_miss_the_public_port() -> None:
    assert refusal(workers=3, metrics_bind_address="127.0.0.1:65534") == (
        "METRICS_BIND_ADDRESS", "METRICS_BIND_ADDRESS: with WORKERS=3 the workers' metrics listeners take ports "
                                "65534 to 65536, past 65535")
    assert refusal(workers=3, metrics_bind_address="127.0.0.1:2998") == (
        "METRICS_BIND_ADDRESS", "METRICS_BIND_ADDRESS: with WORKERS=3 the workers' metrics listeners take ports "
                                "2998 to 3000, which must not include PORT (3000)")
    check(settings(workers=3, metrics_bind_address="10.0.0.5:2998"))  # another interface: no clash


def test_worker_i_serves_metrics_on_port_plus_i() -> None:
    assert [metrics_address("127.0.0.1:9090", i) for i in range(3)] == [
        ("127.0.0.1", 9090), ("127.0.0.1", 9091), ("127.0.0.1", 9092)]
    assert metrics_address("[::1]:9090", 1) == ("::1", 9091)


def test_a_workers_environment_is_the_supervisors_with_its_flags_one_process_and_its_number() -> None:
    environ = {"PATH": "/bin", "WORKERS": "4", "CACHE_TTL": "60"}
    assert child_environment(environ, {"WORKERS": "4", "CACHE_TTL": "5", "LOG_PATH": ""}, 2) == {
        "PATH": "/bin", "WORKERS": "1", "CACHE_TTL": "5", "LOG_PATH": "", WORKER_INDEX: "2"}
    assert environ == {"PATH": "/bin", "WORKERS": "4", "CACHE_TTL": "60"}


def test_the_worker_number_is_read_back() -> None:
    assert worker_index({}) is None
    assert worker_index({WORKER_INDEX: ""}) is None
    assert worker_index({WORKER_INDEX: "3"}) == 3
    with pytest.raises(SettingsError) as caught:
        worker_index({WORKER_INDEX: "two"})
    assert caught.value.param == WORKER_INDEX


def test_how_a_worker_ended_in_words() -> None:
    assert describe(3) == "exited with status 3"
    assert describe(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe(-200) == "was killed by signal 200"


def test_the_supervisor_exits_0_when_each_worker_stopped_cleanly() -> None:
    assert exit_status([0, -signal.SIGTERM, -signal.SIGINT]) == 0
    assert exit_status([]) == 0
    assert exit_status([0, 1, 4]) == 1
    assert exit_status([-signal.SIGTERM, -signal.SIGKILL]) == 128 + signal.SIGKILL


def test_a_worker_that_could_not_start_is_not_started_again() -> None:
    assert Restarts().after_exit(1, 3, 0.4) == Verdict(None, "exited with status 3 before it started serving "
                                                              "(its error is above)")
    assert Restarts().after_exit(0, 2, 60.0).restart_in is None  # a bad setting stays bad


def test_a_worker_that_died_is_started_again_after_the_delay() -> None:
    restarts = Restarts(delay=1.0, settle=10.0, limit=3)
    assert restarts.after_exit(0, -signal.SIGKILL, 3600.0) == Verdict(1.0, "was killed by SIGKILL after 3600s")
    assert restarts.after_exit(0, 1, 2.0) == Verdict(1.0, "exited with status 1 2.0s after its start (1 in a row)")


def test_dying_right_after_each_start_gives_up_at_the_limit() -> None:
    restarts = Restarts(delay=1.0, settle=10.0, limit=3)
    verdicts = [restarts.after_exit(0, 1, 0.5) for _ in range(3)]
    assert [v.restart_in for v in verdicts] == [1.0, 1.0, None]
    assert verdicts[-1].reason == "exited with status 1, 3 times in a row within 10s of its start"
    assert restarts.after_exit(1, 1, 0.5).restart_in == 1.0  # counted per worker


def test_a_worker_that_served_a_while_starts_the_count_again() -> None:
    restarts = Restarts(delay=1.0, settle=10.0, limit=3)
    for lived in (0.5, 0.5, 30.0, 0.5, 0.5):
        assert restarts.after_exit(0, 1, lived).restart_in == 1.0
    assert restarts.after_exit(0, 1, 0.5).restart_in is None
