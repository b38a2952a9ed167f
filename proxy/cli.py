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
from proxy.settings import SPECS, Settings, redact_url, scrub


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
    from proxy.http.server import uvicorn_options

    overrides = {spec.env: value for spec in SPECS if (value := getattr(args, spec.env)) is not None}
    try:
        settings = Settings.from_env({**os.environ, **overrides})
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    configure_logging(settings)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, log_level=settings.log_level.lower(),
                timeout_graceful_shutdown=10, **uvicorn_options())
    return 0


def databases(settings: Settings) -> list[Schema]:
    """Every database cachegate keeps: its owner's name, SQLite file and migrations."""
    from proxy.monitoring import schema as monitoring
    from proxy.probe import schema as probe

    return [monitoring.SCHEMA, probe.SCHEMA]


def _report(settings: Settings) -> list[dict[str, Any]]:
    """Each database's migrations, applied (when) or pending, on the engine DATABASE_URL chooses."""
    from proxy.platform import postgres, sqlite

    report: list[dict[str, Any]] = []
    for schema in databases(settings):
        if settings.database_url:
            name = postgres.schema_of(schema.name)
            exists, rows = asyncio.run(postgres.status(settings.database_url, name, schema.migrations,
                                                       timeout=settings.database_timeout))
            report.append({"database": schema.name, "engine": "postgres", "url": redact_url(settings.database_url),
                           "schema": name, "exists": exists, "migrations": rows})
        else:
            path = settings.data_path / schema.filename
            report.append({"database": schema.name, "engine": "sqlite", "path": str(path), "exists": path.exists(),
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
