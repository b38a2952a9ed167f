"""The probe monitor keeping its history in PostgreSQL (DATABASE_URL): a cycle's requests and verdicts land in
the schema ``cachegate_probe``, and the API, the sparklines and the history answer from there as from SQLite."""

from __future__ import annotations

from tests.integration.probe.conftest import StartMonitor
from tests.integration.probe.helpers import api, cycle_done, truth
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
