"""The console script: a bad setting stops start-up naming it; ``cachegate serve`` serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.servers import SimulatorServer, SubprocessServer, free_port


@pytest.mark.parametrize(("env", "named"), [
    ({"CACHE_TTL": "soon"}, "CACHE_TTL"),
    ({"PORT": "70000"}, "PORT"),
    ({"UPSTREAM_BASE_URL": "ftp://example"}, "UPSTREAM_BASE_URL"),
    ({"CACHE_MAX_BYTES": "lots"}, "CACHE_MAX_BYTES"),
    ({"SEMANTIC_MODE": "sometimes"}, "SEMANTIC_MODE"),
    # issue 10.11: the operator's key on a reachable interface, and nothing that says who may spend it
    ({"HOST": "0.0.0.0", "UPSTREAM_API_KEY": "sk-server"}, "CLIENT_API_KEYS"),
    ({"CLIENT_API_KEYS": "sk-a-plain-key"}, "CLIENT_API_KEYS"),
    ({"SSL_CERT_FILE": "/nonexistent/ca.pem"}, "SSL_CERT_FILE"),  # read at start-up, not on the first miss
])
def test_bad_setting_stops_start_up_naming_it(env: dict[str, str], named: str) -> None:
    result = subprocess.run([sys.executable, "-m", "proxy"], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert f"bad setting: {named}:" in result.stderr


def test_bad_flag_value_is_refused_the_same_way() -> None:
    result = subprocess.run([sys.executable, "-m", "proxy.cli", "serve", "--cache-ttl", "-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CACHE_TTL:" in result.stderr


def test_cachegate_serve_answers_from_the_cache(sim: SimulatorServer, tmp_path: Path) -> None:
    port = free_port()
    env = {"UPSTREAM_BASE_URL": sim.base_url, "DATA_DIR": str(tmp_path), "SEMANTIC_MODE": "off",
           "LOG_PATH": str(tmp_path / "requests.log")}
    cachegate = Path(sys.executable).parent / "cachegate"
    with SubprocessServer([str(cachegate), "serve", "--port", "{port}"], port=port, env=env):
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        first = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
        second = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert sim.state.chat_calls == 1


def test_db_status_lists_every_databases_migrations(tmp_path: Path) -> None:
    import asyncio
    import json

    from proxy.monitoring import schema as monitoring
    from proxy.platform.sqlite import Database
    from proxy.probe import schema as probe

    cachegate = str(Path(sys.executable).parent / "cachegate")
    before = subprocess.run([cachegate, "db", "status", "--data-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=60)
    assert before.returncode == 0, before.stderr
    assert f"probe: {tmp_path / probe.FILENAME} (not created yet)" in before.stdout
    assert "  1  pending                  probe results, verdicts, cycles and TTL searches" in before.stdout
    assert not any(tmp_path.iterdir())  # status creates nothing

    async def open_both() -> None:
        for name, migrations in ((monitoring.FILENAME, monitoring.MIGRATIONS), (probe.FILENAME, probe.MIGRATIONS)):
            db = Database(tmp_path / name, migrations)
            await db.open()
            await db.close()

    asyncio.run(open_both())
    after = subprocess.run([cachegate, "db", "status", "--json"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "DATA_DIR": str(tmp_path)})
    assert after.returncode == 0, after.stderr
    listed = {db["database"]: db for db in json.loads(after.stdout)}
    assert set(listed) >= {"monitoring", "probe", "exact cache (disk level)", "cache history (warm from history)"}
    assert not listed["exact cache (disk level)"]["exists"]  # never opened here: listed, with its migrations
    for name, migrations in (("monitoring", monitoring.MIGRATIONS), ("probe", probe.MIGRATIONS)):
        rows = listed[name]["migrations"]
        assert [(r["version"], r["description"]) for r in rows] == [(m.version, m.description) for m in migrations]
        assert all(r["applied_at"] is not None for r in rows)


def test_db_status_on_postgresql_lists_each_owners_schema(database_url: str) -> None:
    import asyncio
    import json

    from proxy.monitoring import schema as monitoring
    from proxy.platform.postgres import PostgresDatabase
    from proxy.probe import schema as probe

    url = database_url.replace("postgresql://postgres@", "postgresql://postgres:pw-secret@")  # trusted: ignored
    cachegate = str(Path(sys.executable).parent / "cachegate")
    env = {**os.environ, "DATABASE_URL": url}
    before = subprocess.run([cachegate, "db", "status"], capture_output=True, text=True, timeout=60, env=env)
    assert before.returncode == 0, before.stderr
    shown = url.replace("pw-secret", "<redacted>")
    assert f"probe: {shown} (schema cachegate_probe) (not created yet)" in before.stdout
    assert "  3  pending                  hourly sums of the usage history" in before.stdout
    assert "pw-secret" not in before.stdout

    async def open_both() -> None:
        for schema in (monitoring.SCHEMA, probe.SCHEMA):
            db = PostgresDatabase(url, owner=schema.name, migrations=schema.migrations)
            await db.open()
            await db.close()

    asyncio.run(open_both())
    after = subprocess.run([cachegate, "db", "status", "--json"], capture_output=True, text=True, timeout=60, env=env)
    assert after.returncode == 0, after.stderr
    listed = {db["database"]: db for db in json.loads(after.stdout)}
    shared = {name: (db["schema"], db["exists"]) for name, db in listed.items() if db["engine"] == "postgres"}
    assert shared == {"monitoring": ("cachegate_monitoring", True), "probe": ("cachegate_probe", True)}
    assert all(row["applied_at"] is not None for name in shared for row in listed[name]["migrations"])
    # the caches of one machine stay in SQLite under DATA_DIR
    assert {listed[name]["engine"] for name in listed if name not in shared} == {"sqlite"}


def test_db_status_names_a_database_that_does_not_answer() -> None:
    cachegate = str(Path(sys.executable).parent / "cachegate")
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:pw-secret@127.0.0.1:{free_port()}/x", "DATABASE_TIMEOUT": "2"}
    result = subprocess.run([cachegate, "db", "status"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "DATABASE_URL does not answer" in result.stderr and "pw-secret" not in result.stderr
