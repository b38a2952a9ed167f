"""``cachegate serve`` (the proxy), ``cachegate embed`` (the embedding service), ``cachegate probe`` (the
prompt-cache probe, :mod:`proxy.probe.cli`), ``cachegate db status`` (the migrations of every database).

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
from pathlib import Path
from typing import Any

from proxy.errors import SettingsError
from proxy.platform.sqlite import Migration
from proxy.settings import SPECS, Settings, split_bind_address


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


def databases(settings: Settings) -> list[tuple[str, Path, Sequence[Migration]]]:
    """Every SQLite database cachegate keeps under DATA_DIR: (name, file, its owner's migrations)."""
    from proxy.cache import disk, history
    from proxy.monitoring import schema as monitoring
    from proxy.probe import schema as probe

    return [("monitoring", settings.data_path / monitoring.FILENAME, monitoring.MIGRATIONS),
            ("probe", settings.data_path / probe.FILENAME, probe.MIGRATIONS),
            ("exact cache (disk level)", settings.data_path / disk.FILENAME, disk.MIGRATIONS),
            ("cache history (warm from history)", settings.data_path / history.FILENAME, history.MIGRATIONS)]


def db_status(args: argparse.Namespace) -> int:
    """Print each database's migrations, applied (when) or pending; reads only, creates nothing."""
    from proxy.platform.sqlite import status

    environ = {**os.environ, **({"DATA_DIR": args.data_dir} if args.data_dir else {})}
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        print(f"cachegate: bad setting: {exc.message}", file=sys.stderr)
        return 2
    report = [(name, path, status(path, migrations)) for name, path, migrations in databases(settings)]
    if args.json:
        print(json.dumps([{"database": name, "path": str(path), "exists": path.exists(), "migrations": rows}
                          for name, path, rows in report], indent=2))
        return 0
    for name, path, rows in report:
        print(f"{name}: {path}" + ("" if path.exists() else " (not created yet)"))
        for row in rows:
            applied = row["applied_at"]
            when = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(applied))) + " UTC"  # type: ignore[arg-type]
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
    db = commands.add_parser("db", help="the SQLite databases under DATA_DIR").add_subparsers(dest="db_command",
                                                                                              required=True)
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
