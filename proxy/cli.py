"""``cachegate serve`` (the proxy), ``cachegate embed`` (the embedding service), ``cachegate probe`` (the
prompt-cache probe, :mod:`proxy.probe.cli`), ``cachegate db status`` (the migrations of every database: SQLite
under DATA_DIR, or PostgreSQL at DATABASE_URL).

Flags mirror the settings (``--cache-ttl 60`` is ``CACHE_TTL=60``); flags win over the environment.
A bad value stops start-up with a message naming the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from proxy.errors import SettingsError
from proxy.platform.sql import Schema
from proxy.settings import SPECS, Settings, redact_url, scrub, split_bind_address


def _serve_parser(parser: argparse.ArgumentParser) -> None:
    for spec in SPECS:
        flag = "--" + spec.env.lower().replace("_", "-")
        parser.add_argument(flag, dest=spec.env, metavar=spec.env, help=f"{spec.help} [env {spec.env}]")


def configure_logging(settings: Settings) -> None:
    """Text or JSON lines (LOG_FORMAT), each carrying the request id: see :mod:`proxy.monitoring.logs`."""
    from proxy.monitoring.logs import configure_logging as configure

    configure(settings)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from proxy.app import create_app
    from proxy.http.server import DrainingServer, uvicorn_options

    overrides = {spec.env: value for spec in SPECS if (value := getattr(args, spec.env)) is not None}
    try:
        settings = Settings.from_env({**os.environ, **overrides})
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    if settings.metrics_bind_address and split_bind_address(settings.metrics_bind_address) == \
            (settings.host, settings.port):
        print("cachegate: bad setting: METRICS_BIND_ADDRESS: must differ from HOST:PORT", file=sys.stderr)
        return 2
    configure_logging(settings)
    app = create_app(settings)
    options = {"log_config": None, "log_level": settings.log_level.lower(),
               "timeout_graceful_shutdown": int(settings.drain_seconds), **uvicorn_options()}
    drain = app.state.parts.health.drain
    if not settings.metrics_bind_address:
        DrainingServer(uvicorn.Config(app, host=settings.host, port=settings.port, **options), on_drain=drain,
                       delay=settings.drain_delay).run()
        return 0
    from proxy.http.listeners import Listener
    from proxy.http.server import QuietServer

    host, port = split_bind_address(settings.metrics_bind_address)
    public = DrainingServer(uvicorn.Config(Listener(app, monitoring=False), host=settings.host, port=settings.port,
                                           lifespan="on", **options), on_drain=drain, delay=settings.drain_delay)
    private = QuietServer(uvicorn.Config(Listener(app, monitoring=True), host=host, port=port, lifespan="off",
                                         **options))
    asyncio.run(_serve_both(public, private))
    return 0


def databases(settings: Settings) -> list[tuple[str, Schema, bool]]:
    """Every database cachegate keeps: (its name, its owner's schema, whether it moves to PostgreSQL with
    DATABASE_URL). The history replicas share does; the caches of one machine stay in SQLite under DATA_DIR."""
    from proxy.cache import disk, history
    from proxy.monitoring import schema as monitoring
    from proxy.probe import schema as probe

    return [("monitoring", monitoring.SCHEMA, True), ("probe", probe.SCHEMA, True),
            ("exact cache (disk level)", Schema("disk", disk.FILENAME, disk.MIGRATIONS), False),
            ("cache history (warm from history)", Schema("history", history.FILENAME, history.MIGRATIONS), False)]


def _report(settings: Settings) -> list[dict[str, Any]]:
    """Each database's migrations, applied (when) or pending, on its engine."""
    from proxy.platform import postgres, sqlite

    report: list[dict[str, Any]] = []
    for name, schema, shared in databases(settings):
        if shared and settings.database_url:
            owner = postgres.schema_of(schema.name)
            exists, rows = asyncio.run(postgres.status(settings.database_url, owner, schema.migrations,
                                                       timeout=settings.database_timeout))
            report.append({"database": name, "engine": "postgres", "url": redact_url(settings.database_url),
                           "schema": owner, "exists": exists, "migrations": rows})
        else:
            path = settings.data_path / schema.filename
            report.append({"database": name, "engine": "sqlite", "path": str(path), "exists": path.exists(),
                           "migrations": sqlite.status(path, schema.migrations)})
    return report


def db_status(args: argparse.Namespace) -> int:
    """Print each database's migrations, applied (when) or pending; reads only, creates nothing."""
    environ = {**os.environ, **({"DATA_DIR": args.data_dir} if args.data_dir else {})}
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    try:
        report = _report(settings)
    except (TimeoutError, OSError) as exc:
        print(f"cachegate: DATABASE_URL does not answer: {scrub(str(exc)) or type(exc).__name__}", file=sys.stderr)
        return 1
    except Exception as exc:  # the driver's own errors (authentication, no such database)
        print(f"cachegate: DATABASE_URL refused: {scrub(str(exc)) or type(exc).__name__}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for db in report:
        where = db["path"] if db["engine"] == "sqlite" else f"{db['url']} (schema {db['schema']})"
        print(f"{db['database']}: {where}" + ("" if db["exists"] else " (not created yet)"))
        for row in db["migrations"]:
            applied = row["applied_at"]
            when = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(applied))) + " UTC"
                    if applied is not None else "pending")
            print(f"  {row['version']:>3}  {when:<23}  {row['description']}")
    return 0


async def _serve_both(public: Any, private: Any) -> None:
    """The public server (which runs the app's lifespan) first; the metrics listener once it has started;
    when either stops (a signal, a port already taken), both stop."""
    first = asyncio.create_task(public.serve())
    while not public.started and not first.done():
        await asyncio.sleep(0.05)
    tasks = [first]
    if not first.done():
        tasks.append(asyncio.create_task(private.serve()))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    public.should_exit = private.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cachegate", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(commands.add_parser("serve", help="run the caching proxy"))
    commands.add_parser("embed", help="run the embedding service (flags: see 'cachegate embed --help')",
                        add_help=False)
    commands.add_parser("probe", help="measure which upstream models cache prompts (flags: see "
                                      "'cachegate probe --help')", add_help=False)
    db_parser = commands.add_parser("db", help="the databases: SQLite under DATA_DIR, or PostgreSQL at DATABASE_URL")
    db = db_parser.add_subparsers(dest="db_command", required=True)
    db_status_parser = db.add_parser("status", help="list every database's migrations: applied or pending")
    db_status_parser.add_argument("--data-dir", help="the directory to look in [env DATA_DIR]")
    db_status_parser.add_argument("--json", action="store_true", help="print JSON")
    args, rest = parser.parse_known_args(argv)
    if args.command == "probe":
        from proxy.probe.cli import main as probe_main

        return probe_main(rest)
    if args.command == "embed":
        from embedding_service.cli import main as embed_main

        return embed_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "db":
        return db_status(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
