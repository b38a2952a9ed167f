"""The probe monitor keeping its history in PostgreSQL (DATABASE_URL): a cycle's requests and verdicts land in
the schema ``cachegate_probe``, and the API, the sparklines and the history answer from there as from SQLite, on the
proxy that probed and on another one that shares the database."""

from __future__ import annotations

from pathlib import Path

from tests.integration.probe.conftest import StartMonitor
from tests.integration.probe.helpers import api, cycle_done, scheduler, truth, wait_for
from tests.support.postgres import PostgresServer
from tests.support.servers import SimulatorServer

MODELS = ("sim-openai", "sim-llama")
EXPECTED = {"sim-openai": "caches", "sim-llama": "no_caching"}


def test_a_cycle_is_kept_in_postgresql_and_read_back(start_monitor: StartMonitor, psim: SimulatorServer,
                                                     database_url: str, postgres_server: PostgresServer) -> None:
    proxy = start_monitor(probe_models=MODELS, database_url=database_url)
    cycle = cycle_done(proxy)
    assert cycle["status"] == "completed"
    name = database_url.rsplit("/", 1)[1]
    count = int(postgres_server.psql("SELECT COUNT(*) FROM cachegate_probe.results", database=name))
    assert count == len(truth(psim)) == cycle["requests"]
    assert int(postgres_server.psql("SELECT COUNT(*) FROM cachegate_probe.verdicts", database=name)) == 2
    assert not (proxy.settings.data_path / "probe.sqlite3").exists()  # nothing in DATA_DIR
    models = {m["model"]: m["verdict"] for m in api(proxy, "models")["models"]}
    assert models == EXPECTED
    sparklines = api(proxy, "sparklines")
    assert set(sparklines["models"]) == set(MODELS)
    history = api(proxy, "history", bucket="hour")
    assert sum(point["runs"] for point in history["series"]) == 2
    assert len(api(proxy, "results", limit=1000)["results"]) == count
    assert api(proxy, "usage")["totals"]["requests"] == count


def test_a_follower_answers_from_the_probe_history_its_leader_wrote(
        start_monitor: StartMonitor, psim: SimulatorServer, database_url: str, postgres_server: PostgresServer,
        redis_url: str, tmp_path: Path) -> None:
    """Two proxies on one Redis (the leader's lock) and one PostgreSQL, each with a DATA_DIR of its own: only the
    leader probes, and the follower's probe API answers from the rows the leader wrote, as the leader does."""
    shared = {"probe_models": MODELS, "database_url": database_url, "redis_url": redis_url,
              "probe_lock_seconds": 6.0}  # long: a renewal late on a loaded machine must not hand over the lead
    leader = start_monitor(data_dir=str(tmp_path / "leader"), **shared)
    wait_for(lambda: scheduler(leader)["leader"], "the first proxy to lead")
    follower = start_monitor(data_dir=str(tmp_path / "follower"), **shared)
    cycle = cycle_done(leader)
    assert cycle["status"] == "completed" and cycle["replica"] == scheduler(leader)["replica"]
    assert [scheduler(leader)["leader"], scheduler(follower)["leader"]] == [True, False]
    name = database_url.rsplit("/", 1)[1]
    count = int(postgres_server.psql("SELECT COUNT(*) FROM cachegate_probe.results", database=name))
    assert count == len(truth(psim)) == cycle["requests"]  # one cycle: the follower probed nothing
    for proxy in (leader, follower):
        assert not (proxy.settings.data_path / "probe.sqlite3").exists()

    assert scheduler(follower)["last_cycle"] == cycle
    assert {m["model"]: m["verdict"] for m in api(follower, "models")["models"]} == EXPECTED
    assert len(api(follower, "results", limit=1000)["results"]) == count
    for path, params in (("results", {"limit": 1000}), ("history", {"bucket": "hour"}), ("usage", {})):
        assert api(follower, path, **params) == api(leader, path, **params), path
    sparklines = api(follower, "sparklines")
    assert set(sparklines["models"]) == set(MODELS)
    assert sparklines["models"] == api(leader, "sparklines")["models"]
