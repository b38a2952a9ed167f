"""The composition root: every part built, every route declared with the guard its path needs, every
component's dashboard panels collected for the dashboard."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from proxy.app import build, collect_panels, create_app
from proxy.component import Contribution, Guard, Panel
from proxy.monitoring.alerts import Origin
from proxy.settings import Settings


def expected_guard(path: str, methods: tuple[str, ...] = ("GET",)) -> Guard:
    if path.startswith("/admin/") or (path.startswith("/probe/api/") and "POST" in methods):
        return Guard.ADMIN
    if path == "/probe":
        return Guard.MONITOR_PAGE
    if path.startswith("/probe/api/"):
        return Guard.MONITOR
    if path == "/dashboard":
        return Guard.MONITOR_PAGE
    if path == "/dashboard/session":
        return Guard.OPEN  # the login checks the key it is given
    if path.startswith(("/metrics", "/dashboard/", "/kv-cache-metrics")):
        return Guard.MONITOR
    if path.startswith("/health"):
        return Guard.OPEN
    if path.startswith("/v1/"):
        return Guard.CLIENT
    raise AssertionError(f"a route nobody expects: {path}")


@pytest.mark.parametrize("semantic_mode", ["off", "serve"])
def test_every_route_declares_the_guard_its_path_needs(tmp_path: Path, semantic_mode: str) -> None:
    parts = build(Settings(data_dir=str(tmp_path), semantic_mode=semantic_mode))
    specs = [spec for part in parts.components for spec in part.contribution().routes]
    assert {spec.path for spec in specs} >= {"/v1/chat/completions", "/v1/{path:path}", "/health", "/metrics",
                                              "/admin/cache/clear", "/dashboard", "/dashboard/session"}
    assert ("/admin/cache/feedback" in {spec.path for spec in specs}) == (semantic_mode == "serve")
    for spec in specs:
        assert spec.guard is expected_guard(spec.path, spec.methods), spec.path


def test_the_probe_monitor_is_built_only_when_enabled(tmp_path: Path) -> None:
    off = build(Settings(data_dir=str(tmp_path), semantic_mode="off"))
    assert off.probe is None
    assert not any(spec.path.startswith("/probe") for part in off.components for spec in part.contribution().routes)
    on = build(Settings(data_dir=str(tmp_path), semantic_mode="off", probe_enabled=True,
                        probe_upstream_url="http://127.0.0.1:1/v1"))
    assert on.probe is not None and on.probe in on.components
    contribution = on.probe.contribution()
    paths = {(spec.path, spec.methods) for spec in contribution.routes}
    assert {("/probe/api/models", ("GET",)), ("/probe/api/run", ("POST",)), ("/probe/api/test/{model:path}", ("GET",)),
            ("/probe/api/compare/{pair:path}", ("GET",)), ("/probe/api/model/{model:path}/history", ("GET",))} <= paths
    for spec in contribution.routes:
        assert spec.guard is expected_guard(spec.path, spec.methods), spec.path
    assert [job.name for job in contribution.jobs] == ["probe-scheduler", "probe-retention"]
    retention = contribution.jobs[1]
    # daily, as PROBE_RETENTION_DAYS promises (the run at start is ProbeMonitor.start's, so not at_start here)
    assert (retention.every, retention.at_start, retention.run) == (86400.0, False, on.probe.purge)
    assert [(p.id, p.kind, p.source) for p in contribution.panels] == [("probe", "link", "/probe")]
    assert "probe" in [check.name for check in on.health.checks]


def test_a_venice_probe_without_its_key_stops_start_up(tmp_path: Path) -> None:
    from proxy.errors import SettingsError
    from proxy.probe.config import MISSING_VENICE_KEY

    with pytest.raises(SettingsError) as caught:
        build(Settings(data_dir=str(tmp_path), semantic_mode="off", probe_enabled=True,
                       probe_upstream_url="https://api.venice.ai/api/v1"))
    assert caught.value.message == MISSING_VENICE_KEY


def test_the_chat_route_comes_before_passthrough(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), semantic_mode="off"))
    paths = [getattr(route, "path", None) for route in app.routes]
    assert paths.index("/v1/chat/completions") < paths.index("/v1/{path:path}")


def test_the_alerts_name_this_process_and_a_worker_its_number(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), semantic_mode="off", host="0.0.0.0", port=3100)
    here = f"{socket.gethostname()}:3100"  # HOST 0.0.0.0 names no one machine: the host's name stands for it
    assert build(settings).alerts.origin == Origin(here)
    assert build(settings, worker=1).alerts.origin == Origin(here, worker=1)


def test_redis_is_checked_once_for_all_its_users(tmp_path: Path) -> None:
    parts = build(Settings(data_dir=str(tmp_path), semantic_mode="off", redis_url="redis://127.0.0.1:1",
                           rate_limit_per_minute=5))
    assert parts.redis is not None
    names = [check.name for check in parts.health.checks]
    # the exact tier, the rate counter and the ledger share the one home; the exact tier's local copy of
    # Redis is in-process, and its tracking connection (the home's) is shown beside the home's ping
    assert names == ["redis", "redis_client_cache", "exact_cache", "history"]
    assert [level.name for level in parts.exact.levels] == ["redis-local", "redis"]
    assert parts.exact.levels[-1].home is parts.redis  # type: ignore[attr-defined]
    assert parts.telemetry.ledger.store.home is parts.redis  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["redis+cluster://127.0.0.1:1", "redis+sentinel://127.0.0.1:1/master"])
def test_every_kind_of_redis_has_the_local_copy_in_front(tmp_path: Path, url: str) -> None:
    parts = build(Settings(data_dir=str(tmp_path), semantic_mode="off", redis_url=url))
    assert [level.name for level in parts.exact.levels] == ["redis-local", "redis"]
    assert parts.redis is not None
    assert parts.exact.levels[0].tracking is parts.redis.tracking("")  # type: ignore[attr-defined]


def test_the_local_copy_of_redis_can_be_turned_off(tmp_path: Path) -> None:
    parts = build(Settings(data_dir=str(tmp_path), semantic_mode="off", redis_url="redis://127.0.0.1:1",
                           redis_client_cache_bytes=0))
    assert [level.name for level in parts.exact.levels] == ["redis"]
    assert [check.name for check in parts.health.checks] == ["redis", "history"]


def test_database_url_puts_every_history_in_postgresql(tmp_path: Path) -> None:
    from proxy.platform.postgres import PostgresDatabase

    url = "postgresql://cachegate:secret@127.0.0.1:1/cachegate"
    parts = build(Settings(data_dir=str(tmp_path), semantic_mode="off", database_url=url, probe_enabled=True,
                           probe_upstream_url="http://127.0.0.1:1/v1"))
    usage_db, ledger = parts.telemetry.database, parts.telemetry.ledger.store
    assert isinstance(usage_db, PostgresDatabase) and usage_db.schema == "cachegate_monitoring"
    assert (ledger.name, ledger.shared) == ("postgres", True)  # without Redis the replicas share it here
    assert parts.probe is not None
    probe_db = parts.probe.store.db  # type: ignore[attr-defined]
    assert isinstance(probe_db, PostgresDatabase) and probe_db.schema == "cachegate_probe"
    assert "secret" not in usage_db.describe()
    with_redis = build(Settings(data_dir=str(tmp_path), semantic_mode="off", database_url=url,
                                redis_url="redis://127.0.0.1:1"))
    assert with_redis.telemetry.ledger.store.name == "redis"  # Redis keeps the totals when there is one
    assert not list(tmp_path.iterdir())  # nothing connects, nothing is written under DATA_DIR


def test_the_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    parts = build(Settings(data_dir=str(tmp_path)))
    assert parts.redis is None
    assert {check.name: check.embedded for check in parts.health.checks} == {
        "exact_cache": "memory+disk", "embedding": parts.semantic.embedder.location,  # type: ignore[union-attr]
        "qdrant": f"qdrant-edge at {tmp_path / 'semantic' / 'cachegate'}", "history": None}


SHIPPED_PANELS = ["warnings", "totals", "outcomes", "levels", "timeline", "tokens", "latency", "streaming", "models",
                  "recent", "exports", "admin", "pricing"]


@pytest.mark.parametrize("semantic_mode", ["off", "serve"])
def test_the_dashboard_is_given_every_components_panels_in_order(tmp_path: Path, semantic_mode: str) -> None:
    parts = build(Settings(data_dir=str(tmp_path), semantic_mode=semantic_mode))
    expected = list(SHIPPED_PANELS)
    if semantic_mode == "serve":  # the tier's panel only when the tier is there
        expected.insert(expected.index("models"), "semantic")
    assert [panel.id for panel in parts.dashboard.panels] == expected
    contributed = [panel for part in parts.components for panel in part.contribution().panels]
    assert set(parts.dashboard.panels) == set(contributed)  # the dashboard itself adds none
    assert parts.components[-1] is parts.dashboard  # built last, from every other component
    sources = {panel.id: panel.source for panel in parts.dashboard.panels}
    assert sources["recent"] == sources["admin"] == "/dashboard/data"
    assert sources["timeline"] == "/metrics/usage?bucket=hour"
    assert (sources["levels"], sources["warnings"]) == ("/metrics", "/health/detailed")
    assert sources.get("semantic", "/metrics/semantic") == "/metrics/semantic"
    routes = {spec.path for part in parts.components for spec in part.contribution().routes}
    assert {source.split("?")[0] for source in sources.values()} <= routes  # every source is served


class Contributes:
    """A component that contributes only panels."""

    def __init__(self, *panels: Panel) -> None:
        self.panels = panels

    def contribution(self) -> Contribution:
        return Contribution(panels=self.panels)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_panels_are_collected_by_order_then_in_the_order_of_the_components() -> None:
    late, early = Panel("late", "Late", "link", "/late", order=200), Panel("early", "Early", "link", "/e", order=1)
    first, second = Panel("first", "First", "link", "/a"), Panel("second", "Second", "link", "/b")
    panels = collect_panels([Contributes(late, first), Contributes(second, early)])
    assert [panel.id for panel in panels] == ["early", "first", "second", "late"]


def test_two_panels_with_one_id_stop_start_up() -> None:
    with pytest.raises(ValueError, match=r"used more than once: probe$"):
        collect_panels([Contributes(Panel("probe", "Probe", "link", "/probe")),
                        Contributes(Panel("probe", "Probe again", "link", "/probe2"))])
